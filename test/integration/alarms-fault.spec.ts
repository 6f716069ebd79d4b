import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { Client } from 'pg';
import { loadConfig } from '../../src/config/config';
import { SCHOOL_ONLY_EVENTS } from '../../src/modules/console-events';
import { TestConsole } from '../support/console-client';
import { createDatabase, releaseDatabase, TIMETABLE } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';
import { freePort, Proc, start, startRedis, stop, waitHttp } from '../support/processes';

/**
 * Proof that nothing is lost: 1,000 button presses over HTTP against separate api and worker
 * processes (compiled code), while (a) the worker is SIGKILLed mid-job and restarted, (b) our
 * own Redis (no persistence: it comes back empty) is restarted, (c) the api is SIGKILLed and
 * restarted. The police endpoint fails for the first part of the run. The presser retries on
 * connection errors with the same event id, as a device does. Afterwards every alarm exists
 * exactly once in Postgres and was delivered to the police endpoint under its dedup key.
 *
 * Two consoles watch over socket.io: one connected throughout (it is thrown off when the api is
 * killed and resumes by itself), one that disconnects at 300 alarms and resumes at 600. Each ends
 * with every one of the 1,000 incident.raised events once (after dedupe by seq), in seq order,
 * and with exactly the events stored in console_events: no gaps.
 */
const N = 1000;
const CONCURRENCY = 16;
const SECRET = 'fault-test-hmac-secret-0123456789';

describe('alarms: nothing is lost across crashes (slow)', () => {
  jest.setTimeout(240_000);
  let db: { url: string; name: string };
  let pg: Client;
  let police: PoliceReceiver;
  let redisPort: number;
  let apiPort: number;
  let redis: Proc | undefined;
  let api: Proc | undefined;
  let worker: Proc | undefined;
  let firstApi: Proc | undefined;
  let configFile: string;
  const secrets: string[] = [];
  const consoles: TestConsole[] = [];

  const env = (role: 'api' | 'worker'): NodeJS.ProcessEnv => ({
    ...process.env,
    NODE_ENV: 'test',
    ROLE: role,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
    REDIS_KEY_PREFIX: 'faulttest',
    CONFIG_FILE: configFile,
    LOG_LEVEL: 'warn',
  });
  const startApi = async () => {
    api = start('node', ['dist/main.js'], env('api'));
    await waitHttp(`http://127.0.0.1:${apiPort}/health/live`, 60000, api);
  };
  const startWorker = () => {
    worker = start('node', ['dist/main.js'], env('worker'));
  };

  beforeAll(async () => {
    // dist/ (node dist/main.js) is built by the Jest global setup (test/support/global-setup.js).
    db = await createDatabase({ migrated: true });
    police = await startPoliceReceiver(SECRET);
    police.failing = true;
    redisPort = await freePort();
    apiPort = await freePort();
    configFile = join(tmpdir(), `shouhu-fault-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(
      configFile,
      JSON.stringify({
        database: { poolSize: 10 },
        alarms: {
          escalationSeconds: { P1: [600, 1200], P2: [600], P3: [600], P4: [600] },
          policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 3000, attempts: 100, backoffMs: 200, lateAfterSeconds: 5 },
          outbox: { pollMs: 250, redispatchAfterMs: 3000, batchSize: 500 },
        },
      }),
    );
    redis = await startRedis(redisPort);
    await startApi(); // migrates the database
    startWorker();
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    const [{ id: districtId }] = (await pg.query(`INSERT INTO districts (code, name) VALUES ('fd', '故障区') RETURNING id`)).rows;
    const [{ id: zoneId }] = (
      await pg.query(`INSERT INTO school_zones (district_id, code, name, level) VALUES ($1, 'FZ', '故障学区', 'primary') RETURNING id`, [districtId])
    ).rows;
    const [{ id: schoolId }] = (
      await pg.query(
        `INSERT INTO schools (district_id, zone_id, code, name, type, timetable) VALUES ($1, $2, 'FS', '故障测试小学', 'primary', $3) RETURNING id`,
        [districtId, zoneId, JSON.stringify(TIMETABLE)],
      )
    ).rows;
    // One button per alarm (a button with an open alarm folds further presses into it), police-linked: only those relay.
    await pg.query(
      `WITH d AS (INSERT INTO alarm_devices (code, school_id, location, area_kind, police_linked) SELECT 'FB-' || g, $1, '岗亭' || g, 'main_gate', true FROM generate_series(1, $2) g RETURNING id, code)
       INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
       SELECT 'dk_f' || substr(code, 4), encode(sha256(('sf' || substr(code, 4))::bytea), 'hex'), 'alarm_device', id, $1 FROM d`,
      [schoolId, N],
    );
    for (let i = 1; i <= N; i++) secrets.push(`Device dk_f${i}:sf${i}`);
  });

  afterAll(async () => {
    for (const c of consoles) c.close();
    await stop(api);
    await stop(worker);
    await stop(redis);
    await pg?.end();
    await police?.close();
    if (db) await releaseDatabase(db.name);
    try {
      unlinkSync(configFile);
    } catch {
      /* gone */
    }
  });

  it('keeps all 1,000 alarms and relays each once by dedup key, and every console gets each once', async () => {
    const secret = loadConfig({ ...process.env, NODE_ENV: 'test', CONFIG_FILE: configFile }).auth.jwtSecret;
    const token = jwt.sign({ usr: 'fault-console', role: 'operator', sch: null, ims: Date.now() }, secret, {
      algorithm: 'HS256',
      subject: randomUUID(),
      jwtid: randomUUID(),
      expiresIn: 3600,
      issuer: 'shouhu',
    });
    const url = `http://127.0.0.1:${apiPort}`;
    const steady = new TestConsole(url, token, { reconnection: true });
    const away = new TestConsole(url, token, { reconnection: true });
    consoles.push(steady, away);
    await steady.ready();
    await away.ready();
    const startSeq = { steady: steady.snapshots[0].seq, away: away.snapshots[0].seq };
    let retries = 0;
    const pressOnce = async (i: number): Promise<void> => {
      // The device retries with the same event id until it gets a 2xx.
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/incidents/press`, {
            method: 'POST',
            headers: { Authorization: secrets[i], 'Content-Type': 'application/json' },
            body: JSON.stringify({ eventId: `press-${i}` }),
            signal: AbortSignal.timeout(10000),
          });
          if (res.status === 201 || res.status === 200) return;
          if (res.status < 500) throw new Error(`press ${i}: ${res.status} ${await res.text()}`);
        } catch (e) {
          if ((e as Error).message.startsWith('press ')) throw e;
        }
        retries++;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    let next = 0;
    let done = 0;
    const faults: Promise<void>[] = [];
    const at = (count: number, fault: () => Promise<void>) => {
      let fired = false;
      return () => {
        if (!fired && done >= count) {
          fired = true;
          faults.push(fault());
        }
      };
    };
    const triggers = [
      at(300, async () => {
        away.socket.disconnect(); // the second console goes away…
      }),
      at(600, async () => {
        away.socket.connect(); // …and comes back, resuming from the last seq it saw
      }),
      at(150, async () => {
        police.failing = false; // the endpoint recovers; queued relays now run
      }),
      at(250, async () => {
        await stop(worker); // (a) SIGKILL mid-job
        await new Promise((r) => setTimeout(r, 500));
        startWorker();
      }),
      at(500, async () => {
        await stop(redis); // (b) Redis restarts empty
        await new Promise((r) => setTimeout(r, 500));
        redis = await startRedis(redisPort);
      }),
      at(750, async () => {
        firstApi = api;
        await stop(api); // (c) api restarts; presses in flight are retried
        await startApi();
      }),
    ];
    const lane = async () => {
      while (next < N) {
        const i = next++;
        await pressOnce(i);
        done++;
        for (const t of triggers) t();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    await Promise.all(faults);

    const { rows } = await pg.query(`SELECT count(*)::int AS n, count(DISTINCT alarm_device_id)::int AS devices, max(press_count) AS presses FROM incidents`);
    expect(rows[0]).toEqual({ n: N, devices: N, presses: 1 });
    const presses = await pg.query(`SELECT count(*)::int AS n FROM incident_presses`);
    expect(presses.rows[0].n).toBe(N);

    await waitFor(
      async () => (await pg.query(`SELECT count(*)::int AS n FROM incidents WHERE relay_delivered_at IS NOT NULL`)).rows[0].n === N,
      150_000,
      'every relay delivered',
    ).catch(async (e) => {
      const diag = await pg.query(
        `SELECT job_name, (dispatched_at IS NULL) AS undispatched, (done_at IS NULL) AS pending, count(*)::int AS n, min(available_at) AS first FROM alarm_outbox GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      );
      const att = await pg.query(`SELECT relay_attempts, (relay_delivered_at IS NULL) AS open, count(*)::int AS n FROM incidents GROUP BY 1, 2 ORDER BY 1, 2`);
      throw new Error(
        `${(e as Error).message}\noutbox: ${JSON.stringify(diag.rows)}\nattempts: ${JSON.stringify(att.rows)}\npolice requests: ${police.requests.size}, accepted ${police.accepted.size}\nworker: ${worker?.output()}\napi: ${api?.output()}`,
      );
    });
    const ids = (await pg.query(`SELECT id FROM incidents`)).rows.map((r) => r.id as string);
    // Every incident reached the police endpoint under its own dedup key, and nothing else did.
    expect(police.accepted.size).toBe(N);
    expect(ids.every((id) => police.accepted.get(id) === 1)).toBe(true);
    expect(police.badSignatures).toBe(0);
    // Deliveries the receiver had to dedup: only possible for a job killed between the endpoint's
    // answer and the commit of "delivered" (at most the jobs in flight when the worker died).
    const twice = [...police.delivered.values()].filter((n) => n > 1).length;
    expect(twice).toBeLessThanOrEqual(CONCURRENCY + 20);
    const pending = await pg.query(`SELECT count(*)::int AS n FROM alarm_outbox WHERE job_name = 'alarms.police-relay' AND done_at IS NULL`);
    expect(pending.rows[0].n).toBe(0);

    // The consoles: every incident once, in seq order, and exactly the stored events (no gaps).
    for (const [name, c] of [
      ['steady', steady],
      ['away', away],
    ] as const) {
      await c
        .until(() => c.events.filter((e) => e.type === 'incident.raised').length >= N, `${name}: all ${N} incidents`, 60_000)
        .catch(async (e) => {
          const held = await pg.query(
            `SELECT pid, application_name, state, now() - xact_start AS age, left(query, 200) AS query FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL`,
          );
          const tail = await pg.query(
            `SELECT max(seq)::int AS max, count(*) FILTER (WHERE type = 'incident.raised' AND seq > $1)::int AS raised_after,
                  count(*) FILTER (WHERE type = 'incident.raised')::int AS raised, min(seq)::int AS min FROM console_events`,
            [c.lastSeq],
          );
          const orphans = await pg.query(
            `SELECT i.id, i.created_at, i.first_press_at, i.press_count, (SELECT json_agg(json_build_object('a', t.action, 'at', t.at)) FROM incident_timeline t WHERE t.incident_id = i.id) AS tl
           FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM console_events e WHERE e.type = 'incident.raised' AND e.payload->>'incidentId' = i.id::text) LIMIT 5`,
          );
          const got = new Set(c.events.filter((x) => x.type === 'incident.raised').map((x) => x.payload.incidentId));
          const notGot = (await pg.query(`SELECT seq, payload->>'incidentId' AS id FROM console_events WHERE type = 'incident.raised'`)).rows.filter(
            (r) => !got.has(r.id),
          );
          const m = await fetch(`${url}/metrics`)
            .then((r) => r.text())
            .catch((err: Error) => err.message);
          throw new Error(
            `${(e as Error).message}; lives ${JSON.stringify(c.lives)}, connected ${c.socket.connected}; stored ${JSON.stringify(tail.rows[0])}\n` +
              `incidents without a raised event: ${JSON.stringify(orphans.rows)}\nraised events not received: ${JSON.stringify(notGot.slice(0, 20))} (${notGot.length})\n` +
              `first api: ${firstApi?.output()}\n` +
              `metrics: ${m
                .split('\n')
                .filter((l) => l.startsWith('shouhu_console'))
                .join(' | ')}\ntransactions: ${JSON.stringify(held.rows)}\napi: ${api?.output()}`,
          );
        });
      const raisedIds = c.events.filter((e) => e.type === 'incident.raised').map((e) => e.payload.incidentId);
      expect(raisedIds).toHaveLength(N);
      expect(new Set(raisedIds).size).toBe(N);
      expect(new Set(raisedIds)).toEqual(new Set(ids));
      expect(c.reorders).toEqual([]);
      // In seq order, but for events flagged late (a transaction held their seq past console.gapMaxWaitMs, loaded machines).
      const inOrder = c.events.filter((e) => !c.lateArrivals.includes(e.seq)).map((e) => e.seq);
      expect(inOrder.every((s, i) => i === 0 || s > inOrder[i - 1])).toBe(true);
      const seqs = c.events.map((e) => e.seq).sort((a, b) => a - b);
      // What a district console is sent: every stored event but the school-only ones (a patrol
      // check during school hours writes those for the school's staff).
      const stored = (
        await pg.query(`SELECT seq FROM console_events WHERE seq > $1 AND seq <= $2 AND type <> ALL($3) ORDER BY seq`, [
          startSeq[name],
          seqs[seqs.length - 1],
          SCHOOL_ONLY_EVENTS,
        ])
      ).rows.map((r) => Number(r.seq));
      expect(seqs).toEqual(stored);
      expect(c.snapshots).toHaveLength(1); // caught up by replay every time, never by a snapshot
    }
    expect(away.lives.length).toBeGreaterThanOrEqual(2);
    expect(steady.lives.length).toBeGreaterThanOrEqual(2); // thrown off by the api restart, resumed
    process.stdout.write(
      `alarms-fault: ${N} alarms, ${retries} client retries, ${twice} deliveries deduplicated by the receiver; ` +
        `consoles: steady ${steady.arrivals.length} arrivals / ${steady.events.length} events, away ${away.arrivals.length} / ${away.events.length}\n`,
    );
  });
});

import { randomBytes } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { FakeReceiver, startFakeReceiver } from '../support/fake-receivers';
import { createDatabase, releaseDatabase, TIMETABLE } from '../support/harness';
import { waitFor } from '../support/police-receiver';
import { freePort, Proc, start, startRedis, stop, waitHttp } from '../support/processes';

/**
 * Escalations and their messages survive a worker SIGKILL: separate api and worker processes
 * (compiled code), 40 one-click alarms left unacknowledged, escalating at two levels to the duty
 * supervisor and the bureau leader through a slow fake SMS gateway. The worker is killed while
 * messages are in flight and restarted; afterwards every alarm reached both levels and every
 * message is recorded sent and arrived. A message killed mid-send may arrive twice (at-least-once:
 * the provider may have taken it before the kill) — never more than the sends in flight.
 */
const N = 40;
const SMS_SECRET = 'fault-sms-gateway-secret-0123456789';

describe('notifications: nothing is lost when the worker dies (slow)', () => {
  jest.setTimeout(180_000);
  let db: { url: string; name: string };
  let pg: Client;
  let sms: FakeReceiver;
  let redis: Proc | undefined;
  let api: Proc | undefined;
  let worker: Proc | undefined;
  let configFile: string;
  let apiPort: number;
  let redisPort: number;
  const secrets: string[] = [];

  const env = (role: 'api' | 'worker'): NodeJS.ProcessEnv => ({
    ...process.env,
    NODE_ENV: 'test',
    ROLE: role,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
    REDIS_KEY_PREFIX: 'notifyfault',
    CONFIG_FILE: configFile,
    LOG_LEVEL: 'error',
  });

  beforeAll(async () => {
    // dist/ (node dist/main.js) is built by the Jest global setup (test/support/global-setup.js).
    db = await createDatabase({ migrated: true });
    sms = await startFakeReceiver('sms', { secret: SMS_SECRET });
    sms.delayMs = 400;
    redisPort = await freePort();
    apiPort = await freePort();
    configFile = join(tmpdir(), `shouhu-notify-fault-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(
      configFile,
      JSON.stringify({
        database: { poolSize: 10 },
        queue: { concurrency: 10, alarmsConcurrency: 10, notificationsConcurrency: 10, lockDurationMs: 2000, stalledIntervalMs: 1000 },
        alarms: { escalationSeconds: { P1: [2, 4], P2: [600], P3: [600], P4: [600] }, outbox: { pollMs: 250, redispatchAfterMs: 3000, batchSize: 500 } },
        notifications: { retryDelayMs: 300, timeoutMs: 3000, reconcileEveryMs: 1000, redispatchAfterMs: 3000, rosterCheckEveryMs: 0 },
      }),
    );
    redis = await startRedis(redisPort);
    api = start('node', ['dist/main.js'], env('api')); // migrates the database
    await waitHttp(`http://127.0.0.1:${apiPort}/health/live`, 60000, api);
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    const [{ id: districtId }] = (await pg.query(`INSERT INTO districts (code, name) VALUES ('nd', '通知区') RETURNING id`)).rows;
    const [{ id: zoneId }] = (
      await pg.query(`INSERT INTO school_zones (district_id, code, name, level) VALUES ($1, 'NZ', '通知学区', 'primary') RETURNING id`, [districtId])
    ).rows;
    const [{ id: schoolId }] = (
      await pg.query(
        `INSERT INTO schools (district_id, zone_id, code, name, type, timetable) VALUES ($1, $2, 'NS', '通知测试小学', 'primary', $3) RETURNING id`,
        [districtId, zoneId, JSON.stringify(TIMETABLE)],
      )
    ).rows;
    await pg.query(
      `WITH d AS (INSERT INTO alarm_devices (code, school_id, location, area_kind) SELECT 'NB-' || g, $1, '按钮' || g || '号', 'main_gate' FROM generate_series(1, $2) g RETURNING id, code)
       INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
       SELECT 'dk_n' || substr(code, 4), encode(sha256(('sn' || substr(code, 4))::bytea), 'hex'), 'alarm_device', id, $1 FROM d`,
      [schoolId, N],
    );
    for (let i = 1; i <= N; i++) secrets.push(`Device dk_n${i}:sn${i}`);
    // On duty: a supervisor and a leader; one SMS gateway channel; the default policy (level 1 supervisor, level 2 leader, every channel).
    const users = await pg.query(
      `INSERT INTO users (username, display_name, password_hash, role, phone) VALUES
         ('sup_fault', '王主管', 'x', 'supervisor', '13800000011'), ('lead_fault', '赵局长', 'x', 'supervisor', '13900000022') RETURNING id, username`,
    );
    const id = (u: string) => users.rows.find((r) => r.username === u).id as string;
    await pg.query(
      `INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at) VALUES
         ('duty_supervisor', $1, now() - interval '1 hour', now() + interval '1 day'), ('bureau_leader', $2, now() - interval '1 hour', now() + interval '1 day')`,
      [id('sup_fault'), id('lead_fault')],
    );
    await pg.query(`INSERT INTO notification_channels (kind, name, webhook_url, secret) VALUES ('sms', '短信网关', $1, $2)`, [sms.url, SMS_SECRET]);
    worker = start('node', ['dist/main.js'], env('worker'));
  });

  afterAll(async () => {
    await stop(api);
    await stop(worker);
    await stop(redis);
    await pg?.end();
    await sms?.close();
    if (db) await releaseDatabase(db.name);
    try {
      unlinkSync(configFile);
    } catch {
      /* gone */
    }
  });

  it('every alarm reaches both levels and every message arrives after a SIGKILL mid-send', async () => {
    for (let i = 0; i < N; i++) {
      const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/incidents/press`, {
        method: 'POST',
        headers: { Authorization: secrets[i], 'Content-Type': 'application/json' },
        body: JSON.stringify({ eventId: `np-${i}` }),
      });
      expect(res.status).toBe(201);
    }
    // Kill the worker while level-1 messages are being sent (the gateway answers slowly), then bring it back.
    await waitFor(async () => sms.received.length >= 5, 60000, 'first messages');
    await stop(worker);
    await new Promise((r) => setTimeout(r, 1500));
    worker = start('node', ['dist/main.js'], env('worker'));

    const expected = N * 2;
    await waitFor(
      async () => (await pg.query(`SELECT count(*)::int AS n FROM notification_deliveries WHERE status = 'sent'`)).rows[0].n === expected,
      120000,
      `${expected} messages recorded sent`,
    );
    const levels = await pg.query(`SELECT escalation_level AS l, count(*)::int AS n FROM incidents GROUP BY 1`);
    expect(levels.rows).toEqual([{ l: 2, n: N }]);
    const all = await pg.query(`SELECT status, count(*)::int AS n FROM notification_deliveries GROUP BY 1`);
    expect(all.rows).toEqual([{ status: 'sent', n: expected }]);
    // Every message arrived (by the gateway's idempotency key = our dedup key), to the right person.
    const keys = new Map<string, number>();
    for (const m of sms.received) keys.set(m.key!, (keys.get(m.key!) ?? 0) + 1);
    expect(keys.size).toBe(expected);
    const dups = [...keys.values()].reduce((a, n) => a + n - 1, 0);
    expect(dups).toBeLessThanOrEqual(10); // at most the sends in flight at the kill (queue.notificationsConcurrency)
    expect(sms.rejected).toEqual([]);
    const to = new Set(sms.received.map((m) => m.body.to));
    expect([...to].sort()).toEqual(['13800000011', '13900000022']);
    // The notices the escalations handed over are all done.
    const pending = await pg.query(`SELECT count(*)::int AS n FROM alarm_outbox WHERE job_name = 'notifications.escalation' AND done_at IS NULL`);
    expect(pending.rows[0].n).toBe(0);
  });
});

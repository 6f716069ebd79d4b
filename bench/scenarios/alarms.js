'use strict';
/**
 * Alarm intake latency: button press (HTTP POST /incidents/press) → 2xx (incident committed),
 * and press → the console_events row is committed (seen through LISTEN, i.e. after commit).
 * Console *client* receipt is added once the console delivery lands. Phases: a steady 10
 * alarms/s, then a burst of 1,000/s for 10 s (0 lost: every press answered 2xx and present
 * once in Postgres). For scale, Postgres's single-commit rate is measured in the same run.
 *
 * Contract (bench/README.md): `run(ctx)` → [{ scenario, metric, value, unit, target }].
 * Runs from compiled code (npm run build first). Sizes can be reduced for a quick try:
 * BENCH_ALARMS_STEADY_SECONDS, BENCH_ALARMS_BURST_RATE, BENCH_ALARMS_BURST_SECONDS.
 */
const { randomBytes } = require('node:crypto');
const { join } = require('node:path');
const { Client } = require('pg');
const Redis = require('ioredis');
const { deleteRedisPrefix } = require('../lib');

const DIST = join(__dirname, '..', '..', 'dist');

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const round = (x) => Math.round(x * 100) / 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function pgSingleCommitRate(url, seconds, connections) {
  const clients = await Promise.all(Array.from({ length: connections }, async () => {
    const c = new Client({ connectionString: url });
    await c.connect();
    return c;
  }));
  await clients[0].query('CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), v text)');
  let n = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(clients.map(async (c) => {
    while (Date.now() < until) {
      await c.query('INSERT INTO bench_commit (v) VALUES ($1)', ['x']);
      n++;
    }
  }));
  await clients[0].query('DROP TABLE bench_commit');
  await Promise.all(clients.map((c) => c.end()));
  return n / seconds;
}

async function run(ctx = {}) {
  const { loadConfig } = require(join(DIST, 'config', 'config'));
  const { bootstrap } = require(join(DIST, 'bootstrap'));
  const adminUrl = ctx.databaseUrl || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = ctx.redisUrl || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';
  const steadySeconds = Number(process.env.BENCH_ALARMS_STEADY_SECONDS || 10);
  const burstRate = Number(process.env.BENCH_ALARMS_BURST_RATE || 1000);
  const burstSeconds = Number(process.env.BENCH_ALARMS_BURST_SECONDS || 10);
  const steadyN = steadySeconds * 10;
  const burstN = burstRate * burstSeconds;

  const dbName = `shouhu_bench_alarms_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const prefix = `shouhu-bench-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({ ...process.env, NODE_ENV: 'test' }, {
    role: 'all',
    database: { url: dbUrl, poolSize: 20 },
    redis: { url: redisUrl, keyPrefix: prefix },
    http: { port: 0, host: '127.0.0.1' },
    log: { level: 'error' },
  });
  const app = await bootstrap(config);
  const port = app.getHttpServer().address().port;
  const pg = new Client({ connectionString: dbUrl });
  await pg.connect();
  const results = [];
  try {
    // Fixtures: one button per alarm (an open alarm folds further presses of its button).
    const total = steadyN + burstN;
    const [{ id: districtId }] = (await pg.query(`INSERT INTO districts (code, name) VALUES ('bd', '压测区') RETURNING id`)).rows;
    const [{ id: zoneId }] = (await pg.query(`INSERT INTO school_zones (district_id, code, name, level) VALUES ($1, 'BZ', '压测学区', 'primary') RETURNING id`, [districtId])).rows;
    const timetable = { weekdays: [1, 2, 3, 4, 5], arrival: { start: '07:30', end: '08:10' }, dismissal: { start: '16:30', end: '17:10' }, schoolHours: { start: '07:30', end: '17:30' } };
    const [{ id: schoolId }] = (await pg.query(`INSERT INTO schools (district_id, zone_id, code, name, type, timetable) VALUES ($1, $2, 'BS', '压测小学', 'primary', $3) RETURNING id`, [districtId, zoneId, JSON.stringify(timetable)])).rows;
    await pg.query(
      `WITH d AS (INSERT INTO alarm_devices (code, school_id, location, area_kind) SELECT 'BB-' || g, $1, '岗亭' || g, 'main_gate' FROM generate_series(1, $2) g RETURNING id, code)
       INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
       SELECT 'dk_b' || substr(code, 4), encode(sha256(('sb' || substr(code, 4))::bytea), 'hex'), 'alarm_device', id, $1 FROM d`,
      [schoolId, total],
    );

    // press time per event id; console-commit time through LISTEN (NOTIFY is delivered on commit).
    const sentAt = new Map();
    const consoleAt = new Map();
    const listener = new Client({ connectionString: dbUrl });
    await listener.connect();
    let lastSeq = 0;
    let draining = Promise.resolve();
    listener.on('notification', () => {
      const t = performance.now();
      draining = draining.then(async () => {
        const { rows } = await pg.query(
          `SELECT seq, payload->>'alarmDeviceId' AS dev FROM console_events WHERE seq > $1 AND type = 'incident.raised' ORDER BY seq`,
          [lastSeq],
        );
        for (const r of rows) {
          lastSeq = Math.max(lastSeq, Number(r.seq));
          if (!consoleAt.has(r.dev)) consoleAt.set(r.dev, t);
        }
      });
    });
    await listener.query('LISTEN shouhu_console_events');
    const devIds = new Map((await pg.query(`SELECT id, code FROM alarm_devices`)).rows.map((r) => [Number(r.code.slice(3)), r.id]));

    const press = async (i, lat, failures) => {
      const t0 = performance.now();
      sentAt.set(devIds.get(i), t0);
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/incidents/press`, {
            method: 'POST',
            headers: { Authorization: `Device dk_b${i}:sb${i}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ eventId: `bench-${i}` }),
          });
          await res.arrayBuffer();
          if (res.status === 201 || res.status === 200) {
            lat.push(performance.now() - t0);
            return;
          }
        } catch {
          /* retried below with the same event id */
        }
        await sleep(50);
      }
      failures.n++;
    };

    const phase = async (name, from, count, rate) => {
      const lat = [];
      const failures = { n: 0 };
      const inflight = [];
      const start = performance.now();
      for (let k = 0; k < count; k++) {
        const due = start + (k * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        inflight.push(press(from + k, lat, failures));
      }
      await Promise.all(inflight);
      const elapsed = (performance.now() - start) / 1000;
      await sleep(500);
      await draining;
      const cons = [];
      for (let k = 0; k < count; k++) {
        const dev = devIds.get(from + k);
        if (consoleAt.has(dev)) cons.push(consoleAt.get(dev) - sentAt.get(dev));
      }
      lat.sort((a, b) => a - b);
      cons.sort((a, b) => a - b);
      const s = `alarms.${name}`;
      results.push(
        { scenario: s, metric: 'press_to_2xx_p50', value: round(pct(lat, 50)), unit: 'ms', target: null },
        { scenario: s, metric: 'press_to_2xx_p99', value: round(pct(lat, 99)), unit: 'ms', target: name === 'steady_10ps' ? 100 : null },
        { scenario: s, metric: 'press_to_2xx_max', value: round(lat[lat.length - 1]), unit: 'ms', target: null },
        { scenario: s, metric: 'press_to_console_event_committed_p50', value: round(pct(cons, 50)), unit: 'ms', target: null },
        { scenario: s, metric: 'press_to_console_event_committed_p99', value: round(pct(cons, 99)), unit: 'ms', target: name === 'steady_10ps' ? 100 : null },
        { scenario: s, metric: 'press_to_console_event_committed_max', value: round(cons[cons.length - 1]), unit: 'ms', target: null },
        { scenario: s, metric: 'achieved_rate', value: round(count / elapsed), unit: 'alarms/s', target: rate },
        { scenario: s, metric: 'unanswered', value: failures.n, unit: 'alarms', target: 0 },
      );
    };

    await phase('steady_10ps', 1, steadyN, 10);
    await phase(`burst_${burstRate}ps_${burstSeconds}s`, steadyN + 1, burstN, burstRate);
    await listener.end();

    const { rows } = await pg.query(`SELECT count(*)::int AS n, count(DISTINCT alarm_device_id)::int AS d FROM incidents`);
    results.push({ scenario: 'alarms.burst', metric: 'lost', value: total - rows[0].d, unit: 'alarms', target: 0 });
    results.push({ scenario: 'alarms.burst', metric: 'duplicated', value: rows[0].n - rows[0].d, unit: 'alarms', target: 0 });
    // The ceiling for "commit before you answer": Postgres single-row commits on this machine.
    results.push({ scenario: 'alarms.postgres', metric: 'single_commit_rate_1conn', value: Math.round(await pgSingleCommitRate(dbUrl, 3, 1)), unit: 'commits/s', target: null });
    results.push({ scenario: 'alarms.postgres', metric: 'single_commit_rate_16conn', value: Math.round(await pgSingleCommitRate(dbUrl, 3, 16)), unit: 'commits/s', target: null });
  } finally {
    await pg.end();
    await app.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    const r = new Redis(redisUrl);
    await deleteRedisPrefix(r, prefix);
    await r.quit();
  }
  return results;
}

module.exports = { run };

if (require.main === module) {
  run().then((r) => console.table(r), (e) => {
    console.error(e);
    process.exit(1);
  });
}

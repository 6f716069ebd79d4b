'use strict';
/**
 * Intake with Redis down (issue 11 §1/§6: "a bench row for intake with Redis down (press → 2xx
 * p99)"). Its own service (`node dist/main.js`, role all), its own database and its own
 * redis-server on a free port — the shared Redis is never touched. Button presses are made
 * open-loop at BENCH_REDIS_DOWN_RATE/s (default 50) for BENCH_REDIS_DOWN_SECONDS (default 10), one
 * button each: first with Redis up (the control, same run: the machine is shared), then after
 * the redis-server is SIGKILLed. Latency counts from the scheduled
 * press time to the 2xx. Target: p99 ≤ 100 ms, the steady-state press → console target of the
 * alarms scenario (GA/T 368: shown at the center within 2 s, with room for the console leg) — an
 * outage must not slow intake; 0 lost (every press answered 2xx and present once in Postgres).
 * Then Redis is restarted (empty) and the time until every pending outbox job of those alarms is
 * handed to the queue again is reported (informational: the reconnect resync).
 */
const { spawn } = require('node:child_process');
const { createHash, randomBytes } = require('node:crypto');
const path = require('node:path');
const { Client } = require('pg');
const { percentile, sleep, freePort, cpuSeconds } = require('../lib');

const ROOT = path.join(__dirname, '..', '..');
const RATE = Number(process.env.BENCH_REDIS_DOWN_RATE || 50);
const SECONDS = Number(process.env.BENCH_REDIS_DOWN_SECONDS || 10);
const round = (x) => Math.round(x * 10) / 10;
/** Presses before the control phase (JIT, credential cache, pool): not measured. */
const WARMUP = 20;

/** Polls an async `check` until it holds, or throws after `ms`. */
async function until(check, ms, what, everyMs = 50) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`alarms-redis-down: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return until(() => out.includes('Ready to accept connections'), 10_000, 'redis-server').then(() => child);
}

const kill = (child, signal = 'SIGKILL') =>
  !child || child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => (child.once('exit', r), child.kill(signal)));

async function run(ctx) {
  const log = ctx.log ?? ((m) => process.stdout.write(`[alarms-redis-down] ${m}\n`));
  const scenario = 'alarms-redis-down';
  const N = RATE * SECONDS;
  const adminUrl = Object.assign(new URL(ctx.databaseUrl), { pathname: '/postgres' }).toString();
  const dbName = `shouhu_bench_rd_${process.pid}_${randomBytes(3).toString('hex')}`;
  const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const redisPort = await freePort();
  const port = await freePort();
  let redis;
  let svc;
  let db;
  try {
    redis = await startRedis(redisPort);
    svc = spawn(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        ROLE: 'all',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: dbUrl,
        REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
        REDIS_KEY_PREFIX: `bench-rd-${randomBytes(3).toString('hex')}`,
        LOG_LEVEL: 'error',
        SHOUHU__DATABASE__EMBEDDED_FALLBACK: 'false',
        SHOUHU__DATABASE__POOL_SIZE: '10',
        SHOUHU__ALARMS__PRESSES_PER_SECOND: '1000',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const base = `http://127.0.0.1:${port}`;
    await until(
      () =>
        fetch(`${base}/health/ready`).then(
          (r) => r.ok,
          () => false,
        ),
      60_000,
      'the service',
    );
    db = new Client({ connectionString: dbUrl });
    await db.connect();
    const [{ id: districtId }] = (await db.query(`INSERT INTO districts (code, name) VALUES ('rd', '降级区') RETURNING id`)).rows;
    const [{ id: schoolId }] = (
      await db.query(
        `INSERT INTO schools (district_id, code, name, type, timetable) VALUES ($1, 'RD', '降级测试小学', 'primary',
           '{"weekdays":[1,2,3,4,5],"arrival":{"start":"07:30","end":"08:10"},"dismissal":{"start":"16:30","end":"17:10"},"schoolHours":{"start":"07:30","end":"17:30"}}') RETURNING id`,
        [districtId],
      )
    ).rows;
    const secrets = Array.from({ length: 2 * N + WARMUP }, () => randomBytes(16).toString('hex'));
    await db.query(
      `WITH d AS (INSERT INTO alarm_devices (code, school_id, location, area_kind) SELECT 'RD-' || g, $1, '岗亭' || g, 'main_gate' FROM generate_series(1, $2) g RETURNING id, code)
       INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
       SELECT 'dk_rd' || substr(code, 4), ($3::text[])[substr(code, 4)::int], 'alarm_device', id, $1 FROM d`,
      [schoolId, 2 * N + WARMUP, secrets.map((s) => createHash('sha256').update(s).digest('hex'))],
    );
    /** Open-loop presses at RATE/s on buttons [from, from + N): latencies from the scheduled time, failures, service CPU. */
    const phase = async (from, tag) => {
      const latencies = [];
      let failed = 0;
      const cpu0 = cpuSeconds(svc.pid);
      const t0 = performance.now();
      await Promise.all(
        secrets.slice(from, from + N).map(async (secret, k) => {
          const i = from + k;
          const due = t0 + (k * 1000) / RATE;
          await sleep(Math.max(0, due - performance.now()));
          try {
            const res = await fetch(`${base}/api/v1/incidents/press`, {
              method: 'POST',
              headers: { Authorization: `Device dk_rd${i + 1}:${secret}`, 'Content-Type': 'application/json' },
              body: JSON.stringify({ eventId: `rd-${tag}-${i}` }),
              signal: globalThis.AbortSignal.timeout(10_000),
            });
            await res.arrayBuffer();
            if (res.status === 201) latencies.push(performance.now() - due);
            else failed++;
          } catch {
            failed++;
          }
        }),
      );
      return { latencies, failed, cpuMsPerPress: ((cpuSeconds(svc.pid) - cpu0) * 1000) / N };
    };
    for (let i = 2 * N; i < 2 * N + WARMUP; i++) {
      await fetch(`${base}/api/v1/incidents/press`, {
        method: 'POST',
        headers: { Authorization: `Device dk_rd${i + 1}:${secrets[i]}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ eventId: `rd-warm-${i}` }),
      }).then((r) => r.arrayBuffer());
    }
    // Control: the same presses with Redis up, in the same run (the machine is shared).
    const up = await phase(0, 'up');
    log(`Redis up: p99 ${round(percentile(up.latencies, 99))} ms`);
    await kill(redis);
    redis = undefined;
    await sleep(1000); // the service has noticed
    log(`redis-server killed; ${N} presses at ${RATE}/s`);
    const down = await phase(N, 'down');
    const { latencies, failed } = down;
    const stored = (await db.query(`SELECT count(*)::int AS n, count(DISTINCT alarm_device_id)::int AS d FROM incidents`)).rows[0];
    const lost = 2 * N + WARMUP - stored.d;

    const back = performance.now();
    redis = await startRedis(redisPort);
    await until(
      async () => (await db.query(`SELECT count(*)::int AS n FROM alarm_outbox WHERE done_at IS NULL AND dispatched_at IS NULL`)).rows[0].n === 0,
      120_000,
      'every pending job handed to the queue',
      100,
    );
    const resyncMs = performance.now() - back;
    log(`p99 ${round(percentile(latencies, 99))} ms, ${failed} not 2xx, ${lost} lost; queue caught up ${Math.round(resyncMs)} ms after Redis returned`);
    return [
      { scenario, metric: 'redis_up.press_to_2xx.p99', value: round(percentile(up.latencies, 99)), unit: 'ms', target: null },
      { scenario, metric: 'redis_up.service_cpu_per_press', value: round(up.cpuMsPerPress), unit: 'ms', target: null },
      { scenario, metric: 'press_to_2xx.p50', value: round(percentile(latencies, 50)), unit: 'ms', target: null },
      { scenario, metric: 'press_to_2xx.p99', value: round(percentile(latencies, 99)), unit: 'ms', target: '<= 100' },
      { scenario, metric: 'press_to_2xx.max', value: round(Math.max(...latencies)), unit: 'ms', target: null },
      { scenario, metric: 'service_cpu_per_press', value: round(down.cpuMsPerPress), unit: 'ms', target: null },
      { scenario, metric: 'presses_not_2xx', value: failed + up.failed, unit: 'count', target: '<= 0' },
      { scenario, metric: 'lost', value: lost, unit: 'count', target: '<= 0' },
      { scenario, metric: 'duplicated', value: stored.n - stored.d, unit: 'count', target: '<= 0' },
      { scenario, metric: 'queue_caught_up_after_redis_back', value: Math.round(resyncMs), unit: 'ms', target: null },
    ];
  } finally {
    await db?.end().catch(() => undefined);
    await kill(svc, 'SIGTERM');
    await kill(redis);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

module.exports = { run };

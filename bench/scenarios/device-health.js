'use strict';
/**
 * Device liveness at scale (issue 3). Requires `npm run build` (uses dist/).
 *
 *  1. A bench database with N cameras (default 1,000,000; BENCH_HEALTH_DEVICES to change) under
 *     1000 synthetic schools, inserted server-side with generate_series (fast, no round trips),
 *     all recorded online so ingest measures the steady-state hot path.
 *  2. An api process (child, role api) — it loads the N devices into its in-memory index at boot;
 *     its RSS is reported after boot and after the ingest.
 *  3. Redis's own pipelined write rate: ZADD of 1000 members per command, C concurrent pipelines.
 *  4. HTTP batch ingest: C keep-alive connections posting batches of 1000 camera heartbeats.
 *  5. Sweep: a worker-role context in this process (seedAtBoot over N devices), then 1 % of the
 *     deadlines are made due and one sweep runs (offline transitions, outages, events in
 *     Postgres); an idle sweep over the N-member set is timed too. The sweep reads the Redis
 *     deadline set, so "registered devices" = rows in cameras + members of that set.
 */
const { spawn } = require('node:child_process');
const { createHash, randomBytes } = require('node:crypto');
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { Client } = require('pg');
const Redis = require('ioredis');
const { deleteRedisPrefix, cpuSeconds, heartbeatPoster, sleep } = require('../lib');

const ROOT = path.join(__dirname, '..', '..');
const dist = (p) => require(path.join(ROOT, 'dist', p));

const rssMb = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
};
const gb = (prefix, n) => prefix + String(n).padStart(7, '0');

async function run(ctx = {}) {
  const log = ctx.log ?? ((m) => process.stdout.write(`[device-health] ${m}\n`));
  const N = Number(process.env.BENCH_HEALTH_DEVICES ?? ctx.devices ?? 1_000_000);
  const ingestSeconds = Number(process.env.BENCH_HEALTH_SECONDS ?? 10);
  const C = Number(process.env.BENCH_HEALTH_CONNECTIONS ?? 8);
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
  const dbName = `shouhu_bench_health_${process.pid}`;
  const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
  const prefix = `shouhu-bench-health-${randomBytes(3).toString('hex')}`;
  const port = 39000 + (process.pid % 1000);
  const results = [];
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  let api;
  let worker;
  const redis = new Redis(redisUrl);
  try {
    const { loadConfig } = dist('config/config');
    const config = loadConfig(
      { ...process.env, NODE_ENV: 'test' },
      {
        role: 'worker',
        database: { url: dbUrl, poolSize: 10 },
        redis: { url: redisUrl, keyPrefix: prefix },
        log: { level: 'warn' },
        liveness: { sweepEveryMs: 0 },
      },
    );
    await dist('infra/database/data-source').runMigrations(config);

    // 1. N cameras under 1000 schools, server-side.
    let t0 = Date.now();
    const db = new Client({ connectionString: dbUrl });
    await db.connect();
    await db.query(`INSERT INTO districts (code, name) VALUES ('bench', '基准区')`);
    await db.query(`
      INSERT INTO schools (district_id, code, name, type, timetable)
      SELECT (SELECT id FROM districts), 'S' || g, '学校' || g, 'primary',
             '{"weekdays":[1,2,3,4,5],"arrival":{"start":"07:30","end":"08:10"},"dismissal":{"start":"16:30","end":"17:10"},"schoolHours":{"start":"07:30","end":"17:30"}}'
        FROM generate_series(1, 1000) g`);
    await db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind, status)
       SELECT s.ids[1 + g % 1000], '3401000000132' || lpad(g::text, 7, '0'), '3401000000131' || lpad(g::text, 7, '0'), '摄像机' || g, 'perimeter', 'online'
         FROM generate_series(1, $1::int) g, (SELECT array_agg(id ORDER BY code) AS ids FROM schools) s`,
      [N],
    );
    const secret = randomBytes(32).toString('base64url');
    await db.query(`INSERT INTO device_credentials (key_id, secret_hash, kind, label) VALUES ('dk_bench', $1, 'gateway', 'bench')`, [
      createHash('sha256').update(secret).digest('hex'),
    ]);
    await db.end();
    log(`registered ${N} cameras in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // 2. The api process.
    t0 = Date.now();
    // BENCH_HEALTH_API_NODE_ARGS: extra node flags for the api (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
    const apiNodeArgs = (process.env.BENCH_HEALTH_API_NODE_ARGS ?? '').split(' ').filter(Boolean);
    api = spawn(process.execPath, [...apiNodeArgs, path.join(ROOT, 'dist', 'main.js')], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        ROLE: 'api',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: dbUrl,
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        SHOUHU__LIVENESS__SWEEP_EVERY_MS: '0',
        SHOUHU__DATABASE__EMBEDDED_FALLBACK: 'false',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    for (;;) {
      if (api.exitCode !== null) throw new Error(`api exited with ${api.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/health/live`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      await sleep(250);
    }
    const bootSeconds = (Date.now() - t0) / 1000;
    const rssBoot = rssMb(api.pid);
    log(`api ready in ${bootSeconds.toFixed(1)} s, RSS ${rssBoot} MB`);

    // 3. Redis's own pipelined write rate (same command shape as the hot path).
    const key = `${prefix}:bench:zadd`;
    const zaddArgs = (offset) => {
      const a = [key, 'GT'];
      const now = Date.now();
      for (let i = 0; i < 1000; i++) a.push(now + 180000, `c:${String((offset + i) % N).padStart(36, '0')}`);
      return a;
    };
    const conns = Array.from({ length: C }, () => new Redis(redisUrl));
    let redisWrites = 0;
    const redisEnd = Date.now() + 3000;
    t0 = Date.now();
    await Promise.all(
      conns.map(async (c, k) => {
        let off = k * 1000;
        while (Date.now() < redisEnd) {
          await c.call('ZADD', zaddArgs(off));
          redisWrites += 1000;
          off += C * 1000;
        }
      }),
    );
    const redisRate = redisWrites / ((Date.now() - t0) / 1000);
    await Promise.all(conns.map((c) => c.quit()));
    await redis.del(key);
    log(`redis pipelined ZADD: ${Math.round(redisRate)} members/s`);

    // 4. HTTP batch ingest.
    const bodies = [];
    for (let b = 0; b < Math.min(200, Math.ceil(N / 1000)); b++) {
      const hb = [];
      for (let i = 0; i < 1000; i++) {
        const g = 1 + ((b * 1000 + i) % N);
        hb.push({ deviceId: gb('3401000000132', g), channelId: gb('3401000000131', g) });
      }
      bodies.push(Buffer.from(JSON.stringify({ heartbeats: hb })));
    }
    const post = heartbeatPoster(port, `Device dk_bench:${secret}`, C);
    let accepted = 0;
    let requests = 0;
    const apiCpu0 = cpuSeconds(api.pid);
    const genCpu0 = process.cpuUsage();
    const ingestEnd = Date.now() + ingestSeconds * 1000;
    t0 = Date.now();
    await Promise.all(
      Array.from({ length: C }, async (_, k) => {
        let i = k;
        while (Date.now() < ingestEnd) {
          // Not `accepted += await post()`: that reads `accepted` before the await, and with C
          // connections in flight the other connections' additions are lost (undercounting ~C×).
          const n = await post(bodies[i % bodies.length]);
          accepted += n;
          requests++;
          i += C;
        }
      }),
    );
    // Every body holds 1000 known devices: anything less means the count (or the intake) is wrong.
    if (accepted !== requests * 1000) throw new Error(`ingest accepted ${accepted} heartbeats over ${requests} requests of 1000`);
    const ingestRate = accepted / ((Date.now() - t0) / 1000);
    // Heartbeats per CPU-second of the api: what the code costs, less sensitive to the other
    // load on a shared machine than the wall-clock rate.
    const perApiCpu = accepted / (cpuSeconds(api.pid) - apiCpu0);
    // The load generator (this process) shares the 2 cores with the api: its CPU share says how
    // much of the box the client itself takes.
    const genCpu = process.cpuUsage(genCpu0);
    const genCpuSeconds = (genCpu.user + genCpu.system) / 1e6;
    const apiCpuSeconds = accepted / perApiCpu;
    const rssAfter = rssMb(api.pid);
    post.close();
    log(
      `http batch ingest: ${Math.round(ingestRate)} heartbeats/s over ${requests} requests (${C} connections), ${Math.round(perApiCpu)} per api CPU-second; api CPU ${apiCpuSeconds.toFixed(1)} s, load generator CPU ${genCpuSeconds.toFixed(1)} s; api RSS ${rssAfter} MB`,
    );
    api.kill('SIGTERM');
    await new Promise((r) => api.once('exit', r));
    api = undefined;

    // 5. Sweep with N registered devices.
    t0 = Date.now();
    const { bootstrap } = dist('bootstrap');
    worker = await bootstrap(config, { migrate: false });
    const health = worker.get(dist('modules/device-health/device-health.service').DeviceHealthService);
    const seedSeconds = (Date.now() - t0) / 1000;
    // The deadlines are sharded (liveness.shards key pairs under their own hash tags).
    const deadlineKeys = dist('modules/device-health/device-health.service')
      .shardKeys(config)
      .map((k) => k.deadlines);
    let tracked = 0;
    for (const k of deadlineKeys) tracked += await redis.zcard(k);
    log(`worker boot (index + deadline seeding of ${tracked} devices) ${seedSeconds.toFixed(1)} s`);
    let s0 = performance.now();
    await health.runSweep(Date.now());
    const idleSweepMs = performance.now() - s0;
    // Make 1 % of the fleet due (as if they fell silent 3 intervals ago).
    const dueCount = Math.max(1, Math.round(N / 100));
    const now = Date.now();
    for (const k of deadlineKeys) {
      const members = await redis.zrange(k, 0, -1);
      const share = Math.round((dueCount * members.length) / tracked);
      const pick = [];
      for (let i = 0; i < share; i++) pick.push(members[Math.floor((i * members.length) / share)]);
      for (let i = 0; i < pick.length; i += 10000) await redis.call('ZADD', [k, 'XX', ...pick.slice(i, i + 10000).flatMap((m) => [now - 1000, m])]);
    }
    s0 = performance.now();
    const res = await health.runSweep(now);
    const sweepMs = performance.now() - s0;
    log(`sweep: idle ${idleSweepMs.toFixed(1)} ms; ${res.offline} devices offline (${res.batches} batches) in ${sweepMs.toFixed(0)} ms`);

    results.push(
      { scenario: 'device-health', metric: 'http_batch_ingest', value: Math.round(ingestRate), unit: 'heartbeats/s', target: '>= 100000' },
      { scenario: 'device-health', metric: 'http_batch_ingest_per_api_cpu_second', value: Math.round(perApiCpu), unit: 'heartbeats/cpu-s', target: null },
      {
        scenario: 'device-health',
        metric: 'load_generator_cpu_share',
        value: Math.round((genCpuSeconds / (genCpuSeconds + apiCpuSeconds)) * 1000) / 1000,
        unit: 'ratio',
        target: null,
      },
      { scenario: 'device-health', metric: 'redis_pipelined_zadd', value: Math.round(redisRate), unit: 'members/s', target: null },
      { scenario: 'device-health', metric: 'ingest_to_redis_ratio', value: Math.round((ingestRate / redisRate) * 1000) / 1000, unit: 'ratio', target: null },
      { scenario: 'device-health', metric: 'registered_devices', value: N, unit: 'devices', target: null },
      { scenario: 'device-health', metric: 'sweep_idle', value: Math.round(idleSweepMs * 10) / 10, unit: 'ms', target: '<= 1000' },
      { scenario: 'device-health', metric: `sweep_${dueCount}_offline`, value: Math.round(sweepMs), unit: 'ms', target: '<= 1000' },
      { scenario: 'device-health', metric: 'api_rss_after_boot', value: rssBoot, unit: 'MB', target: null },
      { scenario: 'device-health', metric: 'api_rss_after_ingest', value: rssAfter, unit: 'MB', target: null },
      { scenario: 'device-health', metric: 'api_boot_with_index', value: Math.round(bootSeconds * 10) / 10, unit: 's', target: null },
      { scenario: 'device-health', metric: 'worker_boot_seed', value: Math.round(seedSeconds * 10) / 10, unit: 's', target: null },
    );
    return results;
  } finally {
    if (api) api.kill('SIGTERM');
    if (worker) await worker.close().catch(() => undefined);
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

module.exports = { run };

if (require.main === module) {
  run()
    .then((r) => {
      console.table(r);
      process.exit(0);
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}

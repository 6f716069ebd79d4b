'use strict';
/**
 * Heartbeat ingest on a Redis Cluster vs one Redis, in the same run (issue 17 §6: "heartbeat ingest
 * on the cluster ≥ 0.8 × on a single Redis in the same run"). Requires `npm run build` (dist/).
 *
 *  1. A database of its own with N cameras (default 100,000; BENCH_CLUSTER_DEVICES) under 100
 *     schools, all online, and a gateway credential.
 *  2. A three-master Redis Cluster of Debian's redis-server (scripts/redis-cluster.js) on ports of
 *     its own; the single Redis is the bench's (ctx.redisUrl).
 *  3. Rounds alternating single / cluster (BENCH_CLUSTER_ROUNDS, default 2 each): an api process
 *     (ROLE=api, compiled) on that Redis — REDIS_MODE=cluster with the cluster's seeds for the
 *     cluster — then C keep-alive connections post batches of 1000 heartbeats for S seconds
 *     (BENCH_CLUSTER_SECONDS, default 5). The api's hot path per batch: one ZADD + one SMISMEMBER
 *     per liveness shard touched (16 shards: one pipeline on a single Redis, one per shard on the
 *     cluster). Each mode's figure is its best round (the machine is shared: the best is the least
 *     disturbed).
 */
const { spawn } = require('node:child_process');
const { createHash, randomBytes } = require('node:crypto');
const path = require('node:path');
const { Client } = require('pg');
const { cpuSeconds, freePort, heartbeatPoster, sleep } = require('../lib');

const ROOT = path.join(__dirname, '..', '..');
const gb = (prefix, n) => prefix + String(n).padStart(7, '0');

async function run(ctx = {}) {
  const log = ctx.log ?? ((m) => process.stdout.write(`[redis-cluster] ${m}\n`));
  const N = Number(process.env.BENCH_CLUSTER_DEVICES ?? 100_000);
  const seconds = Number(process.env.BENCH_CLUSTER_SECONDS ?? 5);
  const rounds = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 2);
  const C = Number(process.env.BENCH_CLUSTER_CONNECTIONS ?? 8);
  const ports = (process.env.BENCH_CLUSTER_PORTS ?? '7111,7112,7113').split(',').map(Number);
  const adminUrl = process.env.TEST_DATABASE_URL ?? process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = ctx.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
  const dbName = `shouhu_bench_cluster_${process.pid}`;
  const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
  const prefix = `shouhu-bench-cluster-${randomBytes(3).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  let cluster;
  let api;
  try {
    const { loadConfig } = require(path.join(ROOT, 'dist/config/config'));
    const config = loadConfig({ ...process.env, NODE_ENV: 'test' }, { database: { url: dbUrl }, redis: { url: redisUrl, keyPrefix: prefix } });
    await require(path.join(ROOT, 'dist/infra/database/data-source')).runMigrations(config);
    const db = new Client({ connectionString: dbUrl });
    await db.connect();
    await db.query(`INSERT INTO districts (code, name) VALUES ('bench', '基准区')`);
    await db.query(`
      INSERT INTO schools (district_id, code, name, type, timetable)
      SELECT (SELECT id FROM districts), 'S' || g, '学校' || g, 'primary',
             '{"weekdays":[1,2,3,4,5],"arrival":{"start":"07:30","end":"08:10"},"dismissal":{"start":"16:30","end":"17:10"},"schoolHours":{"start":"07:30","end":"17:30"}}'
        FROM generate_series(1, 100) g`);
    await db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind, status)
       SELECT s.ids[1 + g % 100], '3401000000132' || lpad(g::text, 7, '0'), '3401000000131' || lpad(g::text, 7, '0'), '摄像机' || g, 'perimeter', 'online'
         FROM generate_series(1, $1::int) g, (SELECT array_agg(id ORDER BY code) AS ids FROM schools) s`,
      [N],
    );
    const secret = randomBytes(32).toString('base64url');
    await db.query(`INSERT INTO device_credentials (key_id, secret_hash, kind, label) VALUES ('dk_bench', $1, 'gateway', 'bench')`, [
      createHash('sha256').update(secret).digest('hex'),
    ]);
    await db.end();
    log(`registered ${N} cameras`);

    cluster = await require(path.join(ROOT, 'scripts/redis-cluster.js')).startRedisCluster(ports);
    log(`redis cluster of ${ports.length} masters on ${ports.join(', ')}`);

    const bodies = [];
    for (let b = 0; b < Math.min(100, Math.ceil(N / 1000)); b++) {
      const hb = [];
      for (let i = 0; i < 1000; i++) {
        const g = 1 + ((b * 1000 + i) % N);
        hb.push({ deviceId: gb('3401000000132', g), channelId: gb('3401000000131', g) });
      }
      bodies.push(Buffer.from(JSON.stringify({ heartbeats: hb })));
    }

    const ingest = async (mode) => {
      const port = await freePort();
      api = spawn(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
        env: {
          ...process.env,
          NODE_ENV: 'test',
          ROLE: 'api',
          PORT: String(port),
          HOST: '127.0.0.1',
          DATABASE_URL: dbUrl,
          REDIS_URL: mode === 'cluster' ? cluster.urls[0] : redisUrl,
          REDIS_MODE: mode,
          REDIS_CLUSTER_NODES: mode === 'cluster' ? cluster.urls.join(',') : '',
          REDIS_KEY_PREFIX: prefix,
          LOG_LEVEL: 'warn',
          SHOUHU__LIVENESS__SWEEP_EVERY_MS: '0',
          SHOUHU__DATABASE__EMBEDDED_FALLBACK: 'false',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      for (;;) {
        if (api.exitCode !== null) throw new Error(`api (${mode}) exited with ${api.exitCode}`);
        const ok = await fetch(`http://127.0.0.1:${port}/health/live`)
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) break;
        await sleep(250);
      }
      const post = heartbeatPoster(port, `Device dk_bench:${secret}`, C);
      // Warm-up: the index is loaded, the cluster's slot map known, the connections open.
      for (let i = 0; i < C; i++) await post(bodies[i % bodies.length]);
      let accepted = 0;
      let requests = 0;
      const cpu0 = cpuSeconds(api.pid);
      const end = Date.now() + seconds * 1000;
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: C }, async (_, k) => {
          let i = k;
          while (Date.now() < end) {
            const n = await post(bodies[i % bodies.length]);
            accepted += n;
            requests++;
            i += C;
          }
        }),
      );
      if (accepted !== requests * 1000) throw new Error(`${mode}: accepted ${accepted} heartbeats over ${requests} requests of 1000`);
      const rate = accepted / ((Date.now() - t0) / 1000);
      const perCpu = accepted / (cpuSeconds(api.pid) - cpu0);
      post.close();
      api.kill('SIGTERM');
      await new Promise((r) => api.once('exit', r));
      api = undefined;
      log(`${mode}: ${Math.round(rate)} heartbeats/s, ${Math.round(perCpu)} per api CPU-second`);
      return { rate, perCpu };
    };

    const best = { single: { rate: 0, perCpu: 0 }, cluster: { rate: 0, perCpu: 0 } };
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['single', 'cluster']) {
        const m = await ingest(mode);
        if (m.rate > best[mode].rate) best[mode] = m;
      }
    }
    const ratio = best.cluster.rate / best.single.rate;
    return [
      { scenario: 'redis-cluster', metric: 'http_batch_ingest_single', value: Math.round(best.single.rate), unit: 'heartbeats/s', target: null },
      { scenario: 'redis-cluster', metric: 'http_batch_ingest_cluster', value: Math.round(best.cluster.rate), unit: 'heartbeats/s', target: null },
      { scenario: 'redis-cluster', metric: 'cluster_to_single_ingest_ratio', value: Math.round(ratio * 1000) / 1000, unit: 'ratio', target: '>= 0.8' },
      { scenario: 'redis-cluster', metric: 'ingest_per_api_cpu_second_single', value: Math.round(best.single.perCpu), unit: 'heartbeats/cpu-s', target: null },
      {
        scenario: 'redis-cluster',
        metric: 'ingest_per_api_cpu_second_cluster',
        value: Math.round(best.cluster.perCpu),
        unit: 'heartbeats/cpu-s',
        target: null,
      },
    ];
  } finally {
    if (api) api.kill('SIGTERM');
    if (cluster) await cluster.stop();
    const Redis = require('ioredis');
    const r = new Redis(redisUrl);
    await require('../lib').deleteRedisPrefix(r, prefix);
    await r.quit();
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

#!/usr/bin/env node
/*
 * `npm run bench [-- <scenario>[,<scenario>…]]`: benchmarks against a real running service.
 *  1. creates a fresh database and a unique Redis key prefix;
 *  2. seeds the demo district through the CLI (migrations included), timing it;
 *  3. starts the service as a child process (`node dist/main.js`, role all) and logs in as admin;
 *  4. measures raw-limit baselines on this machine (Redis, Postgres, HTTP) so scenarios can
 *     report ratios;
 *  5. runs every bench/scenarios/*.js (or the named ones) and collects their rows;
 *  6. writes bench/results/latest.json and latest.md, prints the table, cleans everything up.
 * The contract for scenarios is in bench/README.md.
 */
'use strict';
const { execFile, spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { runConcurrent, summarize, meetsTarget, deleteRedisPrefix, freePort } = require('./lib');

const root = path.join(__dirname, '..');
const resultsDir = path.join(__dirname, 'results');
const log = (m) => process.stdout.write(`[bench] ${m}\n`);

const { loadConfig } = require(path.join(root, 'dist/config/config.js'));
const base = loadConfig({ ...process.env, NODE_ENV: 'development' });
const adminDbUrl = process.env.BENCH_ADMIN_DATABASE_URL ?? withDb(base.database.url, 'postgres');
const redisUrl = process.env.BENCH_REDIS_URL ?? base.redis.url;

function withDb(url, name) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function pgAdmin(sql) {
  const { Client } = require('pg');
  const c = new Client({ connectionString: adminDbUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: root, env, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** fetch wrapper: JSON in and out, latency measured; `token` defaults to the admin's, null sends none. */
function makeHttp(baseUrl, getToken) {
  return async (method, p, body, token) => {
    const t = token === undefined ? getToken() : token;
    const headers = {};
    if (t) headers.authorization = `Bearer ${t}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const started = performance.now();
    const res = await fetch(baseUrl + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const ms = performance.now() - started;
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json, ms };
  };
}

async function waitReady(baseUrl, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode} (see bench/results/service.log)`);
    try {
      const res = await fetch(`${baseUrl}/health/ready`);
      if (res.status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the service was not ready within ${timeoutMs / 1000} s (see bench/results/service.log)`);
}

/** Raw limits of this machine, measured now: what the service's figures can be compared with. */
async function baselines(ctx) {
  const rows = [];
  const Redis = require('ioredis');
  const r = new Redis(ctx.redisUrl);
  const n = 50_000;
  const batch = 1000;
  let started = performance.now();
  for (let i = 0; i < n; i += batch) {
    const p = r.pipeline();
    for (let j = i; j < i + batch; j++) p.set(`${ctx.keyPrefix}:bench:baseline:${j}`, 'x');
    await p.exec();
  }
  const redisSetPerSec = (n / (performance.now() - started)) * 1000;
  for (let i = 0; i < n; i += batch) await r.unlink(...Array.from({ length: batch }, (_, j) => `${ctx.keyPrefix}:bench:baseline:${i + j}`));
  await r.quit();
  rows.push({ scenario: 'baseline', metric: 'redis.pipelined_set_rate', value: Math.round(redisSetPerSec), unit: 'ops/s', target: null });

  const { Client } = require('pg');
  const c = new Client({ connectionString: ctx.databaseUrl });
  await c.connect();
  await c.query(`CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, v text NOT NULL)`);
  const commits = 500;
  started = performance.now();
  for (let i = 0; i < commits; i++) await c.query(`INSERT INTO bench_baseline (v) VALUES ($1)`, [`row ${i}`]);
  const pgCommitPerSec = (commits / (performance.now() - started)) * 1000;
  const rowsN = 20_000;
  started = performance.now();
  await c.query(`INSERT INTO bench_baseline (v) SELECT 'row ' || g FROM generate_series(1, $1) g`, [rowsN]);
  const pgBatchRowsPerSec = (rowsN / (performance.now() - started)) * 1000;
  await c.query(`DROP TABLE bench_baseline`);
  await c.end();
  rows.push({ scenario: 'baseline', metric: 'pg.single_commit_insert_rate', value: Math.round(pgCommitPerSec), unit: 'commits/s', target: null });
  rows.push({ scenario: 'baseline', metric: 'pg.batch_insert_rate', value: Math.round(pgBatchRowsPerSec), unit: 'rows/s', target: null });

  // The HTTP stack with no work behind it: the ceiling for any API figure.
  const http = await runConcurrent({ concurrency: 8, total: 1000 }, async () => {
    const res = await ctx.http('GET', '/health/live', undefined, null);
    if (res.status !== 200) throw new Error(`health/live: ${res.status}`);
    return res.ms;
  });
  rows.push(...summarize('baseline', 'http.health_live', http));
  ctx.baselines = { redisSetPerSec, pgCommitPerSec, pgBatchRowsPerSec, httpNoopPerSec: http.perSecond };
  return rows;
}

function table(rows) {
  const head = '| scenario | metric | value | unit | target | ok |\n|---|---|---:|---|---|:-:|\n';
  const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1)) : String(v));
  return (
    head +
    rows
      .map((r) => {
        const ok = meetsTarget(r.value, r.target);
        return `| ${r.scenario} | ${r.metric} | ${fmt(r.value)} | ${r.unit} | ${r.target ?? ''} | ${ok === null ? '' : ok ? '✓' : '✗'} |`;
      })
      .join('\n') +
    '\n'
  );
}

async function main() {
  const only = (process.argv[2] ?? '').split(',').filter(Boolean);
  const available = fs
    .readdirSync(path.join(__dirname, 'scenarios'))
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .sort();
  const unknown = only.filter((n) => !available.includes(n));
  if (unknown.length) throw new Error(`no such scenario: ${unknown.join(', ')} (have: ${available.join(', ')})`);
  const selected = only.length ? available.filter((n) => only.includes(n)) : available;

  const id = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const dbName = `shouhu_bench_${id}`;
  const databaseUrl = withDb(adminDbUrl, dbName);
  const keyPrefix = `shouhu-bench-${id}`;
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  fs.mkdirSync(resultsDir, { recursive: true });
  const env = {
    ...process.env,
    NODE_ENV: 'development',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    PORT: String(port),
    HOST: '127.0.0.1',
    ROLE: 'all',
    SHOUHU__DEMO__SEED_ON_START: 'false',
    // The notifications scenario's fake providers listen on loopback, which notifications.allowPrivateTargets refuses by default (A16).
    SHOUHU__NOTIFICATIONS__ALLOW_PRIVATE_TARGETS: 'true',
    // The scenarios raise alarms from one admin account at 10–20 a second to measure the server: the per-user limit (attack F17) is not under test.
    SHOUHU__ALARMS__USER_RAISES_PER_MINUTE: '100000',
    SHOUHU__ALARMS__USER_RAISE_BURST: '100000',
  };

  let child;
  const cleanup = async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // WITH (FORCE) ends connections a scenario left open; a client of ours without an 'error' listener would end the run with it.
    const stray = (e) => {
      // 57P01 'terminating connection due to administrator command', then the socket's 'Connection terminated unexpectedly'.
      if (e && (e.code === '57P01' || /^Connection terminated/.test(e.message)))
        log(`a connection left open by a scenario was ended by the drop (${e.message})`);
      else throw e;
    };
    process.on('uncaughtException', stray);
    await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => log(`could not drop ${dbName}: ${e.message}`));
    await new Promise((r) => setTimeout(r, 200)); // the ended connections' errors arrive now
    process.off('uncaughtException', stray);
    const Redis = require('ioredis');
    const r = new Redis(redisUrl);
    await deleteRedisPrefix(r, keyPrefix);
    await r.quit();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  const rows = [];
  let failed = 0;
  // Written after every scenario and again at the end: a crash later (a scenario's stray connection killed by
  // the database drop took the whole run's figures with it once) loses nothing measured.
  const save = () => {
    const md = `# Benchmark results\n\n${new Date().toISOString()} · node ${process.version} · ${require('node:os').cpus().length} cores\n\n${table(rows)}`;
    fs.writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(rows, null, 2) + '\n');
    fs.writeFileSync(path.join(resultsDir, 'latest.md'), md);
  };
  try {
    await pgAdmin(`CREATE DATABASE ${dbName}`);
    log(`database ${dbName}, Redis prefix ${keyPrefix}`);

    let started = performance.now();
    await run(process.execPath, ['dist/cli.js', 'seed'], env);
    const seedMs = performance.now() - started;
    rows.push({ scenario: 'seed', metric: 'demo_district.duration', value: Math.round(seedMs), unit: 'ms', target: '<= 15000' });
    log(`seeded the demo district in ${(seedMs / 1000).toFixed(1)} s (migrations and demo users included)`);

    const logFile = fs.openSync(path.join(resultsDir, 'service.log'), 'w');
    started = performance.now();
    // BENCH_SERVICE_NODE_ARGS: Node flags for the service alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
    // (then bench/tools/cpuprofile-top.js); NODE_OPTIONS refuses --cpu-prof and would reach every process.
    const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
    child = spawn(process.execPath, [...nodeArgs, 'dist/main.js'], { cwd: root, env, stdio: ['ignore', logFile, logFile] });
    await waitReady(baseUrl, child, 60_000);
    rows.push({ scenario: 'service', metric: 'boot_to_ready', value: Math.round(performance.now() - started), unit: 'ms', target: null });
    log(`service pid ${child.pid} ready at ${baseUrl}`);

    let adminToken;
    const http = makeHttp(baseUrl, () => adminToken);
    const login = await http('POST', '/api/v1/auth/login', { username: 'admin', password: base.demo.userPassword }, null);
    if (login.status !== 200) throw new Error(`admin login failed: ${login.status} ${JSON.stringify(login.body)}`);
    adminToken = login.body.accessToken;

    const ctx = { baseUrl, adminToken, databaseUrl, redisUrl, keyPrefix, pid: child.pid, http, log: (m) => log(`  ${m}`), baselines: {} };
    log('baselines…');
    rows.push(...(await baselines(ctx)));

    for (const name of selected) {
      log(`scenario ${name}…`);
      const t0 = performance.now();
      try {
        const out = await require(path.join(__dirname, 'scenarios', `${name}.js`)).run(ctx);
        if (!Array.isArray(out)) throw new Error('run(ctx) must return an array of { scenario, metric, value, unit, target }');
        rows.push(...out);
        log(`scenario ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        failed++;
        log(`scenario ${name} FAILED: ${e.stack || e.message}`);
        rows.push({ scenario: name, metric: 'failed', value: 1, unit: 'count', target: '<= 0' });
      }
      save();
    }
  } finally {
    save();
    await cleanup();
  }

  save();
  process.stdout.write('\n' + table(rows));
  log('written bench/results/latest.json and latest.md');
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`[bench] ${e.stack || e.message}\n`);
  process.exit(1);
});

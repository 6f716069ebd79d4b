'use strict';
/**
 * GB/T 28181 on all cores and the registration storm (issue 16 §8), with sipp playing the devices.
 * Requires `npm run build` (dist/) and /usr/bin/sipp. Helpers are those of gb28181.js.
 *
 *  1. Keepalives/s with gb28181.processes = BENCH_GB_PROCESSES (default 2): the primary and a helper
 *     process reading the same UDP socket. As in gb28181.js: BENCH_GB_DEVICES (2000) devices with a
 *     camera each register, then sipp sends keepalives closed-loop (BENCH_GB_INFLIGHT in flight) for
 *     BENCH_GB_SECONDS; the rate is the platform's own count of answered keepalives (the helper's
 *     are counted by the primary). Target ≥ 40,000/s on two processes.
 *  2. In the same run, the same sipp keepalive run against the bare Node UDP echo of gb28181.js
 *     (one process): the machine's and sipp's ceiling; the ratio is what counts on a shared
 *     2-core machine where sipp itself needs a core.
 *  3. The storm: BENCH_GB_STORM_DEVICES (100,000) devices the platform knew before a restart (rows
 *     registered until an hour from now, a camera each, online) are loaded by a freshly started
 *     service (role all: the liveness sweep runs), and all re-register at once with digest
 *     (sipp register_storm.xml, BENCH_GB_STORM_RATE calls/s, a 503 waited out for its Retry-After).
 *     Rows: seconds until every device registered (target ≤ 60), REGISTERs answered 503, and false
 *     offlines — their cameras not online a sweep period after the last registration (target 0).
 */
const { spawn } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('pg');
const { freePort, sleep } = require('../lib');
const { runSipp, cpuSeconds, keepalivesAnswered, ECHO, PASSWORD } = require('./gb28181');

const ROOT = path.join(__dirname, '..', '..');

/** The service (dist/main.js) with SIP on a free port; resolves once ready. */
async function startService(ctx, role, extraEnv, log) {
  const httpPort = await freePort();
  const sipPort = await freePort();
  const nodeArgs = (process.env.BENCH_GB_API_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const svc = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: 'development',
      ROLE: role,
      PORT: String(httpPort),
      HOST: '127.0.0.1',
      DATABASE_URL: ctx.databaseUrl,
      REDIS_URL: ctx.redisUrl,
      REDIS_KEY_PREFIX: `${ctx.keyPrefix}:gbscale`,
      LOG_LEVEL: 'warn',
      SHOUHU__DEMO__SEED_ON_START: 'false',
      SHOUHU__GB28181__ENABLED: 'true',
      SHOUHU__GB28181__HOST: '127.0.0.1',
      SHOUHU__GB28181__PORT: String(sipPort),
      SHOUHU__GB28181__DEFAULT_PASSWORD: PASSWORD,
      SHOUHU__GB28181__RATE_LIMIT_PER_SECOND: '0',
      // Every simulated device speaks from one address: no per-source REGISTER limit either (gb28181.registerRateLimitPerSecond).
      SHOUHU__GB28181__REGISTER_RATE_LIMIT_PER_SECOND: '0',
      ...extraEnv,
    },
  });
  let err = '';
  svc.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
  const base = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; ; i++) {
    if (svc.exitCode !== null) throw new Error(`service exited: ${err.slice(-2000)}`);
    try {
      if ((await fetch(`${base}/health/ready`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (i > 1200) throw new Error('service did not become ready');
    await sleep(100);
  }
  log(`service (${role}) ready on SIP ${sipPort}`);
  return { svc, base, target: `127.0.0.1:${sipPort}`, stop: () => stopService(svc) };
}

async function stopService(svc) {
  if (svc && svc.exitCode === null) {
    svc.kill('SIGTERM');
    await new Promise((r) => svc.once('exit', r));
  }
}

async function metricSum(base, name, labels) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) n += Number(line.split(' ').pop());
  return n;
}

async function keepalives(ctx, db, work, schoolId, rows, log) {
  const scenario = 'gb28181-scale';
  const N = Number(process.env.BENCH_GB_DEVICES ?? 2000);
  const seconds = Number(process.env.BENCH_GB_SECONDS ?? 10);
  const inflight = Number(process.env.BENCH_GB_INFLIGHT ?? 2000);
  const processes = Number(process.env.BENCH_GB_PROCESSES ?? 2);
  const ids = Array.from({ length: N }, (_, i) => `3402000000132${String(7_000_000 + i).padStart(7, '0')}`);
  await db.query(
    `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind, status) SELECT $1, d, d, '基准' || d, 'perimeter', 'online' FROM unnest($2::text[]) d`,
    [schoolId, ids],
  );
  writeFileSync(
    path.join(work, 'reg.csv'),
    ['SEQUENTIAL', ...ids.map((id) => `${id};[authentication username=${id} password=${PASSWORD}];`)].join('\n') + '\n',
  );
  writeFileSync(path.join(work, 'ka.csv'), ['SEQUENTIAL', ...ids.map((id) => `${id};`)].join('\n') + '\n');
  let s;
  let echo;
  try {
    s = await startService(ctx, 'api', { SHOUHU__GB28181__PROCESSES: String(processes) }, log);
    const devicePort = ['-p', String(await freePort())];
    log(`registering ${N} devices…`);
    // As devices do (register_storm.xml): a 503 (gb28181.registerMaxInFlight) waited out for its Retry-After, then again.
    const reg = await runSipp(
      s.target,
      'register_storm.xml',
      path.join(work, 'reg.csv'),
      ['-m', String(N), '-r', '5000', '-l', '1000', '-timeout', '60s', '-timeout_error', '-default_behaviors', 'all,-bye', ...devicePort],
      work,
    );
    // sipp exits 1 on a "dead call": the platform answering a REGISTER retransmission (sent while the first answer was on
    // its way, on a loaded machine) after the call ended — correct SIP, a server answers every retransmission. What
    // counts is that every device registered: the platform's own rows say so (written behind: waited for, up to 20 s).
    let registered = 0;
    for (const until = Date.now() + 20_000; registered < N && Date.now() < until; await sleep(500))
      registered = (await db.query(`SELECT count(*)::int AS n FROM gb_devices WHERE device_id = ANY($1) AND registered`, [ids])).rows[0].n;
    if (registered < N) throw new Error(`${registered} of ${N} devices registered; sipp register exited ${reg.code}: ${reg.err.slice(0, 1000)}`);
    if (reg.code !== 0) log(`sipp register exited ${reg.code} (all ${N} registered): ${reg.err.slice(0, 300)}`);
    await sleep(2500);
    const keepaliveArgs = ['-m', '100000000', '-r', '100000', '-l', String(inflight), '-nr', '-timeout', `${seconds}s`, '-recv_timeout', '3000'];
    log(`keepalives on ${processes} SIP process(es) for ${seconds} s…`);
    const k0 = await keepalivesAnswered(s.base);
    const byHelper0 = await metricSum(s.base, 'shouhu_gb28181_events_total', { event: 'helper_keepalive' });
    const c0 = cpuSeconds(s.svc.pid);
    const t0 = performance.now();
    await runSipp(s.target, 'keepalive_only.xml', path.join(work, 'ka.csv'), [...keepaliveArgs, ...devicePort], work);
    const elapsed = (performance.now() - t0) / 1000;
    const c1 = cpuSeconds(s.svc.pid);
    await sleep(200); // the helper's last report
    const k1 = await keepalivesAnswered(s.base);
    const byHelper1 = await metricSum(s.base, 'shouhu_gb28181_events_total', { event: 'helper_keepalive' });
    const kaRate = (k1 - k0) / elapsed;
    rows.push({ scenario, metric: `keepalive_${processes}proc.rate`, value: Math.round(kaRate), unit: 'req/s', target: '>= 40000' });
    rows.push({
      scenario,
      metric: `keepalive_${processes}proc.helper_share`,
      value: Math.round(((byHelper1 - byHelper0) / Math.max(1, k1 - k0)) * 100) / 100,
      unit: 'ratio',
      target: null,
    });
    if (c0 && c1) {
      // The primary's CPU only (the helper is its child, not reaped until the end) and sipp's.
      rows.push({
        scenario,
        metric: `keepalive_${processes}proc.primary_cpu`,
        value: Math.round(((c1[0] - c0[0]) / elapsed) * 100) / 100,
        unit: 'cores',
        target: null,
      });
      rows.push({
        scenario,
        metric: `keepalive_${processes}proc.sipp_cpu`,
        value: Math.round(((c1[1] - c0[1]) / elapsed) * 100) / 100,
        unit: 'cores',
        target: null,
      });
    }
    await s.stop();
    s = null;

    // the bare echo, same sipp run
    echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['pipe', 'pipe', 'ignore'] });
    const lines = [];
    echo.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n')));
    while (lines.length === 0) await sleep(20);
    const echoPort = Number(lines.shift());
    log(`echo baseline for ${seconds} s…`);
    const e0 = performance.now();
    await runSipp(`127.0.0.1:${echoPort}`, 'keepalive_only.xml', path.join(work, 'ka.csv'), keepaliveArgs, work);
    const eElapsed = (performance.now() - e0) / 1000;
    echo.stdin.write('count\n');
    while (!lines.some((l) => l.startsWith('n='))) await sleep(20);
    const echoRate = Number(lines.find((l) => l.startsWith('n=')).slice(2)) / eElapsed;
    rows.push({ scenario, metric: 'echo_baseline.rate', value: Math.round(echoRate), unit: 'req/s', target: null });
    rows.push({
      scenario,
      metric: `keepalive_${processes}proc.ratio_to_echo`,
      value: Math.round((kaRate / echoRate) * 100) / 100,
      unit: 'ratio',
      target: null,
    });
  } finally {
    if (echo) echo.kill();
    if (s) await s.stop();
    await db.query(`DELETE FROM gb_devices WHERE device_id = ANY($1)`, [ids]).catch(() => undefined);
    await db.query(`DELETE FROM cameras WHERE device_id = ANY($1)`, [ids]).catch(() => undefined);
  }
}

async function storm(ctx, db, work, schoolId, rows, log) {
  const scenario = 'gb28181-scale';
  const N = Number(process.env.BENCH_GB_STORM_DEVICES ?? 100_000);
  const rate = Number(process.env.BENCH_GB_STORM_RATE ?? 5000);
  const processes = Number(process.env.BENCH_GB_PROCESSES ?? 2);
  const ids = Array.from({ length: N }, (_, i) => `3402000000132${String(i).padStart(7, '0')}`);
  let s;
  try {
    log(`storm: ${N} devices known before the restart…`);
    // Registered until an hour from now, from an address sipp will not use: the restart resumes them, the storm re-registers them.
    await db.query(
      `INSERT INTO gb_devices (device_id, school_id, registered, call_id, transport, contact_address, contact_port, registered_at, expires_at)
       SELECT d, $1, true, 'before-restart-' || d, 'UDP', '127.0.0.1', 9, now() - interval '1 hour', now() + interval '1 hour' FROM unnest($2::text[]) d`,
      [schoolId, ids],
    );
    await db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind, status) SELECT $1, d, d, '风暴' || d, 'perimeter', 'online' FROM unnest($2::text[]) d`,
      [schoolId, ids],
    );
    writeFileSync(
      path.join(work, 'storm.csv'),
      ['SEQUENTIAL', ...ids.map((id) => `${id};[authentication username=${id} password=${PASSWORD}];`)].join('\n') + '\n',
    );
    s = await startService(ctx, 'all', { SHOUHU__GB28181__PROCESSES: String(processes) }, log);
    const storm = path.join(ROOT, 'test', 'protocol', 'sipp');
    log(`storm: ${N} devices re-registering with digest at ${rate}/s…`);
    const t0 = performance.now();
    const args = [s.target, '-sf', path.join(storm, 'register_storm.xml'), '-inf', path.join(work, 'storm.csv'), '-i', '127.0.0.1', '-nostdin'];
    args.push('-m', String(N), '-r', String(rate), '-l', String(N), '-timeout', '300s', '-timeout_error', '-default_behaviors', 'all,-bye');
    const r = await new Promise((resolve, reject) => {
      const p = spawn('sipp', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      p.on('error', reject);
      p.on('exit', (code) => resolve({ code, err }));
    });
    const seconds = (performance.now() - t0) / 1000;
    if (r.code !== 0) log(`sipp register_storm exited ${r.code}: ${r.err.slice(0, 1000)}`);
    await sleep(6000); // the registrations written behind (housekeeping), and one sweep period (liveness.sweepEveryMs) past the last one
    const { rows: reg } = await db.query(`SELECT count(*)::int AS n FROM gb_devices WHERE device_id = ANY($1) AND call_id NOT LIKE 'before-restart-%'`, [ids]);
    const registered = reg[0].n;
    rows.push({ scenario, metric: 'storm.devices', value: N, unit: 'count', target: null });
    rows.push({
      scenario,
      metric: 'storm.all_registered_s',
      // Not all registered: 9999, which fails the target (-1 passed '<= 60' in the first 100,000 run); sipp's exit code: storm.sipp_exit_code.
      value: registered === N ? Math.round(seconds * 10) / 10 : 9999,
      unit: 's',
      target: '<= 60',
    });
    rows.push({ scenario, metric: 'storm.registered', value: registered, unit: 'count', target: `>= ${N}` });
    rows.push({ scenario, metric: 'storm.sipp_exit_code', value: r.code ?? -1, unit: 'code', target: null }); // 1: a failed call or a dead call (an answer to a retransmission after the call ended)
    rows.push({
      scenario,
      metric: 'storm.register_503',
      value: await metricSum(s.base, 'shouhu_gb28181_requests_total', { kind: 'register', status: '503' }),
      unit: 'count',
      target: null,
    });
    rows.push({
      scenario,
      metric: 'storm.register_486',
      value: await metricSum(s.base, 'shouhu_gb28181_requests_total', { kind: 'register', status: '486' }),
      unit: 'count',
      target: '<= 0',
    });
    const { rows: off } = await db.query(`SELECT count(*)::int AS n FROM cameras WHERE device_id = ANY($1) AND status <> 'online'`, [ids]);
    rows.push({ scenario, metric: 'storm.false_offline', value: off[0].n, unit: 'count', target: '<= 0' });
  } finally {
    if (s) await s.stop();
    await db.query(`DELETE FROM gb_devices WHERE device_id = ANY($1)`, [ids]).catch(() => undefined);
    await db.query(`DELETE FROM cameras WHERE device_id = ANY($1)`, [ids]).catch(() => undefined);
  }
}

async function run(ctx = {}) {
  const log = ctx.log ?? ((m) => process.stdout.write(`[gb28181-scale] ${m}\n`));
  const rows = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-gbscale-'));
  const db = new Client({ connectionString: ctx.databaseUrl });
  await db.connect();
  try {
    const [{ id: schoolId }] = (await db.query(`SELECT id FROM schools ORDER BY code LIMIT 1`)).rows;
    if (process.env.BENCH_GB_SCALE_PARTS !== 'storm') await keepalives(ctx, db, work, schoolId, rows, log);
    if (process.env.BENCH_GB_SCALE_PARTS !== 'keepalive') await storm(ctx, db, work, schoolId, rows, log);
    return rows;
  } finally {
    await db.end();
    rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run };

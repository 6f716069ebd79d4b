'use strict';
/**
 * GB/T 28181 SIP front end (issue 7), with sipp (Debian sip-tester) playing the devices.
 * Requires `npm run build` (dist/) and /usr/bin/sipp.
 *
 *  1. N bench cameras (default 2000, BENCH_GB_DEVICES) are added to the bench database under
 *     the first seeded school, one GB/T 28181 device each, recorded online (steady state);
 *     they are removed again at the end.
 *  2. A service child process (role api, SIP enabled on a free port, no per-source rate limit
 *     since sipp sends every device from one socket) is started on the bench database.
 *  3. Registrations/s: sipp registers the N devices (digest: 401 challenge + authenticated
 *     REGISTER = 2 transactions each); each new registration also makes the platform send two
 *     queries (Catalog, DeviceInfo), answered 200 by sipp's default out-of-call scenario.
 *  4. Keepalives/s: sipp sends Keepalive MESSAGEs for the registered devices as fast as the
 *     platform answers them (closed loop: at most BENCH_GB_INFLIGHT in flight), for
 *     BENCH_GB_SECONDS (default 10); the rate is the platform's own count of answered
 *     keepalives over the window. Each keepalive becomes a device-health heartbeat (batched
 *     into pipelined Redis writes). Target ≥ 17,000/s: one million devices at the GB/T 28181
 *     default keepalive interval of 60 s (§9.6.1) on one process.
 *  5. Baseline: the same sipp keepalive run against a bare Node UDP "echo" (turns the request
 *     line into "SIP/2.0 200 OK", ~10 lines) in the same run: the machine's and sipp's own
 *     ceiling. The ratio says how much of it the platform keeps.
 *     The CPU split (service, sipp, echo in cores, µs per message) shows which side is busy:
 *     the echo run is paced by sipp's closed loop, not by the CPU, so the ratio can exceed 1.
 *
 * Profiling: BENCH_GB_API_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/gbprof" npm run bench -- gb28181,
 * then node bench/tools/cpuprofile-top.js /tmp/gbprof/*.cpuprofile 40 <fromSec> <toSec>.
 */
const { spawn, spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('pg');
const { freePort, sleep } = require('../lib');

const ROOT = path.join(__dirname, '..', '..');
const SIPP = path.join(ROOT, 'test', 'protocol', 'sipp');
const PASSWORD = 'bench-gb-password';

function runSipp(target, scenario, csv, args, cwd) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn('sipp', [target, '-sf', path.join(SIPP, scenario), '-inf', csv, '-i', '127.0.0.1', '-nostdin', ...args], {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, ms: performance.now() - started, err }));
  });
}

/**
 * CPU seconds from /proc (Linux; clock ticks at 100/s): [utime+stime of `pid`, cutime+cstime of
 * this process — the reaped children, i.e. the sipp runs]. null where /proc is not there.
 */
function cpuSeconds(pid) {
  try {
    const f = (p) => readFileSync(p, 'utf8').split(') ').pop().split(' ');
    const own = f(`/proc/${pid}/stat`);
    const self = f('/proc/self/stat');
    // after "pid (comm) ": state is field 0, utime 11, stime 12, cutime 13, cstime 14
    return [(Number(own[11]) + Number(own[12])) / 100, (Number(self[13]) + Number(self[14])) / 100];
  } catch {
    return null;
  }
}

async function keepalivesAnswered(httpBase) {
  const text = await (await fetch(`${httpBase}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('shouhu_gb28181_requests_total{') && line.includes('kind="keepalive"') && line.includes('status="200"'))
      n += Number(line.split(' ').pop());
  return n;
}

/** The 10-line echo: any request back as a 200 with its own headers (all sipp needs to match it). */
const ECHO = `
const s = require('dgram').createSocket('udp4'); let n = 0;
s.on('message', (m, r) => { n++; const i = m.indexOf('\\r\\n'); s.send(Buffer.concat([Buffer.from('SIP/2.0 200 OK'), m.subarray(i)]), r.port, r.address); });
s.bind(0, '127.0.0.1', () => { try { s.setRecvBufferSize(8 << 20); } catch {} process.stdout.write(s.address().port + '\\n'); });
process.stdin.on('data', () => process.stdout.write('n=' + n + '\\n'));
`;

async function run(ctx = {}) {
  const log = ctx.log ?? ((m) => process.stdout.write(`[gb28181] ${m}\n`));
  if (spawnSync('sipp', ['-v']).error) throw new Error('sipp not found: apt-get install -y sip-tester');
  const N = Number(process.env.BENCH_GB_DEVICES ?? 2000);
  const seconds = Number(process.env.BENCH_GB_SECONDS ?? 10);
  const inflight = Number(process.env.BENCH_GB_INFLIGHT ?? 2000);
  const scenario = 'gb28181';
  const rows = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-gb-'));
  const ids = Array.from({ length: N }, (_, i) => `3402000000132${String(9_000_000 + i).padStart(7, '0')}`);
  const db = new Client({ connectionString: ctx.databaseUrl });
  await db.connect();
  let svc;
  let echo;
  try {
    const [{ id: schoolId }] = (await db.query(`SELECT id FROM schools ORDER BY code LIMIT 1`)).rows;
    await db.query(`DELETE FROM cameras WHERE device_id = ANY($1)`, [ids]);
    await db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind, status) SELECT $1, d, d, '基准' || d, 'perimeter', 'online' FROM unnest($2::text[]) d`,
      [schoolId, ids],
    );
    writeFileSync(
      path.join(work, 'reg.csv'),
      ['SEQUENTIAL', ...ids.map((id) => `${id};[authentication username=${id} password=${PASSWORD}];`)].join('\n') + '\n',
    );
    writeFileSync(path.join(work, 'ka.csv'), ['SEQUENTIAL', ...ids.map((id) => `${id};`)].join('\n') + '\n');

    // 2. the service, SIP enabled
    const httpPort = await freePort();
    const sipPort = await freePort();
    // BENCH_GB_API_NODE_ARGS: extra node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/gbprof"
    // (profiles are written when the service exits at the end of the scenario).
    const nodeArgs = (process.env.BENCH_GB_API_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    svc = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist', 'main.js')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        NODE_ENV: 'development',
        ROLE: 'api',
        PORT: String(httpPort),
        HOST: '127.0.0.1',
        DATABASE_URL: ctx.databaseUrl,
        REDIS_URL: ctx.redisUrl,
        REDIS_KEY_PREFIX: `${ctx.keyPrefix}:gb`,
        LOG_LEVEL: 'warn',
        SHOUHU__DEMO__SEED_ON_START: 'false',
        SHOUHU__GB28181__ENABLED: 'true',
        SHOUHU__GB28181__HOST: '127.0.0.1',
        SHOUHU__GB28181__PORT: String(sipPort),
        SHOUHU__GB28181__DEFAULT_PASSWORD: PASSWORD,
        SHOUHU__GB28181__RATE_LIMIT_PER_SECOND: '0',
        // Every simulated device speaks from one address: no per-source REGISTER limit either (gb28181.registerRateLimitPerSecond).
        SHOUHU__GB28181__REGISTER_RATE_LIMIT_PER_SECOND: '0',
      },
    });
    let svcErr = '';
    svc.stderr.on('data', (d) => (svcErr += d));
    const base = `http://127.0.0.1:${httpPort}`;
    for (let i = 0; ; i++) {
      if (svc.exitCode !== null) throw new Error(`service exited: ${svcErr.slice(-2000)}`);
      try {
        if ((await fetch(`${base}/health/ready`)).ok) break;
      } catch {
        /* not up yet */
      }
      if (i > 300) throw new Error('service did not become ready');
      await sleep(100);
    }
    const target = `127.0.0.1:${sipPort}`;
    // Registration and keepalives are separate sipp runs: the same local port, since messages are bound to the registration's address.
    const devicePort = ['-p', String(await freePort())];

    // 3. registrations
    log(`registering ${N} devices…`);
    const reg = await runSipp(
      target,
      'register.xml',
      path.join(work, 'reg.csv'),
      ['-m', String(N), '-r', '20000', '-l', '1000', '-timeout', '60s', '-timeout_error', ...devicePort],
      work,
    );
    if (reg.code !== 0) throw new Error(`sipp register exited ${reg.code}: ${reg.err.slice(0, 1000)}`);
    rows.push({ scenario, metric: 'register.rate', value: Math.round((N / reg.ms) * 1000), unit: 'req/s', target: null });
    await sleep(2500); // let the post-registration queries settle

    // 4. keepalives against the platform
    const keepaliveArgs = ['-m', '100000000', '-r', '100000', '-l', String(inflight), '-nr', '-timeout', `${seconds}s`, '-recv_timeout', '3000'];
    log(`keepalives for ${seconds} s…`);
    const k0 = await keepalivesAnswered(base);
    const c0 = cpuSeconds(svc.pid);
    const t0 = performance.now();
    await runSipp(target, 'keepalive_only.xml', path.join(work, 'ka.csv'), [...keepaliveArgs, ...devicePort], work);
    const elapsed = (performance.now() - t0) / 1000;
    const c1 = cpuSeconds(svc.pid);
    const k1 = await keepalivesAnswered(base);
    const kaRate = (k1 - k0) / elapsed;
    rows.push({ scenario, metric: 'keepalive.rate', value: Math.round(kaRate), unit: 'req/s', target: '>= 17000' });
    // Where the 2 cores went during the window: the service's and sipp's CPU, in cores.
    if (c0 && c1) {
      rows.push({ scenario, metric: 'keepalive.api_cpu', value: Math.round(((c1[0] - c0[0]) / elapsed) * 100) / 100, unit: 'cores', target: null });
      rows.push({ scenario, metric: 'keepalive.sipp_cpu', value: Math.round(((c1[1] - c0[1]) / elapsed) * 100) / 100, unit: 'cores', target: null });
      rows.push({ scenario, metric: 'keepalive.api_us_per_keepalive', value: Math.round(((c1[0] - c0[0]) / (k1 - k0)) * 1e7) / 10, unit: 'µs', target: null });
    }
    const { rows: online } = await db.query(`SELECT count(*)::int AS n FROM cameras WHERE device_id = ANY($1) AND status = 'online'`, [ids]);
    if (online[0].n !== N) throw new Error(`expected ${N} bench cameras online, found ${online[0].n}`);

    // 5. the bare echo, same sipp run
    echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['pipe', 'pipe', 'ignore'] });
    const lines = [];
    echo.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n')));
    while (lines.length === 0) await sleep(20);
    const echoPort = Number(lines.shift());
    log(`echo baseline for ${seconds} s…`);
    const ec0 = cpuSeconds(echo.pid);
    const e0 = performance.now();
    await runSipp(`127.0.0.1:${echoPort}`, 'keepalive_only.xml', path.join(work, 'ka.csv'), keepaliveArgs, work);
    const eElapsed = (performance.now() - e0) / 1000;
    const ec1 = cpuSeconds(echo.pid);
    echo.stdin.write('count\n');
    while (!lines.some((l) => l.startsWith('n='))) await sleep(20);
    const echoed = Number(lines.find((l) => l.startsWith('n=')).slice(2));
    const echoRate = echoed / eElapsed;
    rows.push({ scenario, metric: 'echo_baseline.rate', value: Math.round(echoRate), unit: 'req/s', target: null });
    if (ec0 && ec1) {
      rows.push({ scenario, metric: 'echo_baseline.echo_cpu', value: Math.round(((ec1[0] - ec0[0]) / eElapsed) * 100) / 100, unit: 'cores', target: null });
      rows.push({ scenario, metric: 'echo_baseline.sipp_cpu', value: Math.round(((ec1[1] - ec0[1]) / eElapsed) * 100) / 100, unit: 'cores', target: null });
      rows.push({ scenario, metric: 'echo_baseline.us_per_echo', value: Math.round(((ec1[0] - ec0[0]) / echoed) * 1e7) / 10, unit: 'µs', target: null });
    }
    rows.push({ scenario, metric: 'keepalive.ratio_to_echo', value: Math.round((kaRate / echoRate) * 100) / 100, unit: 'ratio', target: null });
    return rows;
  } finally {
    if (echo) echo.kill();
    if (svc && svc.exitCode === null) {
      svc.kill('SIGTERM');
      await new Promise((r) => svc.once('exit', r));
    }
    await db.query(`DELETE FROM gb_devices WHERE device_id = ANY($1)`, [ids]).catch(() => undefined);
    await db.query(`DELETE FROM cameras WHERE device_id = ANY($1)`, [ids]).catch(() => undefined);
    await db.end();
    rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run, runSipp, cpuSeconds, keepalivesAnswered, ECHO, PASSWORD };

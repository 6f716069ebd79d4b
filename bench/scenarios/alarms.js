'use strict';
/**
 * One-click alarms (issue 4): button press (HTTP POST /api/v1/incidents/press, device
 * credentials) → the incident.raised event received by a console client (socket.io, namespace
 * /console, connected as operator1, matched by incident id), against the running bench service,
 * while the heartbeat simulator plays the seeded district (`node dist/cli.js simulate`, its
 * own process, ~80 heartbeats/s).
 *
 * Phases (presses are scheduled open-loop; latency counts from the scheduled press time, so a
 * queue on the client side counts too):
 *  - steady: 10 alarms/s for 10 s — press → console receipt p50/p99/max, target p99 ≤ 100 ms
 *    (the issue);
 *  - burst: 1,000 alarms/s for 10 s over 10,000 buttons (issue 11 §6) — taken as offered: every
 *    press answered 2xx, received once on the console and present once in Postgres (target 0
 *    lost, 0 duplicated), press → 2xx and press → console p99 ≤ 500 ms, intake ≥ the offered
 *    rate within that latency (count ÷ (burst seconds + 0.5 s)). The drain time is from the last scheduled press to the last receipt; the
 *    achieved intake rate (presses / time to the last 2xx) is reported with its ratio to
 *    Postgres's single-commit rate measured by the harness in the same run
 *    (ctx.baselines.pgCommitPerSec: one connection, one-row INSERT per commit), and the
 *    service's CPU per alarm over the burst (steadier than rates on a shared machine).
 * Each alarm uses its own button (a second press of an open alarm's button folds into it).
 * The buttons live in a school of the scenario's own (codes BENCH-*), with never-expiring
 * keepalives so they do not go offline during the rest of the run; afterwards the scenario
 * resolves its incidents (outcome test) and removes their escalation timers, so later scenarios
 * see the district as it was.
 * Sizes for a quick try: BENCH_ALARMS_STEADY_SECONDS (10), BENCH_ALARMS_BURST_RATE (1000),
 * BENCH_ALARMS_BURST_SECONDS (10), BENCH_ALARMS_INFLIGHT (256: max requests in flight).
 */
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { Client } = require('pg');
const { percentile, cpuSeconds, histogramMean, resolveBenchIncidents, scrapeMetrics, sleep, until } = require('../lib');

const ROOT = join(__dirname, '..', '..');
const STEADY_SECONDS = Number(process.env.BENCH_ALARMS_STEADY_SECONDS || 10);
const BURST_RATE = Number(process.env.BENCH_ALARMS_BURST_RATE || 1000);
const BURST_SECONDS = Number(process.env.BENCH_ALARMS_BURST_SECONDS || 10);
const INFLIGHT = Number(process.env.BENCH_ALARMS_INFLIGHT || 256);
const WARMUP = 20;
const round = (x) => Math.round(x * 10) / 10;

/** The heartbeat simulator against the bench service; resolves once it plays its devices. */
function startSimulator(ctx, seconds) {
  const child = spawn(process.execPath, ['dist/cli.js', 'simulate', '--url', ctx.baseUrl, '--duration', `${seconds}s`], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'development', DATABASE_URL: ctx.databaseUrl, REDIS_URL: ctx.redisUrl, REDIS_KEY_PREFIX: ctx.keyPrefix },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const started = new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d;
      const m = /simulate: (\d+) devices \((\d+) silent/.exec(out);
      if (m) resolve({ devices: Number(m[1]), silent: Number(m[2]) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`simulator exited (${code}) before starting: ${out.slice(-500)}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return {
    started,
    stop,
    failedRequests: () =>
      Number(
        (/failed=(\d+)/.exec(
          out
            .split('\n')
            .reverse()
            .find((l) => /failed=/.test(l)) ?? '',
        ) ?? [0, 0])[1],
      ),
  };
}

async function run(ctx) {
  const { io } = require('socket.io-client');
  const { loadConfig } = require(join(ROOT, 'dist/config/config.js'));
  const password = loadConfig({ ...process.env, NODE_ENV: 'development' }).demo.userPassword;
  const scenario = 'alarms';
  const rows = [];
  const steadyN = STEADY_SECONDS * 10;
  const burstN = BURST_RATE * BURST_SECONDS;
  const total = WARMUP + steadyN + burstN;

  const pg = new Client({ connectionString: ctx.databaseUrl });
  await pg.connect();
  // The simulator first (it plays the devices registered when it starts: the seeded district).
  const sim = startSimulator(ctx, STEADY_SECONDS + BURST_SECONDS + 120);
  let socket;
  let schoolId;
  try {
    const simInfo = await sim.started;
    ctx.log(`heartbeat simulator: ${simInfo.devices} devices (${simInfo.silent} silent), ~${Math.round((simInfo.devices - simInfo.silent) / 60)} heartbeats/s`);

    // Fixtures: a school of our own in the seeded district, cameras at its gate, one button per alarm.
    const [{ district_id: districtId, zone_id: zoneId }] = (await pg.query(`SELECT district_id, zone_id FROM schools ORDER BY code LIMIT 1`)).rows;
    const timetable = {
      weekdays: [1, 2, 3, 4, 5],
      arrival: { start: '07:30', end: '08:10' },
      dismissal: { start: '16:30', end: '17:10' },
      schoolHours: { start: '07:30', end: '17:30' },
    };
    [{ id: schoolId }] = (
      await pg.query(
        `INSERT INTO schools (district_id, zone_id, code, name, type, timetable) VALUES ($1, $2, 'BENCH-ALARMS', '压测报警小学', 'primary', $3) RETURNING id`,
        [districtId, zoneId, JSON.stringify(timetable)],
      )
    ).rows;
    const cams = (
      await pg.query(
        `INSERT INTO cameras (school_id, device_id, channel_id, name, location, area_kind, stream_url, keepalive_seconds)
         SELECT $1, '99999000000000000001', lpad(g::text, 20, '9'), '南门' || g, '南门外', 'main_gate', 'rtsp://bench/' || g, 86400 FROM generate_series(1, 4) g RETURNING id`,
        [schoolId],
      )
    ).rows.map((r) => r.id);
    await pg.query(
      `WITH d AS (
         INSERT INTO alarm_devices (code, school_id, location, area_kind, linked_camera_ids, keepalive_seconds)
         SELECT 'BENCH-A' || g, $1, '南门岗亭' || g, 'main_gate', $3::uuid[], 86400 FROM generate_series(1, $2) g RETURNING id, code)
       INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
       SELECT 'dk_ba' || substr(code, 8), encode(sha256(('sa' || substr(code, 8))::bytea), 'hex'), 'alarm_device', id, $1 FROM d`,
      [schoolId, total, cams.slice(0, 2)],
    );

    // The console: operator1, as an operator at the control center sees it.
    const login = await ctx.http('POST', '/api/v1/auth/login', { username: 'operator1', password }, null);
    if (login.status !== 200) throw new Error(`operator1 login: ${login.status}`);
    const received = new Map(); // incidentId → [receipt times]
    let live = false;
    socket = io(`${ctx.baseUrl}/console`, { transports: ['websocket'], reconnection: false, auth: { token: login.body.accessToken } });
    socket.on('live', () => (live = true));
    socket.on('event', (e) => {
      if (e.type !== 'incident.raised') return;
      const t = performance.now();
      const list = received.get(e.payload.incidentId);
      if (list) list.push(t);
      else received.set(e.payload.incidentId, [t]);
    });
    await until(() => live, 30_000, 'the console to be live');

    // Open loop: press i is due at its scheduled time; at most INFLIGHT requests at once.
    let inflight = 0;
    const waiting = [];
    const acquire = () => (inflight < INFLIGHT ? (inflight++, Promise.resolve()) : new Promise((r) => waiting.push(r)));
    const release = () => (waiting.length ? waiting.shift()() : inflight--);
    const press = async (i, due, out) => {
      await acquire();
      try {
        for (let attempt = 0; attempt < 10; attempt++) {
          try {
            const res = await fetch(`${ctx.baseUrl}/api/v1/incidents/press`, {
              method: 'POST',
              headers: { authorization: `Device dk_ba${i}:sa${i}`, 'content-type': 'application/json' },
              body: JSON.stringify({ eventId: `bench-${i}` }),
            });
            const body = await res.json();
            if (res.status === 201 || res.status === 200) {
              out.push({ i, due, answered: performance.now(), id: body.id, created: body.created });
              return;
            }
            out.retries++;
          } catch {
            out.retries++; // retried with the same event id: idempotent
          }
          await sleep(100);
        }
        out.unanswered++;
      } finally {
        release();
      }
    };
    const phase = async (from, count, rate) => {
      const out = Object.assign([], { retries: 0, unanswered: 0 });
      const pending = [];
      const start = performance.now();
      for (let k = 0; k < count; k++) {
        const due = start + (k * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        pending.push(press(from + k, due, out));
      }
      const lastDue = start + ((count - 1) * 1000) / rate;
      await Promise.all(pending);
      await until(() => out.every((p) => received.has(p.id)), 120_000, 'every answered alarm on the console').catch(() => undefined);
      return { out, start, lastDue };
    };
    /** targets: press → console p99, press → 2xx p99, intake (alarms/s over the phase: count ÷ first due → last 2xx). */
    const measure = (name, p, count, rate, p99Target, answerTarget = null, intakeTarget = null) => {
      const receipt = p.out.filter((x) => received.has(x.id)).map((x) => received.get(x.id)[0] - x.due);
      const answer = p.out.map((x) => x.answered - x.due);
      const lost = count - p.out.filter((x) => received.has(x.id)).length;
      const dup = p.out.filter((x) => (received.get(x.id)?.length ?? 0) > 1).length;
      const lastAnswer = Math.max(...p.out.map((x) => x.answered));
      const lastReceipt = Math.max(...p.out.filter((x) => received.has(x.id)).map((x) => received.get(x.id)[0]));
      const intake = (count / (lastAnswer - p.start)) * 1000;
      rows.push(
        { scenario, metric: `${name}.press_to_console.p50`, value: round(percentile(receipt, 50)), unit: 'ms', target: null },
        { scenario, metric: `${name}.press_to_console.p99`, value: round(percentile(receipt, 99)), unit: 'ms', target: p99Target },
        { scenario, metric: `${name}.press_to_console.max`, value: round(Math.max(...receipt)), unit: 'ms', target: null },
        { scenario, metric: `${name}.press_to_2xx.p50`, value: round(percentile(answer, 50)), unit: 'ms', target: null },
        { scenario, metric: `${name}.press_to_2xx.p99`, value: round(percentile(answer, 99)), unit: 'ms', target: answerTarget },
        { scenario, metric: `${name}.intake_rate`, value: round(intake), unit: 'alarms/s', target: intakeTarget },
        { scenario, metric: `${name}.lost_on_console`, value: lost, unit: 'alarms', target: '<= 0' },
        { scenario, metric: `${name}.duplicated_on_console`, value: dup, unit: 'alarms', target: '<= 0' },
        { scenario, metric: `${name}.unanswered`, value: p.out.unanswered, unit: 'alarms', target: '<= 0' },
        { scenario, metric: `${name}.client_retries`, value: p.out.retries, unit: 'count', target: null },
      );
      return { intake, drainMs: lastReceipt - p.lastDue };
    };

    ctx.log(`warm-up (${WARMUP}), steady 10/s for ${STEADY_SECONDS} s…`);
    await phase(1, WARMUP, 10);
    const steady = await phase(WARMUP + 1, steadyN, 10);
    measure('steady_10ps', steady, steadyN, 10, '<= 100');
    ctx.log(`burst ${BURST_RATE}/s for ${BURST_SECONDS} s…`);
    const cpu0 = cpuSeconds(ctx.pid);
    const m0 = await scrapeMetrics(ctx.baseUrl);
    const burst = await phase(WARMUP + steadyN + 1, burstN, BURST_RATE);
    const cpuMs = ((cpuSeconds(ctx.pid) - cpu0) * 1000) / burstN;
    const m1 = await scrapeMetrics(ctx.baseUrl);
    // Issue 11 §6: taken as offered — the last press answered within the 500 ms latency target of the
    // burst's end, i.e. count ÷ (burst seconds + 0.5 s): ≥ 952/s for 1,000/s × 10 s — and p99s ≤ 500 ms.
    const intakeTarget = Math.floor(burstN / (BURST_SECONDS + 0.5));
    const b = measure(`burst_${BURST_RATE}ps`, burst, burstN, BURST_RATE, '<= 500', '<= 500', `>= ${intakeTarget}`);
    // Less noisy than rates on a shared machine: the service's own CPU per alarm (HTTP, intake, console delivery, outbox kick).
    rows.push({ scenario, metric: `burst_${BURST_RATE}ps.service_cpu_per_alarm`, value: Math.round(cpuMs * 100) / 100, unit: 'ms', target: null });
    rows.push({ scenario, metric: `burst_${BURST_RATE}ps.drain_after_last_press`, value: Math.round(b.drainMs), unit: 'ms', target: null });
    // Where a press's time went inside the service (alarms.metrics.ts): group slot wait, pool, locks, statements, WAL flush — and group sizes.
    for (const p of ['queued', 'connect', 'lock', 'apply', 'commit']) {
      const h = histogramMean(m0, m1, 'shouhu_alarm_intake_phase_seconds', `phase="${p}"`);
      if (h.mean !== null) rows.push({ scenario, metric: `burst_${BURST_RATE}ps.intake_${p}.mean`, value: round(h.mean * 1000), unit: 'ms', target: null });
    }
    const g = histogramMean(m0, m1, 'shouhu_alarm_intake_group_size');
    if (g.mean !== null) rows.push({ scenario, metric: `burst_${BURST_RATE}ps.intake_group_size.mean`, value: round(g.mean), unit: 'events', target: null });
    const h = histogramMean(m0, m1, 'shouhu_http_request_duration_seconds', 'method="POST",route="/api/v1/incidents/press",status="201"');
    if (h.mean !== null) rows.push({ scenario, metric: `burst_${BURST_RATE}ps.http_press.mean`, value: round(h.mean * 1000), unit: 'ms', target: null });
    const pgCommit = ctx.baselines.pgCommitPerSec;
    if (pgCommit)
      rows.push({
        scenario,
        metric: `burst_${BURST_RATE}ps.intake_vs_pg_single_commit`,
        value: Math.round((b.intake / pgCommit) * 100) / 100,
        unit: 'ratio',
        // The intake target over this run's Postgres single-commit rate: above 1 only by group commit.
        target: `>= ${Math.ceil((intakeTarget / pgCommit) * 100) / 100}`,
      });

    // Postgres: every pressed alarm once (one incident per button, one press row per event id).
    const [db] = (
      await pg.query(
        `SELECT count(*)::int AS n, count(DISTINCT i.alarm_device_id)::int AS devices, (SELECT count(*)::int FROM incident_presses p JOIN incidents x ON x.id = p.incident_id WHERE x.school_id = $1) AS presses
         FROM incidents i WHERE i.school_id = $1`,
        [schoolId],
      )
    ).rows;
    rows.push(
      { scenario, metric: 'postgres.lost', value: total - db.devices, unit: 'alarms', target: '<= 0' },
      { scenario, metric: 'postgres.duplicated', value: db.n - db.devices + (db.presses - db.n), unit: 'alarms', target: '<= 0' },
      { scenario, metric: 'simulator.failed_requests', value: sim.failedRequests(), unit: 'count', target: null },
    );
    if (total - db.devices !== 0 || db.n !== db.devices) throw new Error(`alarms bench: ${db.devices}/${total} alarms in Postgres, ${db.n} incidents`);
  } finally {
    socket?.close();
    await sim.stop();
    if (schoolId) await cleanup(ctx, pg, schoolId).catch((e) => ctx.log(`cleanup failed: ${e.message}`));
    await pg.end();
  }
  return rows;
}

/** Leave the district as found: resolve the bench incidents and drop their escalation timers. */
async function cleanup(ctx, pg, schoolId) {
  const rows = (await resolveBenchIncidents(pg, 'school_id = $1', [schoolId])).map((job_id) => ({ job_id }));
  const { Queue } = require('bullmq');
  const Redis = require('ioredis');
  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const q = new Queue('alarms', { connection, prefix: `${ctx.keyPrefix}:{${ctx.keyPrefix}:bull:alarms}` });
  for (let i = 0; i < rows.length; i += 500) await Promise.all(rows.slice(i, i + 500).map((r) => q.remove(r.job_id)));
  await q.close();
  connection.disconnect();
}

module.exports = { run };

'use strict';
const path = require('node:path');
/**
 * Helpers shared by bench scenarios (plain Node, no build step).
 *   const { runConcurrent, summarize, percentile, prng, cpuSeconds } = require('../lib');
 */
const fs = require('node:fs');

/** The q-th percentile (0–100) of a list of numbers, nearest-rank. */
function percentile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Runs `fn(i)` for i = 0…total-1 with at most `concurrency` calls in flight.
 * `fn` returns a latency in ms (or an object with `ms`); failures are counted, not thrown.
 * Returns { latencies, errors, elapsedMs, perSecond }.
 */
async function runConcurrent({ concurrency, total }, fn) {
  const latencies = [];
  let errors = 0;
  let next = 0;
  let firstError;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      try {
        const r = await fn(i);
        latencies.push(typeof r === 'number' ? r : r.ms);
      } catch (e) {
        errors++;
        firstError ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const elapsedMs = performance.now() - started;
  return { latencies, errors, firstError, elapsedMs, perSecond: (latencies.length / elapsedMs) * 1000 };
}

/** Standard rows for a latency/throughput run: p50, p99 (ms) and requests/s. */
function summarize(scenario, name, run, targets = {}) {
  const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
  const rows = [
    { scenario, metric: `${name}.p50`, value: round(percentile(run.latencies, 50)), unit: 'ms', target: targets.p50 ?? null },
    { scenario, metric: `${name}.p99`, value: round(percentile(run.latencies, 99)), unit: 'ms', target: targets.p99 ?? null },
    { scenario, metric: `${name}.rate`, value: round(run.perSecond), unit: 'req/s', target: targets.rate ?? null },
  ];
  if (run.errors) rows.push({ scenario, metric: `${name}.errors`, value: run.errors, unit: 'count', target: '<= 0' });
  return rows;
}

// One PRNG for the seed and the benches (mulberry32, compiled from src/tools/seed/district.ts).
const { prng } = require('../dist/tools/seed/district');

/** Deletes every Redis key under `${prefix}:` (a bench run's own keys). */
async function deleteRedisPrefix(redis, prefix) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

const net = require('node:net');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `check()` holds, polling every `everyMs`; rejects after `ms` naming `what`. */
function until(check, ms, what, everyMs = 20) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tick = () => (check() ? resolve() : Date.now() > deadline ? reject(new Error(`bench: timed out waiting for ${what}`)) : setTimeout(tick, everyMs));
    tick();
  });
}

/** A TCP port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Parses a target such as "<= 200" or ">= 100"; returns true/false, or null when there is none. */
function meetsTarget(value, target) {
  const m = typeof target === 'string' && /^\s*(<=|>=|<|>)\s*(-?[\d.]+)\s*$/.exec(target);
  if (!m || typeof value !== 'number' || Number.isNaN(value)) return null;
  const t = Number(m[2]);
  return { '<=': value <= t, '>=': value >= t, '<': value < t, '>': value > t }[m[1]];
}

/**
 * Leaves the district as a scenario found it: resolves the incidents `where` selects (SQL over
 * `incidents`, params from $1) as tests and marks their outbox rows done; returns those rows' job
 * ids. The incidents are locked in id order — as the service's escalation batch does — and a
 * deadlock or serialization failure against the running service is tried again.
 */
async function resolveBenchIncidents(pg, where, params) {
  for (let attempt = 1; ; attempt++) {
    try {
      await pg.query('BEGIN');
      await pg.query(`SELECT id FROM incidents WHERE (${where}) AND status <> 'resolved' ORDER BY id FOR UPDATE`, params);
      const { rows } = await pg.query(
        `WITH r AS (UPDATE incidents SET status = 'resolved', outcome = 'test', resolved_at = now(), resolved_by_name = 'bench' WHERE (${where}) AND status <> 'resolved' RETURNING id)
         UPDATE alarm_outbox o SET done_at = now() FROM r WHERE o.payload->>'incidentId' = r.id::text AND o.done_at IS NULL RETURNING o.job_id`,
        params,
      );
      await pg.query('COMMIT');
      return rows.map((r) => r.job_id);
    } catch (e) {
      await pg.query('ROLLBACK').catch(() => undefined);
      if (attempt >= 5 || !['40P01', '40001'].includes(e.code)) throw e;
      await sleep(100 * attempt);
    }
  }
}

/**
 * `count` button presses at 10/s (each its own button, no linked camera: the load under test is
 * elsewhere) on the service at `baseUrl`, received as incident.raised by operator1's console on the
 * same service; returns press → console receipt (ms) of those received (fewer than `count`: lost).
 * `onStarted` (optional) runs once the first press is sent, e.g. to start the load under test.
 * Leaves the district as found: its incidents resolved, its button credentials removed.
 */
async function pressesToConsole(baseUrl, db, schoolId, count, log, what = '', onStarted = null) {
  const { io } = require('socket.io-client');
  const { loadConfig } = require(path.join(__dirname, '..', 'dist/config/config.js'));
  const password = loadConfig({ ...process.env, NODE_ENV: 'development' }).demo.userPassword;
  const tag = Math.random().toString(36).slice(2, 6).toUpperCase();
  const codes = Array.from({ length: count }, (_, i) => `BENCH-P${tag}X${i}`);
  const devices = (
    await db.query(
      `INSERT INTO alarm_devices (code, school_id, location, area_kind, keepalive_seconds) SELECT c, $1, '视频基准岗亭', 'main_gate', 86400 FROM unnest($2::text[]) c RETURNING id, code`,
      [schoolId, codes],
    )
  ).rows;
  const deviceIds = devices.map((d) => d.id);
  await db.query(
    `INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
     SELECT 'dk_bp' || lower(substr(code, 7)), encode(sha256(('sp' || lower(substr(code, 7)))::bytea), 'hex'), 'alarm_device', id, $1 FROM alarm_devices WHERE id = ANY($2)`,
    [schoolId, deviceIds],
  );
  let socket;
  try {
    const login = await fetch(`${baseUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'operator1', password }),
    });
    if (login.status !== 200) throw new Error(`operator1 login: ${login.status}`);
    const { accessToken } = await login.json();
    const received = new Map();
    let live = false;
    socket = io(`${baseUrl}/console`, { transports: ['websocket'], reconnection: false, auth: { token: accessToken } });
    socket.on('live', () => (live = true));
    socket.on('event', (e) => {
      if (e.type === 'incident.raised' && !received.has(e.payload.incidentId)) received.set(e.payload.incidentId, performance.now());
    });
    for (let i = 0; !live; i++) {
      if (i > 300) throw new Error('the console did not go live');
      await sleep(100);
    }
    log(`${count} presses at 10/s ${what}…`);
    const sent = [];
    const start = performance.now();
    const pending = [];
    for (let k = 0; k < count; k++) {
      const due = start + k * 100;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const i = codes[k].slice(6).toLowerCase();
      pending.push(
        fetch(`${baseUrl}/api/v1/incidents/press`, {
          method: 'POST',
          headers: { authorization: `Device dk_bp${i}:sp${i}`, 'content-type': 'application/json' },
          body: JSON.stringify({ eventId: `bench-${i}` }),
        })
          .then((r) => r.json())
          .then((b) => b.id && sent.push({ id: b.id, due })),
      );
      if (k === 0 && onStarted) onStarted();
    }
    await Promise.all(pending);
    for (let i = 0; i < 50 && sent.some((x) => !received.has(x.id)); i++) await sleep(100);
    return sent.filter((x) => received.has(x.id)).map((x) => received.get(x.id) - x.due);
  } finally {
    socket?.close();
    await resolveBenchIncidents(db, 'alarm_device_id = ANY($1)', [deviceIds]);
    await db.query(`DELETE FROM device_credentials WHERE subject_id = ANY($1)`, [deviceIds]);
  }
}

/**
 * The service's Prometheus figures (GET /metrics) as { 'name{labels}': value }: scrape before and
 * after a phase and subtract (histogramMeans) to say where the phase's time went.
 */
async function scrapeMetrics(baseUrl) {
  const out = {};
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

/** Mean of a histogram over a phase, per label set matching `labels` (e.g. 'phase="commit"'): Δsum ÷ Δcount, with Δcount. */
function histogramMean(before, after, name, labels = '') {
  const key = (suffix) => `${name}_${suffix}${labels ? `{${labels}}` : ''}`;
  const count = (after[key('count')] ?? 0) - (before[key('count')] ?? 0);
  const sum = (after[key('sum')] ?? 0) - (before[key('sum')] ?? 0);
  return { count, mean: count > 0 ? sum / count : null };
}

/**
 * POSTs ready-made `{ heartbeats: [...] }` bodies to /api/v1/device/heartbeats on 127.0.0.1:`port` over C keep-alive
 * connections with a gateway `authorization`; resolves with the answer's `accepted`, rejects on any other status.
 * `post.close()` ends the connections.
 */
function heartbeatPoster(port, authorization, C) {
  const http = require('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/v1/device/heartbeats',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length, authorization },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(JSON.parse(Buffer.concat(chunks).toString()).accepted)
              : reject(new Error(`HTTP ${res.statusCode} ${Buffer.concat(chunks)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  post.close = () => agent.destroy();
  return post;
}

module.exports = {
  heartbeatPoster,
  scrapeMetrics,
  histogramMean,
  pressesToConsole,
  resolveBenchIncidents,
  percentile,
  runConcurrent,
  summarize,
  prng,
  cpuSeconds,
  meetsTarget,
  deleteRedisPrefix,
  sleep,
  until,
  freePort,
};

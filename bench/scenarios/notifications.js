'use strict';
/**
 * Escalation messages (issue 14): 500 one-click alarms pressed in a burst and left
 * unacknowledged, so that their level-1 escalations fall due within a second or two of each
 * other; each one's message goes to the duty supervisor through a fake SMS gateway on loopback
 * (test/support/fake-receivers.ts, loaded through swc: it checks the HMAC signature and the
 * timestamp's freshness as the gateway would). Latency = the gateway's receipt − the escalation's
 * due time (first press + alarms.escalationSeconds.P1[0], read from the incident), which covers
 * the delayed escalate job, the outbox hand-over, planning and the send. Targets from the issue:
 * p99 ≤ 1 s, 0 lost, 0 duplicated (by the gateway's Idempotency-Key = our dedup key).
 * The service runs with its development config: level 1 at 30 s, so the scenario takes ~45 s.
 * Afterwards its incidents are resolved (outcome test) before level 2 (60 s), and its channel,
 * shift, user and policy are removed.
 */
const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const { Client } = require('pg');
const { percentile, resolveBenchIncidents, until } = require('../lib');

const ROOT = join(__dirname, '..', '..');
const N = Number(process.env.BENCH_NOTIFY_ALARMS || 500);
const SECRET = 'bench-sms-gateway-secret-0123456789';
const round = (x) => Math.round(x * 10) / 10;

function loadFakeReceivers() {
  const file = join(ROOT, 'test', 'support', 'fake-receivers.ts');
  const { code } = require('@swc/core').transformSync(readFileSync(file, 'utf8'), {
    filename: file,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  });
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(ROOT);
  m._compile(code, file);
  return m.exports;
}

async function run(ctx) {
  const { startFakeReceiver } = loadFakeReceivers();
  const sms = await startFakeReceiver('sms', { secret: SECRET });
  const pg = new Client({ connectionString: ctx.databaseUrl });
  await pg.connect();
  let schoolId;
  let channelId;
  let userId;
  try {
    const [{ district_id: districtId, zone_id: zoneId }] = (await pg.query(`SELECT district_id, zone_id FROM schools ORDER BY code LIMIT 1`)).rows;
    const timetable = {
      weekdays: [1, 2, 3, 4, 5],
      arrival: { start: '07:30', end: '08:10' },
      dismissal: { start: '16:30', end: '17:10' },
      schoolHours: { start: '07:30', end: '17:30' },
    };
    [{ id: schoolId }] = (
      await pg.query(
        `INSERT INTO schools (district_id, zone_id, code, name, type, timetable) VALUES ($1, $2, 'BENCH-NOTIFY', '压测通知小学', 'primary', $3) RETURNING id`,
        [districtId, zoneId, JSON.stringify(timetable)],
      )
    ).rows;
    await pg.query(
      `WITH d AS (INSERT INTO alarm_devices (code, school_id, location, area_kind, keepalive_seconds)
         SELECT 'BENCH-N' || g, $1, '通知岗亭' || g, 'main_gate', 86400 FROM generate_series(1, $2) g RETURNING id, code)
       INSERT INTO device_credentials (key_id, secret_hash, kind, subject_id, school_id)
       SELECT 'dk_bn' || substr(code, 8), encode(sha256(('sn' || substr(code, 8))::bytea), 'hex'), 'alarm_device', id, $1 FROM d`,
      [schoolId, N],
    );
    // Nobody else is on duty in the bench district: the supervisor of this scenario is the one recipient.
    [{ id: userId }] = (
      await pg.query(
        `INSERT INTO users (username, display_name, password_hash, role, phone) VALUES ('bench_notify_sup', '压测主管', 'x', 'supervisor', '13800009999') RETURNING id`,
      )
    ).rows;
    await pg.query(
      `INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at) VALUES ('duty_supervisor', $1, now() - interval '1 hour', now() + interval '1 day')`,
      [userId],
    );
    [{ id: channelId }] = (
      await pg.query(`INSERT INTO notification_channels (kind, name, webhook_url, secret) VALUES ('sms', '压测短信网关', $1, $2) RETURNING id`, [
        sms.url,
        SECRET,
      ])
    ).rows;
    const put = await ctx.http('PUT', '/api/v1/notifications/policies/P1', {
      levels: [
        { targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: [channelId] },
        { targets: [{ kind: 'duty', dutyRole: 'bureau_leader' }], channelIds: [channelId] },
      ],
    });
    if (put.status !== 200) throw new Error(`policy: ${put.status} ${JSON.stringify(put.body)}`);
    const delay = put.body.levels[0].afterSeconds;

    ctx.log(`notifications: pressing ${N} buttons; level 1 falls due ${delay} s later`);
    let next = 0;
    const press = async () => {
      while (next < N) {
        const i = ++next;
        const res = await fetch(`${ctx.baseUrl}/api/v1/incidents/press`, {
          method: 'POST',
          headers: { Authorization: `Device dk_bn${i}:sn${i}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ eventId: `bench-notify-${i}` }),
        });
        if (res.status !== 201) throw new Error(`press ${i}: ${res.status} ${await res.text()}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, press));
    const incidents = (await pg.query(`SELECT id, first_press_at FROM incidents WHERE school_id = $1`, [schoolId])).rows;
    const due = new Map(incidents.map((r) => [r.id, new Date(r.first_press_at).getTime() + delay * 1000]));
    const spread = Math.max(...due.values()) - Math.min(...due.values());
    ctx.log(`notifications: ${incidents.length} escalations due within ${spread} ms; waiting`);
    const mine = () => sms.received.filter((m) => m.key && due.has(m.key.split(':')[0]) && m.key.split(':')[1] === '1');
    await until(() => new Set(mine().map((m) => m.key)).size >= N, (delay + 60) * 1000, `${N} level-1 messages`, 200).catch((e) => ctx.log(e.message));
    await new Promise((r) => setTimeout(r, 2000)); // late duplicates, if any, would arrive now
    const got = mine();
    const first = new Map();
    for (const m of got) if (!first.has(m.key)) first.set(m.key, m.at - due.get(m.key.split(':')[0]));
    const lat = [...first.values()];
    const lost = N - first.size;
    const dup = got.length - first.size;
    // Where the time goes (informational): each stage's commit, from the due time, read back from Postgres
    // (now() of the stage's transaction, i.e. its start). escalated: the escalate job's transaction; planned: the
    // plan's transaction (the deliveries rows); dispatched: the send jobs handed to the queue; sent: the outcome recorded.
    const stages = (
      await pg.query(
        `SELECT extract(epoch FROM t.at) * 1000 AS escalated, extract(epoch FROM d.created_at) * 1000 AS planned,
                extract(epoch FROM d.dispatched_at) * 1000 AS dispatched, extract(epoch FROM d.sent_at) * 1000 AS sent, d.incident_id
         FROM notification_deliveries d JOIN incident_timeline t ON t.incident_id = d.incident_id AND t.action = 'escalated' AND (t.data->>'level')::int = 1
         WHERE d.level = 1 AND d.incident_id = ANY($1::uuid[])`,
        [[...due.keys()]],
      )
    ).rows;
    const stage = (k) => stages.filter((r) => r[k] !== null).map((r) => Number(r[k]) - due.get(r.incident_id));
    const rejected = sms.rejected.length;
    if (rejected) throw new Error(`the gateway refused ${rejected} messages: ${JSON.stringify(sms.rejected.slice(0, 3))}`);
    return [
      { scenario: 'notifications', metric: 'escalation_to_receiver.p50', value: round(percentile(lat, 50)), unit: 'ms', target: null },
      { scenario: 'notifications', metric: 'escalation_to_receiver.p99', value: round(percentile(lat, 99)), unit: 'ms', target: '<= 1000' },
      { scenario: 'notifications', metric: 'escalation_to_receiver.max', value: round(Math.max(...lat)), unit: 'ms', target: null },
      { scenario: 'notifications', metric: 'escalations_due_spread', value: spread, unit: 'ms', target: null },
      ...['escalated', 'planned', 'dispatched', 'sent'].map((k) => ({
        scenario: 'notifications',
        metric: `stage.${k}.p99`,
        value: round(percentile(stage(k), 99)),
        unit: 'ms',
        target: null,
      })),
      ...['escalated', 'planned', 'dispatched', 'sent'].map((k) => ({
        scenario: 'notifications',
        metric: `stage.${k}.p50`,
        value: round(percentile(stage(k), 50)),
        unit: 'ms',
        target: null,
      })),
      { scenario: 'notifications', metric: 'lost', value: lost, unit: 'count', target: '<= 0' },
      { scenario: 'notifications', metric: 'duplicated', value: dup, unit: 'count', target: '<= 0' },
    ];
  } finally {
    // Leave the district as found: resolve before level 2, drop timers and fixtures.
    if (schoolId) {
      const rows = (await resolveBenchIncidents(pg, 'school_id = $1', [schoolId])).map((job_id) => ({ job_id }));
      const { Queue } = require('bullmq');
      const Redis = require('ioredis');
      const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
      const q = new Queue('alarms', { connection, prefix: `${ctx.keyPrefix}:{${ctx.keyPrefix}:bull:alarms}` });
      for (let i = 0; i < rows.length; i += 500) await Promise.all(rows.slice(i, i + 500).map((r) => q.remove(r.job_id)));
      await q.close();
      connection.disconnect();
    }
    await pg.query(`DELETE FROM escalation_policies WHERE priority = 'P1'`);
    if (channelId) await pg.query(`DELETE FROM notification_channels WHERE id = $1`, [channelId]);
    if (userId) await pg.query(`DELETE FROM duty_shifts WHERE user_id = $1`, [userId]);
    await pg.end();
    await sms.close();
  }
}

module.exports = { run };

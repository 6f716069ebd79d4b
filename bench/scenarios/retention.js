'use strict';
/**
 * Retention (issue 17 §3): purging a month of device transitions while alarms come in. The bench
 * database gets a month partition of `device_transitions` past retention (retention.
 * deviceTransitionsDays) holding BENCH_RETENTION_ROWS rows (default 10,000,000, the figure),
 * then the daily `retention.purge` job is queued on the running service while 10 button presses a
 * second go to an operator's console (BENCH_RETENTION_PRESSES, default 100). A month past
 * retention goes as a partition DETACH + DROP (src/infra/database/retention.ts), not as DELETEs.
 * Rows: press → console p50/p99 during the purge (target p99 ≤ 100 ms, the issue), how many never
 * arrived (target 0), the purge's duration and whether the month is gone (target: gone).
 */
const path = require('node:path');
const { Client } = require('pg');
const { percentile, pressesToConsole, sleep } = require('../lib');

const ROOT = path.join(__dirname, '..', '..');
const ROWS = Number(process.env.BENCH_RETENTION_ROWS ?? 10_000_000);
const PRESSES = Number(process.env.BENCH_RETENTION_PRESSES ?? 100);
const round = (x) => Math.round(x * 10) / 10;

async function run(ctx) {
  const scenario = 'retention';
  const { addMonths, monthOf, monthStart, partitionName } = require(path.join(ROOT, 'dist/infra/database/partitions.js'));
  const { loadConfig } = require(path.join(ROOT, 'dist/config/config.js'));
  const days = loadConfig({ ...process.env, NODE_ENV: 'development' }).retention.deviceTransitionsDays;
  const db = new Client({ connectionString: ctx.databaseUrl });
  await db.connect();
  const rows = [];
  // A whole month before the retention cutoff (and one more, so it is wholly past it).
  const month = addMonths(monthOf(new Date(Date.now() - days * 86_400_000)), -2);
  const name = partitionName('device_transitions', month);
  try {
    const from = monthStart(month);
    const to = monthStart(addMonths(month, 1));
    await db.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF device_transitions FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`);
    const [{ school_id: schoolId }] = (await db.query(`SELECT id AS school_id FROM schools ORDER BY code LIMIT 1`)).rows;
    ctx.log(`filling ${name} with ${ROWS.toLocaleString('en')} transitions…`);
    const t0 = performance.now();
    const span = (to.getTime() - from.getTime()) / 1000;
    for (let done = 0; done < ROWS; done += 1_000_000) {
      const n = Math.min(1_000_000, ROWS - done);
      await db.query(
        `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at)
         SELECT gen_random_uuid(), 'camera', $1, CASE WHEN g % 2 = 0 THEN 'online' ELSE 'offline' END, CASE WHEN g % 2 = 0 THEN 'offline' ELSE 'online' END,
                $2::timestamptz + make_interval(secs => (g::double precision / $3) * $4)
         FROM generate_series(1, $3) g`,
        [schoolId, from, n, span - 1],
      );
    }
    ctx.log(`filled in ${round((performance.now() - t0) / 1000)} s`);
    await db.query(`ANALYZE ${name}`);

    const { Queue } = require('bullmq');
    const Redis = require('ioredis');
    const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
    const q = new Queue('system', { connection, prefix: `${ctx.keyPrefix}:{${ctx.keyPrefix}:bull:system}` });
    let purgeStart = 0;
    const gone = async () => (await db.query(`SELECT to_regclass($1) IS NULL AS gone`, [name])).rows[0].gone;
    try {
      const ms = await pressesToConsole(ctx.baseUrl, db, schoolId, PRESSES, ctx.log, `while ${name} is purged`, () => {
        purgeStart = performance.now();
        void q.add('retention.purge', {}, { jobId: `bench-retention-${Date.now()}` });
      });
      let purgeMs = null;
      for (let i = 0; i < 600 && purgeMs === null; i++) {
        if (await gone()) purgeMs = performance.now() - purgeStart;
        else await sleep(100);
      }
      rows.push(
        { scenario, metric: 'month_rows', value: ROWS, unit: 'rows', target: null },
        { scenario, metric: 'press_to_console_during_purge.p50', value: round(percentile(ms, 50)), unit: 'ms', target: null },
        { scenario, metric: 'press_to_console_during_purge.p99', value: round(percentile(ms, 99)), unit: 'ms', target: '<= 100' },
        { scenario, metric: 'press_to_console_during_purge.lost', value: PRESSES - ms.length, unit: 'alarms', target: '<= 0' },
        { scenario, metric: 'month_purge.duration', value: purgeMs === null ? -1 : Math.round(purgeMs), unit: 'ms', target: null },
        { scenario, metric: 'month_purge.gone', value: purgeMs === null ? 0 : 1, unit: 'bool', target: '>= 1' },
      );
    } finally {
      await q.close();
      connection.disconnect();
    }
    return rows;
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
    await db.end();
  }
}

module.exports = { run };

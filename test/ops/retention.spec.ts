import { RetentionService } from '../../src/infra/database/retention';
import { loadConfig } from '../../src/config/config';
import { startApp, TestApp } from '../support/harness';

/**
 * Retention (issue 17 §3): the daily purge deletes audit log and device transitions past their
 * period in bounded batches and nothing younger; the audit log cannot be set below six months
 * (网络安全法 §21). `now` is passed in: nothing depends on today's date.
 */
describe('retention purge', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  const now = new Date('2031-03-15T02:00:00+08:00');
  const daysBefore = (d: number) => new Date(now.getTime() - d * 86_400_000).toISOString();

  beforeAll(async () => {
    t = await startApp({ retention: { auditLogDays: 200, deviceTransitionsDays: 60, batchSize: 100, batchPauseMs: 0, maxBatchesPerRun: 1000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('deletes only what is past its period, in batches, and reports how many', async () => {
    // 250 audit rows past 200 days (3 batches of 100), 5 within; 120 transitions past 60 days, 3 within.
    await t.db.query(
      `INSERT INTO audit_log (at, actor_type, actor_name, action, entity)
       SELECT $1::timestamptz - make_interval(days => 200 + (i % 30) + 1), 'system', 'test', 'old', 'x' FROM generate_series(1, 250) i
       UNION ALL SELECT $1::timestamptz - make_interval(days => 199), 'system', 'test', 'young', 'x' FROM generate_series(1, 5)`,
      [now.toISOString()],
    );
    const dev = '00000000-0000-4000-8000-000000000001';
    await t.db.query(
      `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at)
       SELECT $2::uuid, 'camera', $2::uuid, 'online', 'offline', $1::timestamptz - make_interval(days => 61, mins => i) FROM generate_series(1, 120) i
       UNION ALL SELECT $2::uuid, 'camera', $2::uuid, 'offline', 'online', $1::timestamptz - make_interval(days => 59) FROM generate_series(1, 3)`,
      [now.toISOString(), dev],
    );
    const before = async () => ({
      audit: (await t.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE at < $1`, [daysBefore(200)])).rows[0].n,
      transitions: (await t.db.query(`SELECT count(*)::int AS n FROM device_transitions WHERE at < $1`, [daysBefore(60)])).rows[0].n,
    });
    expect(await before()).toEqual({ audit: 250, transitions: 120 });
    const youngAudit = (await t.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE at >= $1`, [daysBefore(200)])).rows[0].n;

    expect(await t.app.get(RetentionService).purge(now)).toEqual({ audit_log: 250, device_transitions: 120 });
    expect(await before()).toEqual({ audit: 0, transitions: 0 });
    expect((await t.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE at >= $1`, [daysBefore(200)])).rows[0].n).toBe(youngAudit);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM device_transitions`)).rows[0].n).toBe(3);
    // A second run finds nothing.
    expect(await t.app.get(RetentionService).purge(now)).toEqual({ audit_log: 0, device_transitions: 0 });
  });

  it('stops a run after maxBatchesPerRun batches (the rest waits for the next run)', async () => {
    await t.db.query(
      `INSERT INTO audit_log (at, actor_type, actor_name, action, entity)
       SELECT $1::timestamptz - make_interval(days => 300), 'system', 'test', 'old', 'x' FROM generate_series(1, 350) i`,
      [now.toISOString()],
    );
    const svc = t.app.get(RetentionService);
    const cfg = t.config.retention;
    const saved = cfg.maxBatchesPerRun;
    cfg.maxBatchesPerRun = 2;
    try {
      expect((await svc.purge(now)).audit_log).toBe(200);
      expect((await svc.purge(now)).audit_log).toBe(150);
    } finally {
      cfg.maxBatchesPerRun = saved;
    }
  });

  it('refuses an audit log retention under six months, naming the key', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', SHOUHU__RETENTION__AUDIT_LOG_DAYS: '90' })).toThrow(/retention\.auditLogDays/);
  });
});

import { Client } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { PartitionAuditAndTransitions1764321230000 } from '../../src/infra/database/migrations/1764321230000-PartitionAuditAndTransitions';
import { RetentionService } from '../../src/infra/database/retention';
import { addMonths, monthOf, monthStart, partitionName, parsePartitionName } from '../../src/infra/database/partitions';
import { loadConfig } from '../../src/config/config';
import { startApp, TestApp } from '../support/harness';
import { EvidenceService } from '../../src/modules/video/evidence.service';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Retention (issue 17 §3). The audit log and device transitions are partitioned by month
 * (Asia/Shanghai): the daily job creates partitions ahead, moves rows waiting in the DEFAULT
 * partition into their month, drops whole months past retention; closed incidents and patrol
 * results go in bounded batches. Every run takes `now` explicitly — a date ten years after the
 * migrations ran, so the partitions they made from the wall clock are long past retention whatever
 * today is; nothing depends on today's date.
 */
describe('retention', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  let svc: RetentionService;
  const now = new Date('2041-03-15T02:00:00+08:00');
  const days = (d: number, from = now) => new Date(from.getTime() - d * 86_400_000).toISOString();
  const school = '00000000-0000-4000-8000-0000000000aa';
  const evidenceDir = mkdtempSync(join(tmpdir(), 'retention-evidence-'));

  beforeAll(async () => {
    t = await startApp({
      retention: {
        auditLogDays: 200,
        deviceTransitionsDays: 60,
        incidentsDays: 400,
        patrolResultsDays: 400,
        partitionMonthsAhead: 3,
        batchSize: 100,
        cascadeBatchSize: 10,
        batchPauseMs: 0,
        maxBatchesPerRun: 1000,
      },
      video: { evidenceDir, evidenceRetentionDays: 30 },
    });
    svc = t.app.get(RetentionService);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  const audit = (at: string, action: string) =>
    t.db.query(`INSERT INTO audit_log (at, actor_type, actor_name, action, entity) VALUES ($1, 'system', 'test', $2, 'retention-test')`, [at, action]);
  const transition = (at: string) =>
    t.db.query(
      `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at) VALUES ($2::uuid, 'camera', $2::uuid, 'online', 'offline', $1)`,
      [at, school],
    );
  /** Where the test's rows are: partition → count. */
  const placement = async (table: 'audit_log' | 'device_transitions') =>
    Object.fromEntries(
      (
        await t.db.query(
          `SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM ${table} WHERE ${table === 'audit_log' ? `entity = 'retention-test'` : `device_id = '${school}'`} GROUP BY 1`,
        )
      ).rows.map((r: { p: string; n: number }) => [r.p, r.n]),
    );
  const quiet = { created: [], moved: 0, dropped: [], defaultPurged: 0, skipped: [] };

  it('creates this month and the months ahead, moves rows waiting in the default partition, and a second run changes nothing', async () => {
    // Nothing for 2041 exists yet: these land in the DEFAULT partition (an insert never fails for a missing one).
    for (let i = 0; i < 5; i++) await audit(days(10), 'recent'); // 2041-03-05
    for (let i = 0; i < 3; i++) await audit(days(100), 'older'); // 2040-12-05: older than 200 days at the second run below
    for (let i = 0; i < 4; i++) await audit(days(300), 'expired'); // 2040-05-19: its whole month is past 200 days
    for (let i = 0; i < 2; i++) await transition(days(10)); // 2041-03-05
    await transition(days(50)); // 2041-01-24: within 60 days
    for (let i = 0; i < 2; i++) await transition(days(90)); // 2040-12-15: its whole month is past 60 days
    expect(await placement('audit_log')).toEqual({ audit_log_default: 12 });

    const first = await svc.purge(now);
    expect(first.partitions.audit_log).toEqual({
      created: ['audit_log_p204012', 'audit_log_p204103', 'audit_log_p204104', 'audit_log_p204105', 'audit_log_p204106'],
      moved: 8,
      dropped: expect.any(Array),
      defaultPurged: 4,
      skipped: [],
    });
    // The months the migration made (from the wall clock, years before `now`) are past retention: dropped.
    expect(first.partitions.audit_log.dropped.length).toBeGreaterThan(0);
    expect(first.partitions.audit_log.dropped.every((n) => n < 'audit_log_p204008')).toBe(true);
    expect(first.partitions.device_transitions).toMatchObject({
      created: [
        'device_transitions_p204101',
        'device_transitions_p204103',
        'device_transitions_p204104',
        'device_transitions_p204105',
        'device_transitions_p204106',
      ],
      moved: 3,
      defaultPurged: 2,
      skipped: [],
    });
    expect(await svc.partitionNames('audit_log')).toEqual([
      'audit_log_p204012',
      'audit_log_p204103',
      'audit_log_p204104',
      'audit_log_p204105',
      'audit_log_p204106',
    ]);
    expect(await placement('audit_log')).toEqual({ audit_log_p204012: 3, audit_log_p204103: 5 });
    expect(await placement('device_transitions')).toEqual({ device_transitions_p204101: 1, device_transitions_p204103: 2 });

    // Idempotent: the same run again finds everything in place.
    const second = await svc.purge(now);
    expect(second.partitions).toEqual({ audit_log: quiet, device_transitions: quiet });
    expect(await svc.partitionNames('audit_log')).toEqual([
      'audit_log_p204012',
      'audit_log_p204103',
      'audit_log_p204104',
      'audit_log_p204105',
      'audit_log_p204106',
    ]);
    expect(await placement('audit_log')).toEqual({ audit_log_p204012: 3, audit_log_p204103: 5 });
  });

  it('drops a month only once all of it is past retention; younger months keep their rows', async () => {
    // 120 days on, the cutoff (200 days) is 2040-12-25: December 2040 still holds days within it — kept.
    const later = new Date(now.getTime() + 120 * 86_400_000);
    const a = await svc.purge(later);
    expect(a.partitions.audit_log.dropped).toEqual([]);
    // Transitions (60 days, cutoff 2041-05-14): January, March and April 2041 are wholly past.
    expect(a.partitions.device_transitions.dropped).toEqual(['device_transitions_p204101', 'device_transitions_p204103', 'device_transitions_p204104']);
    expect(await placement('device_transitions')).toEqual({});
    expect(a.partitions.audit_log.created).toEqual(['audit_log_p204107', 'audit_log_p204108', 'audit_log_p204109', 'audit_log_p204110']);
    expect(await placement('audit_log')).toEqual({ audit_log_p204012: 3, audit_log_p204103: 5 });
    // Ten days more, the cutoff is 2041-01-04: all of December 2040 is past — its partition goes, March stays.
    const b = await svc.purge(new Date(later.getTime() + 10 * 86_400_000));
    expect(b.partitions.audit_log).toMatchObject({ dropped: ['audit_log_p204012'], skipped: [] });
    expect(await placement('audit_log')).toEqual({ audit_log_p204103: 5 });
    expect((await t.db.query(`SELECT to_regclass('audit_log_p204012') AS r`)).rows[0].r).toBeNull();
  });

  it('deletes closed incidents (with their timeline and presses) and patrol results past their period in bounded batches', async () => {
    const inc = async (status: 'resolved' | 'raised', raised: string) => {
      const id = (
        await t.db.query(
          `INSERT INTO incidents (type, priority, source, school_id, status, first_press_at, last_press_at, resolved_at, outcome)
           VALUES ('other', 'P3', 'staff', $1, $2, $3, $3, CASE WHEN $2 = 'resolved' THEN $3::timestamptz + interval '1 hour' END, CASE WHEN $2 = 'resolved' THEN 'genuine' END)
           RETURNING id`,
          [school, status, raised],
        )
      ).rows[0].id as string;
      await t.db.query(`INSERT INTO incident_timeline (incident_id, actor_type, actor_name, action) VALUES ($1, 'system', 'test', 'raised')`, [id]);
      await t.db.query(`INSERT INTO incident_presses (incident_id, device_id, device_event_id) VALUES ($1, $2, $3)`, [id, school, `ev-${id}`]);
      return id;
    };
    const oldClosed = [];
    for (let i = 0; i < 25; i++) oldClosed.push(await inc('resolved', days(401 + i)));
    const oldOpen = await inc('raised', days(500)); // never closed: kept whatever its age
    const youngClosed = await inc('resolved', days(399));
    await t.db.query(
      `INSERT INTO guard_patrols (school_id, recorded_by, at)
       SELECT $1::uuid, $1::uuid, $2::timestamptz - make_interval(days => 401 + i % 30) FROM generate_series(1, 250) i
       UNION ALL SELECT $1::uuid, $1::uuid, $2::timestamptz - make_interval(days => 399) FROM generate_series(1, 5)`,
      [school, now.toISOString()],
    );

    const run = await svc.purge(now);
    // 25 incidents in batches of cascadeBatchSize (10): 3 statements; 250 patrols in batches of 100.
    expect(run.deleted).toMatchObject({ incidents: 25, guard_patrols: 250 });
    const left = await t.db.query(`SELECT id FROM incidents WHERE school_id = $1 ORDER BY first_press_at`, [school]);
    expect(left.rows.map((r: { id: string }) => r.id)).toEqual([oldOpen, youngClosed]);
    const orphans = await t.db.query(
      `SELECT (SELECT count(*)::int FROM incident_timeline WHERE incident_id = ANY($1::uuid[])) AS timeline,
              (SELECT count(*)::int FROM incident_presses WHERE incident_id = ANY($1::uuid[])) AS presses`,
      [oldClosed],
    );
    expect(orphans.rows[0]).toEqual({ timeline: 0, presses: 0 });
    expect((await t.db.query(`SELECT count(*)::int AS n FROM guard_patrols WHERE school_id = $1`, [school])).rows[0].n).toBe(5);
    // Idempotent: nothing more to delete.
    expect(Object.values((await svc.purge(now)).deleted).every((n) => n === 0)).toBe(true);
  });

  it('stops a run after maxBatchesPerRun batches (the rest waits for the next run)', async () => {
    await t.db.query(
      `INSERT INTO guard_patrols (school_id, recorded_by, at) SELECT $1::uuid, $1::uuid, $2::timestamptz - make_interval(days => 500) FROM generate_series(1, 350) i`,
      [school, now.toISOString()],
    );
    const cfg = t.config.retention;
    const saved = cfg.maxBatchesPerRun;
    cfg.maxBatchesPerRun = 2;
    try {
      expect((await svc.purge(now)).deleted.guard_patrols).toBe(200);
      expect((await svc.purge(now)).deleted.guard_patrols).toBe(150);
    } finally {
      cfg.maxBatchesPerRun = saved;
    }
  });

  it('never fails an insert for a missing partition, at any date', async () => {
    for (const at of ['1900-01-01T00:00:00Z', '2199-12-31T23:59:59+08:00', '5000-06-01T00:00:00Z']) {
      await audit(at, 'far');
      await transition(at);
    }
    expect(await placement('audit_log')).toEqual({ audit_log_p204103: 5, audit_log_default: 3 });
    expect(await placement('device_transitions')).toEqual({ device_transitions_default: 3 });
  });

  it('skips a drop that cannot get its table lock (inserts would queue behind it) and does it on the next run', async () => {
    // 2041-10-20: the cutoff (200 days) is 2041-04-03, so March 2041 is wholly past.
    const at = new Date('2041-10-20T02:00:00+08:00');
    const reader = new Client({ connectionString: t.config.database.url });
    await reader.connect();
    try {
      // A long reader of the audit log: DROP needs ACCESS EXCLUSIVE on the table and would wait for it.
      await reader.query(`BEGIN; LOCK TABLE audit_log IN ACCESS SHARE MODE`);
      const blocked = (await svc.purge(at)).partitions.audit_log;
      // Attaching a new month waits for the DEFAULT partition (which the reader holds too): skipped as well.
      expect(blocked).toMatchObject({ created: [], dropped: [] });
      expect(blocked.skipped).toEqual([
        'create audit_log_p204111: lock not available',
        'create audit_log_p204112: lock not available',
        'create audit_log_p204201: lock not available',
        'detach audit_log_p204103: lock not available',
      ]);
      expect(await placement('audit_log')).toMatchObject({ audit_log_p204103: 5 });
    } finally {
      await reader.query('ROLLBACK');
      await reader.end();
    }
    const healed = (await svc.purge(at)).partitions.audit_log;
    expect(healed).toMatchObject({ created: ['audit_log_p204111', 'audit_log_p204112', 'audit_log_p204201'], dropped: ['audit_log_p204103'], skipped: [] });
    expect(await placement('audit_log')).toEqual({ audit_log_default: 2 }); // 2199 and 5000; 1900 was past retention
  });

  it('the migration converts a plain table with its rows, indexes and id sequence, and back', async () => {
    const ds = t.app.get(DataSource);
    const shape = async (table: string) => ({
      kind: (await t.db.query(`SELECT relkind FROM pg_class WHERE relname = $1`, [table])).rows[0].relkind,
      rows: (await t.db.query(`SELECT count(*)::int AS n, coalesce(sum(id), 0)::text AS ids FROM ${table}`)).rows[0],
      indexes: (await t.db.query(`SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1`, [table])).rows.map(
        (r: { indexname: string }) => r.indexname,
      ),
      pkey: (await t.db.query(`SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = $1`, [`${table}_pkey`])).rows[0].d,
    });
    const before = { audit: await shape('audit_log'), transitions: await shape('device_transitions') };
    expect(before.audit).toMatchObject({ kind: 'p', pkey: 'PRIMARY KEY (id, at)' });
    const q = ds.createQueryRunner();
    try {
      await new PartitionAuditAndTransitions1764321230000().down(q);
      const plain = await shape('audit_log');
      expect(plain).toEqual({ ...before.audit, kind: 'r', pkey: 'PRIMARY KEY (id)' });
      // Rows of the plain table get a partition of their month (up to the migration's horizon, from the wall
      // clock: rows beyond it, 2199 and 5000 here, wait in the DEFAULT partition as the job would leave them).
      await audit('2020-05-10T00:00:00+08:00', 'while plain');
      await new PartitionAuditAndTransitions1764321230000().up(q);
    } finally {
      await q.release();
    }
    const after = await shape('audit_log');
    expect(after.kind).toBe('p');
    expect(after.pkey).toBe('PRIMARY KEY (id, at)');
    expect(after.indexes).toEqual(before.audit.indexes);
    expect(after.rows.n).toBe(before.audit.rows.n + 1);
    expect(await shape('device_transitions')).toEqual(before.transitions);
    expect(await placement('audit_log')).toEqual({ audit_log_p202005: 1, audit_log_default: 2 });
    // The id sequence survived the swap: the next row continues it.
    const [{ max }] = (await t.db.query(`SELECT max(id)::bigint AS max FROM audit_log`)).rows;
    await audit('2041-03-21T00:00:00+08:00', 'after');
    const [{ id: next }] = (await t.db.query(`SELECT max(id)::bigint AS id FROM audit_log`)).rows;
    expect(BigInt(next)).toBeGreaterThan(BigInt(max));
  });

  it('creates a month while its rows keep arriving: an insert racing the move waits and lands in the new partition (the ATTACH never fails for it)', async () => {
    // 2045-06-15: May 2045 has a row waiting in the DEFAULT partition (its partition is created and the row moved in).
    const at = new Date('2045-06-15T02:00:00+08:00');
    const race = (when: string) =>
      `INSERT INTO audit_log (at, actor_type, actor_name, action, entity) VALUES ('${when}', 'system', 'test', 'race', 'retention-race')`;
    await t.db.query(race('2045-05-10T00:00:00+08:00'));
    const writer = new Client({ connectionString: t.config.database.url });
    await writer.connect();
    const [{ pid }] = (await writer.query(`SELECT pg_backend_pid() AS pid`)).rows;
    let inserting: Promise<unknown> | undefined;
    // Just before the ATTACH of May (rows moved), another row of May is inserted: it waits for the step (or, without
    // its locks, lands in the DEFAULT partition at once and the ATTACH fails on it).
    const proto = RetentionService.prototype as unknown as { createPartition: (m: EntityManager, ...rest: unknown[]) => Promise<number> };
    const original = proto.createPartition;
    const spy = jest.spyOn(proto, 'createPartition').mockImplementation(function (this: RetentionService, m: EntityManager, ...rest: unknown[]) {
      const wrapped = new Proxy(m, {
        get: (target, prop) =>
          prop === 'query'
            ? async (sql: string, params?: unknown[]) => {
                if (sql.startsWith('ALTER TABLE audit_log ATTACH PARTITION audit_log_p204505')) {
                  let settled = false;
                  inserting = writer.query(race('2045-05-20T00:00:00+08:00')).finally(() => (settled = true));
                  // Until the insert is done or waits for a lock (pg_stat_activity says which; no clock involved).
                  while (!settled && (await t.db.query(`SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1`, [pid])).rows[0]?.w !== 'Lock')
                    await new Promise((r) => setImmediate(r));
                }
                return target.query(sql, params);
              }
            : Reflect.get(target, prop),
      });
      return original.call(this, wrapped, ...rest);
    });
    try {
      const run = (await svc.purge(at)).partitions.audit_log;
      expect(run.skipped).toEqual([]);
      expect(run.created).toContain('audit_log_p204505');
      await inserting;
    } finally {
      spy.mockRestore();
      await writer.end();
    }
    const where = (await t.db.query(`SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM audit_log WHERE entity = 'retention-race' GROUP BY 1`)).rows;
    expect(where).toEqual([{ p: 'audit_log_p204505', n: 2 }]);
  });

  it('drops a month by DETACH, then DROP of the detached table; a month detached by an earlier run that could not drop it goes on the next', async () => {
    const at = new Date('2045-06-15T02:00:00+08:00');
    // January 2040 (past 200 days) and April 2045 (within), each attached with a row, then detached as a run whose DROP failed would leave them.
    for (const [name, from, to] of [
      ['audit_log_p204001', '2040-01-01 00:00:00+08', '2040-02-01 00:00:00+08'],
      ['audit_log_p204504', '2045-04-01 00:00:00+08', '2045-05-01 00:00:00+08'],
    ]) {
      await t.db.query(`CREATE TABLE ${name} PARTITION OF audit_log FOR VALUES FROM ('${from}') TO ('${to}')`);
      await audit(from.replace(' ', 'T').replace('+08', '+08:00').replace('-01T', '-02T'), 'detached');
      await t.db.query(`ALTER TABLE audit_log DETACH PARTITION ${name}`);
    }
    const run = (await svc.purge(at)).partitions.audit_log;
    expect(run).toMatchObject({ dropped: ['audit_log_p204001'], skipped: [] });
    expect((await t.db.query(`SELECT to_regclass('audit_log_p204001') AS r`)).rows[0].r).toBeNull();
    // A detached month still within retention is left alone (detached by hand: an archive, say).
    expect((await t.db.query(`SELECT count(*)::int AS n FROM audit_log_p204504`)).rows[0].n).toBe(1);
    await t.db.query(`DROP TABLE audit_log_p204504`);
    // Attached months past retention go the same way (detached, then dropped): 2045-06-15 minus 200 days is November 2044.
    const later = (await svc.purge(new Date('2046-01-15T02:00:00+08:00'))).partitions.audit_log;
    expect(later.dropped).toEqual(['audit_log_p204505']);
    expect(await svc.partitionNames('audit_log')).not.toContain('audit_log_p204505');
  });

  it('purges done alarm outbox rows past retention.alarmOutboxDays; never one still to be delivered, nor one of an open incident', async () => {
    const incident = async (status: 'resolved' | 'raised') =>
      (
        await t.db.query(
          `INSERT INTO incidents (type, priority, source, school_id, status, first_press_at, last_press_at, resolved_at, outcome)
           VALUES ('other', 'P3', 'staff', $1, $2, $3, $3, CASE WHEN $2 = 'resolved' THEN $3::timestamptz END, CASE WHEN $2 = 'resolved' THEN 'genuine' END) RETURNING id`,
          [school, status, days(40)],
        )
      ).rows[0].id as string;
    const [closed, open] = [await incident('resolved'), await incident('raised')];
    const row = (jobId: string, incidentId: string, done: string | null, dispatched: string | null) =>
      t.db.query(
        `INSERT INTO alarm_outbox (job_name, job_id, payload, available_at, created_at, dispatched_at, done_at) VALUES ('alarm.escalate', $1, $2, $3, $3, $4, $5)`,
        [jobId, JSON.stringify({ incidentId, level: 1 }), days(40), dispatched, done],
      );
    await row('ob-done-old', closed, days(31), days(40));
    await row('ob-done-young', closed, days(29), days(40));
    await row('ob-pending-old', closed, null, null); // never handed over: still to be delivered
    await row('ob-dispatched-old', closed, null, days(40)); // handed to Redis, not done: still to be delivered
    await row('ob-open-old', open, days(31), days(40)); // done long ago, but its incident is open
    const run = await svc.purge(now);
    expect(run.deleted.alarm_outbox).toBe(1);
    const left = (await t.db.query(`SELECT job_id FROM alarm_outbox WHERE job_id LIKE 'ob-%' ORDER BY job_id`)).rows.map((r: { job_id: string }) => r.job_id);
    expect(left).toEqual(['ob-dispatched-old', 'ob-done-young', 'ob-open-old', 'ob-pending-old']);
    expect((await svc.purge(now)).deleted.alarm_outbox).toBe(0);
    expect(() => loadConfig({ NODE_ENV: 'test', SHOUHU__RETENTION__ALARM_OUTBOX_DAYS: '0' })).toThrow(/retention\.alarmOutboxDays/);
  });

  it("evidence pictures follow their owner: an incident's while it is kept, a verdict's while its round is; the stray sweep walks recent days only", async () => {
    const evidence = t.app.get(EvidenceService);
    const incident = async (status: 'resolved' | 'raised', raised: number) =>
      (
        await t.db.query(
          `INSERT INTO incidents (type, priority, source, school_id, status, first_press_at, last_press_at, resolved_at, outcome)
           VALUES ('other', 'P3', 'staff', $1, $2, $3, $3, CASE WHEN $2 = 'resolved' THEN $4::timestamptz END, CASE WHEN $2 = 'resolved' THEN 'genuine' END) RETURNING id`,
          [school, status, days(raised), days(1)],
        )
      ).rows[0].id as string;
    const round = async () =>
      (await t.db.query(`INSERT INTO patrol_rounds (operator_id, operator_name, size, started_at) VALUES ($1, 'op', 1, $2) RETURNING id`, [school, days(500)]))
        .rows[0].id as string;
    const gone = '00000000-0000-4000-8000-00000000dead'; // an owner that no longer exists
    const picture = async (label: string, purpose: string, refId: string | null, capturedDaysAgo: number) => {
      const at = new Date(days(capturedDaysAgo));
      const put = await evidence.store.put(at, Buffer.from(label), 'jpg');
      await t.db.query(
        `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, source)
         VALUES ($1, $1, $2, $3, $4, 1, 1, $5, $6, $7, 'stream')`,
        [school, put.key, put.sha256, put.bytes, purpose, refId, at],
      );
      return { label, file: join(evidenceDir, put.key) };
    };
    const pics = [
      // Raised 500 days ago and still open / closed yesterday: kept with its incident, whatever the pictures' age.
      await picture('open incident', 'alarm.raise', await incident('raised', 500), 500),
      await picture('closed yesterday', 'alarm.raise+10s', await incident('resolved', 500), 500),
      await picture('photo of an open incident', 'alarm.photo', await incident('raised', 500), 500),
      await picture('verdict of a kept round', 'round.verdict', await round(), 500),
      // Owners gone: the pictures go once past the 30 days.
      await picture('incident gone', 'alarm.raise', gone, 40),
      await picture('round gone', 'round.verdict', gone, 40),
      await picture('incident gone, recent', 'alarm.raise', gone, 10),
      // No owner record named (not a uuid): the owner kind's period from capture (400 days).
      await picture('unnamed owner', 'alarm.raise', 'inc-1', 40),
      await picture('manual', 'manual', null, 40),
      await picture('manual, recent', 'manual', null, 10),
    ];
    // Stray files (a crash between a capture's file and its row): one just past the cutoff, one years old.
    const stray = (daysAgo: number) => {
      const d = join(evidenceDir, days(daysAgo).slice(0, 10));
      mkdirSync(d, { recursive: true });
      const f = join(d, `${'0'.repeat(8)}-0000-4000-8000-${String(daysAgo).padStart(12, '0')}.jpg`);
      writeFileSync(f, 'stray');
      return f;
    };
    const [recentStray, oldStray] = [stray(32), stray(700)];
    expect(await evidence.purge(now)).toEqual({ rows: 3, files: 1 });
    const kept = pics.filter((p) => existsSync(p.file)).map((p) => p.label);
    expect(kept).toEqual([
      'open incident',
      'closed yesterday',
      'photo of an open incident',
      'verdict of a kept round',
      'incident gone, recent',
      'unnamed owner',
      'manual, recent',
    ]);
    const rows = (await t.db.query(`SELECT count(*)::int AS n FROM video_evidence`)).rows[0].n;
    expect(rows).toBe(kept.length);
    expect(existsSync(recentStray)).toBe(false);
    expect(existsSync(oldStray)).toBe(true); // outside the window: not walked (nothing names it, nothing reads it)
    expect(await evidence.purge(now)).toEqual({ rows: 0, files: 0 });
  });

  it('refuses an audit log retention under six months, naming the key', () => {
    // Six calendar months are up to 184 days (July–December): 183 is refused, 184 accepted.
    expect(() => loadConfig({ NODE_ENV: 'test', SHOUHU__RETENTION__AUDIT_LOG_DAYS: '90' })).toThrow(/retention\.auditLogDays/);
    expect(() => loadConfig({ NODE_ENV: 'test', SHOUHU__RETENTION__AUDIT_LOG_DAYS: '183' })).toThrow(/retention\.auditLogDays/);
    expect(loadConfig({ NODE_ENV: 'test', SHOUHU__RETENTION__AUDIT_LOG_DAYS: '184' }).retention.auditLogDays).toBe(184);
  });
});

describe('partition months (Asia/Shanghai)', () => {
  it('puts an instant in its Shanghai month and names and bounds partitions by it', () => {
    // 2041-02-28 23:30 in Shanghai is still February; 16:00Z on the 28th is March 1st there.
    expect(monthOf(new Date('2041-02-28T15:30:00Z'))).toEqual({ year: 2041, month: 2 });
    expect(monthOf(new Date('2041-02-28T16:00:00Z'))).toEqual({ year: 2041, month: 3 });
    expect(monthStart({ year: 2041, month: 3 }).toISOString()).toBe('2041-02-28T16:00:00.000Z');
    expect(addMonths({ year: 2040, month: 11 }, 3)).toEqual({ year: 2041, month: 2 });
    expect(partitionName('audit_log', { year: 2041, month: 3 })).toBe('audit_log_p204103');
    expect(parsePartitionName('audit_log', 'audit_log_p204103')).toEqual({ year: 2041, month: 3 });
    expect(parsePartitionName('audit_log', 'audit_log_default')).toBeNull();
    expect(parsePartitionName('audit_log', 'audit_log_p204113')).toBeNull();
  });
});

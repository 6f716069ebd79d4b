import { Inject, Injectable, Logger, Module, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { RetentionConfig } from '../../config/sections';
import { JobName } from '../queue/queue.catalogue';
import { QueueService } from '../queue/queue.service';
import {
  addMonths,
  boundsSql,
  defaultPartitionName,
  Month,
  monthOf,
  monthStart,
  parsePartitionName,
  parseYyyymm,
  partitionName,
  PartitionedTable,
  PARTITIONED_TABLES,
} from './partitions';

const PURGE_SCHEDULER = 'retention.purge';

type DaysKey = { [K in keyof RetentionConfig]: K extends `${string}Days` ? K : never }[keyof RetentionConfig];

/** The retention period of each partitioned table (src/infra/database/partitions.ts). */
export const PARTITION_RETENTION: Record<PartitionedTable, DaysKey> = {
  audit_log: 'auditLogDays',
  device_transitions: 'deviceTransitionsDays',
};

/**
 * The kinds deleted in bounded batches: table, indexed time column (oldest first), the config key
 * of the period, and what else must hold for a row to go. A fixed catalogue: table and column names
 * never come from input. `cascade`: a row takes children with it (foreign keys ON DELETE CASCADE),
 * so a batch is retention.cascadeBatchSize rows. `alsoDelete`: rows of tables that refer to the
 * deleted ids without a foreign key, deleted in the same statement.
 */
export const BATCHED_KINDS = [
  // Only closed incidents, raised and closed before the cutoff; timeline, presses and client events cascade.
  {
    kind: 'incidents',
    table: 'incidents',
    column: 'first_press_at',
    days: 'incidentsDays',
    cascade: true,
    where: `status IN ('resolved','cancelled') AND coalesce(resolved_at, cancelled_at) < $1`,
    alsoDelete: [{ table: 'notification_deliveries', column: 'incident_id' }],
  },
  // Per-school results and the run's findings cascade.
  { kind: 'patrol_runs', table: 'patrol_runs', column: 'slot', days: 'patrolResultsDays', cascade: true },
  { kind: 'patrol_findings', table: 'patrol_findings', column: 'at', days: 'patrolResultsDays' },
  { kind: 'patrol_rounds', table: 'patrol_rounds', column: 'started_at', days: 'patrolResultsDays', cascade: true },
  { kind: 'guard_patrols', table: 'guard_patrols', column: 'at', days: 'patrolResultsDays' },
  { kind: 'post_checkins', table: 'post_checkins', column: 'checked_in_at', days: 'patrolResultsDays' },
  { kind: 'gate_events', table: 'gate_events', column: 'at', days: 'patrolResultsDays' },
  // Done outbox rows only (done_at < cutoff: never a row still to be delivered), and none of an incident still open —
  // its job ids keep a job asked for again (a priority raised, a press folded) from being queued twice.
  {
    kind: 'alarm_outbox',
    table: 'alarm_outbox',
    column: 'done_at',
    days: 'alarmOutboxDays',
    where: `NOT EXISTS (SELECT 1 FROM incidents i WHERE i.status IN ('raised','acknowledged','dispatched','on_scene')
      AND i.id = CASE WHEN alarm_outbox.payload->>'incidentId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN (alarm_outbox.payload->>'incidentId')::uuid END)`,
  },
] as const satisfies readonly {
  kind: string;
  table: string;
  column: string;
  days: DaysKey;
  cascade?: boolean;
  where?: string;
  alsoDelete?: readonly { table: string; column: string }[];
}[];

export type BatchedKind = (typeof BATCHED_KINDS)[number]['kind'];

/** What one run did to a partitioned table. */
export interface PartitionOutcome {
  /** Partitions created (ahead, or for rows found in the DEFAULT partition). */
  created: string[];
  /** Rows moved out of the DEFAULT partition into a partition created for them. */
  moved: number;
  /** Whole partitions dropped (detached, then dropped): every row in them past retention. */
  dropped: string[];
  /** Rows of the DEFAULT partition past retention, deleted in batches. */
  defaultPurged: number;
  /** Steps that could not take their lock within retention.ddlLockTimeoutMs (or failed): the next run tries again. */
  skipped: string[];
}

export interface RetentionRun {
  partitions: Record<PartitionedTable, PartitionOutcome>;
  deleted: Record<BatchedKind, number>;
}

/** Postgres: lock_not_available (lock_timeout), the error a skipped DDL step ends with. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Keeps every kind of record for its period (retention.*; docs/OPERATIONS.md), once a day:
 *
 * 1. Partitioned tables (audit log, device transitions): creates this month's and
 *    retention.partitionMonthsAhead months' partitions when missing, and the partition of any month
 *    still within retention that has rows in the DEFAULT partition (moving them in); drops every
 *    partition whose whole month is past retention; deletes DEFAULT-partition rows past retention.
 *    Each step is its own transaction with lock_timeout = retention.ddlLockTimeoutMs (a step that
 *    cannot get its lock is skipped, not waited for: inserts would queue behind it), serialised per
 *    table by an advisory lock (two runs at once do each step once).
 * 2. Other kinds: deleted in bounded batches — one short statement of at most retention.batchSize
 *    rows (cascadeBatchSize for rows with children), oldest first by the indexed time column, a
 *    pause of retention.batchPauseMs, at most retention.maxBatchesPerRun batches per kind.
 *
 * Idempotent and self-healing: every step looks at what is there, so a run that failed half-way, a
 * missed day or a second run at the same time leaves the same result as one good run. `now` is
 * the clock seam (tests pass a date; the job passes nothing).
 */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger('Retention');

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async purge(now = new Date()): Promise<RetentionRun> {
    const partitions = {} as Record<PartitionedTable, PartitionOutcome>;
    for (const { table, column } of PARTITIONED_TABLES) partitions[table] = await this.maintainPartitions(table, column, now);
    const deleted = {} as Record<BatchedKind, number>;
    for (const k of BATCHED_KINDS) deleted[k.kind] = await this.purgeBatched(k, now);
    return { partitions, deleted };
  }

  /** The cutoff of a period in days: records before it are past retention. */
  private cutoff(days: number, now: Date): Date {
    return new Date(now.getTime() - days * 86_400_000);
  }

  /** Step 1 for one table (see the class). */
  async maintainPartitions(table: PartitionedTable, column: string, now = new Date()): Promise<PartitionOutcome> {
    const cfg = this.config.retention;
    const days = cfg[PARTITION_RETENTION[table]];
    const cutoff = this.cutoff(days, now);
    const out: PartitionOutcome = { created: [], moved: 0, dropped: [], defaultPurged: 0, skipped: [] };
    const def = defaultPartitionName(table);

    const existing = new Set(await this.partitionNames(table));
    const current = monthOf(now);
    const horizonEnd = addMonths(current, cfg.partitionMonthsAhead + 1);
    const wanted = new Map<string, Month>();
    for (let i = 0; i <= cfg.partitionMonthsAhead; i++) wanted.set(partitionName(table, addMonths(current, i)), addMonths(current, i));
    // Months still within retention (and not beyond the horizon) that have rows in the DEFAULT partition.
    const strays: { m: string }[] = await this.db.query(
      `SELECT DISTINCT to_char(${column} AT TIME ZONE 'Asia/Shanghai', 'YYYYMM') AS m FROM ${def} WHERE ${column} >= $1 AND ${column} < $2`,
      [monthStart(monthOf(cutoff)), monthStart(horizonEnd)],
    );
    for (const { m } of strays) {
      const month = parseYyyymm(m);
      if (monthStart(addMonths(month, 1)) > cutoff) wanted.set(partitionName(table, month), month);
    }

    for (const [name, month] of [...wanted].sort(([a], [b]) => a.localeCompare(b))) {
      if (existing.has(name)) continue;
      const moved = await this.step(table, out, `create ${name}`, (m) => this.createPartition(m, table, column, name, month));
      if (moved !== undefined) {
        out.created.push(name);
        out.moved += moved;
      }
    }

    // A month past retention is DETACHed (the parent's lock, for a catalog change), then DROPped in a step of its own
    // (only the detached table's lock). DETACH … CONCURRENTLY (SHARE UPDATE EXCLUSIVE: inserts and reads go on) is
    // refused by Postgres while the table has a DEFAULT partition ("cannot detach partitions concurrently when a
    // default partition exists"), and ours always has one (an insert never fails for a missing month): so a plain
    // DETACH, ACCESS EXCLUSIVE on the table for a moment within lock_timeout (skipped, not queued). The DROP's own work
    // (dropping the table's buffers, unlinking its files) then happens without the parent locked.
    const pastRetention = (name: string) => {
      const month = parsePartitionName(table, name);
      return !!month && monthStart(addMonths(month, 1)) <= cutoff;
    };
    for (const name of [...existing].sort()) {
      if (!pastRetention(name)) continue;
      await this.step(table, out, `detach ${name}`, async (m) => {
        await m.query(`ALTER TABLE ${table} DETACH PARTITION ${name}`);
        return 0;
      });
    }
    // Every detached month past retention: those just detached, and any an earlier run detached but could not drop.
    for (const name of (await this.detachedNames(table)).filter(pastRetention)) {
      const done = await this.step(table, out, `drop ${name}`, async (m) => {
        await m.query(`DROP TABLE IF EXISTS ${name}`);
        return 0;
      });
      if (done !== undefined) out.dropped.push(name);
    }

    // Rows in the DEFAULT partition past retention (normally none): bounded batches, no DDL.
    out.defaultPurged = await this.deleteInBatches(
      (limit) =>
        this.db.query(
          `WITH gone AS (DELETE FROM ${def} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${def} WHERE ${column} < $1 LIMIT $2)) RETURNING 1) SELECT count(*)::int AS n FROM gone`,
          [cutoff, limit],
        ),
      cfg.batchSize,
    );

    if (out.created.length || out.dropped.length || out.defaultPurged || out.moved)
      this.logger.log(
        `${table}: partitions created [${out.created.join(', ')}] (${out.moved} row(s) moved in), dropped [${out.dropped.join(', ')}] (older than ${days} days), ${out.defaultPurged} default-partition row(s) deleted`,
      );
    if (out.skipped.length) this.logger.warn(`${table}: skipped ${out.skipped.join('; ')} — the next run tries again`);
    return out;
  }

  /** The month partitions of a table (names; the DEFAULT partition and foreign names excluded). */
  async partitionNames(table: PartitionedTable): Promise<string[]> {
    const rows: { name: string }[] = await this.db.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY c.relname`,
      [table],
    );
    return rows.map((r) => r.name).filter((n) => parsePartitionName(table, n));
  }

  /**
   * Tables named like a month partition of `table` that are not attached: months detached by a
   * run whose DROP did not happen (or detached by hand). Only those past retention are dropped.
   */
  private async detachedNames(table: PartitionedTable): Promise<string[]> {
    const rows: { name: string }[] = await this.db.query(
      `SELECT c.relname AS name FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition AND c.relnamespace = current_schema()::regnamespace
         AND c.relname LIKE $1 ORDER BY c.relname`,
      [`${table}\\_p%`],
    );
    return rows.map((r) => r.name).filter((n) => parsePartitionName(table, n));
  }

  /**
   * One DDL step in its own transaction: the table's advisory lock (another run holding it: skip),
   * lock_timeout for the table locks. Returns the step's result, or undefined when skipped.
   */
  private async step(table: string, out: PartitionOutcome, what: string, fn: (m: EntityManager) => Promise<number>): Promise<number | undefined> {
    try {
      return await this.db.transaction(async (m) => {
        const [{ got }]: { got: boolean }[] = await m.query(`SELECT pg_try_advisory_xact_lock(hashtext('shouhu.retention.' || $1)) AS got`, [table]);
        if (!got) throw Object.assign(new Error('another retention run holds the table'), { code: LOCK_NOT_AVAILABLE });
        await m.query(`SELECT set_config('lock_timeout', $1, true)`, [`${this.config.retention.ddlLockTimeoutMs}ms`]);
        return fn(m);
      });
    } catch (e) {
      const err = e as Error & { code?: string };
      out.skipped.push(`${what}: ${err.code === LOCK_NOT_AVAILABLE ? 'lock not available' : err.message}`);
      return undefined;
    }
  }

  /**
   * Creates a month's partition without blocking inserts: a plain table shaped like the parent,
   * filled with that month's rows from the DEFAULT partition (if any), then ATTACHed — which takes
   * only SHARE UPDATE EXCLUSIVE on the parent (inserts go on), where CREATE TABLE … PARTITION OF
   * would take ACCESS EXCLUSIVE. A CHECK matching the bounds spares the attach a scan. Returns the
   * rows moved.
   *
   * Rows are moved and the table attached under locks taken first (each within lock_timeout, so a
   * busy table skips the step rather than queueing inserts behind it): until the ATTACH commits, a
   * row of that month still lands in the DEFAULT partition, and one inserted between the move and
   * the ATTACH made the ATTACH fail ("updated partition constraint for default partition would be
   * violated") — the month was never created while its rows kept arriving.
   * - the parent in SHARE ROW EXCLUSIVE: inserts wait (reads go on) and, once the ATTACH commits,
   *   are routed to the new partition. A lock on the DEFAULT partition alone is not enough: an
   *   insert already routed there waits for it and then FAILS against the DEFAULT partition's new
   *   constraint ("new row for relation … violates partition constraint", Postgres 15, tried) —
   *   an audit row of an alarm lost. SHARE ROW EXCLUSIVE also covers what the ATTACH's own SHARE
   *   UPDATE EXCLUSIVE conflicts with, so that later lock never waits (no upgrade deadlock).
   * - then the DEFAULT partition in ACCESS EXCLUSIVE, which the ATTACH takes on it anyway (parent
   *   before partition: the order inserts and readers lock in).
   * Inserts wait for the move (the month's rows in the DEFAULT partition: normally none) and the
   * ATTACH's scan of the DEFAULT partition (normally nearly empty): milliseconds.
   */
  private async createPartition(m: EntityManager, table: string, column: string, name: string, month: Month): Promise<number> {
    const [from, to] = [monthStart(month), monthStart(addMonths(month, 1))];
    const def = defaultPartitionName(table);
    await m.query(`CREATE TABLE ${name} (LIKE ${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)`);
    await m.query(`ALTER TABLE ${name} ADD CONSTRAINT ${name}_bounds CHECK (${column} >= '${from.toISOString()}' AND ${column} < '${to.toISOString()}')`);
    await m.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
    await m.query(`LOCK TABLE ${def} IN ACCESS EXCLUSIVE MODE`);
    const [{ n }]: { n: number }[] = await m.query(
      `WITH moved AS (DELETE FROM ${def} WHERE ${column} >= $1 AND ${column} < $2 RETURNING *), ins AS (INSERT INTO ${name} SELECT * FROM moved RETURNING 1)
       SELECT count(*)::int AS n FROM ins`,
      [from, to],
    );
    await m.query(`ALTER TABLE ${table} ATTACH PARTITION ${name} ${boundsSql(month)}`);
    await m.query(`ALTER TABLE ${name} DROP CONSTRAINT ${name}_bounds`);
    return n;
  }

  /** Step 2 for one kind (see the class). */
  private async purgeBatched(k: (typeof BATCHED_KINDS)[number], now: Date): Promise<number> {
    const cfg = this.config.retention;
    const cutoff = this.cutoff(cfg[k.days], now);
    const where = 'where' in k ? ` AND ${k.where}` : '';
    const also =
      'alsoDelete' in k ? k.alsoDelete.map((a, i) => `, also${i} AS (DELETE FROM ${a.table} WHERE ${a.column} IN (SELECT id FROM gone))`).join('') : '';
    const sql = `WITH gone AS (DELETE FROM ${k.table} WHERE id IN (SELECT id FROM ${k.table} WHERE ${k.column} < $1${where} ORDER BY ${k.column} LIMIT $2) RETURNING id)${also}
      SELECT count(*)::int AS n FROM gone`;
    const deleted = await this.deleteInBatches((limit) => this.db.query(sql, [cutoff, limit]), 'cascade' in k ? cfg.cascadeBatchSize : cfg.batchSize);
    if (deleted) this.logger.log(`${k.kind}: ${deleted} record(s) older than ${cfg[k.days]} days deleted`);
    return deleted;
  }

  /** Runs `batch` (one DELETE of at most `limit` rows, answering [{ n }]) until it deletes fewer, within maxBatchesPerRun. */
  private async deleteInBatches(batch: (limit: number) => Promise<{ n: number }[]>, limit: number): Promise<number> {
    const cfg = this.config.retention;
    let deleted = 0;
    for (let i = 0; i < cfg.maxBatchesPerRun; i++) {
      const [{ n }] = await batch(limit);
      deleted += n;
      if (n < limit) break;
      if (cfg.batchPauseMs > 0) await new Promise((r) => setTimeout(r, cfg.batchPauseMs));
    }
    return deleted;
  }
}

/** The daily job (retention.purgeCron), run wherever job workers run. */
@Module({ providers: [RetentionService], exports: [RetentionService] })
export class RetentionModule implements OnModuleInit {
  constructor(
    @Inject(QueueService) private readonly queue: QueueService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly retention: RetentionService,
  ) {
    this.queue.handle(JobName.RetentionPurge, () => this.retention.purge());
  }

  async onModuleInit(): Promise<void> {
    await this.queue.upsertScheduler(PURGE_SCHEDULER, JobName.RetentionPurge, { pattern: this.config.retention.purgeCron }, {});
  }
}

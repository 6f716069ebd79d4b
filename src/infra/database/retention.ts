import { Inject, Injectable, Logger, Module, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { RetentionConfig } from '../../config/sections';
import { JobName } from '../queue/queue.catalogue';
import { QueueService } from '../queue/queue.service';

const PURGE_SCHEDULER = 'retention.purge';

/**
 * The kinds of record with a retention period (issue 17 §3): table, time column (indexed) and the
 * config key of its period in days. A fixed catalogue: table and column names never come from input.
 * Not here, kept for years: incidents with timelines, presses and evidence; patrol results.
 */
export const RETENTION_KINDS = [
  { kind: 'audit_log', table: 'audit_log', column: 'at', days: 'auditLogDays' },
  { kind: 'device_transitions', table: 'device_transitions', column: 'at', days: 'deviceTransitionsDays' },
] as const satisfies readonly { kind: string; table: string; column: string; days: keyof RetentionConfig }[];

export type RetentionKind = (typeof RETENTION_KINDS)[number]['kind'];

/**
 * Deletes records past their retention in bounded batches: each batch one short statement of at
 * most retention.batchSize rows (oldest first, by the indexed time column), then a pause of
 * retention.batchPauseMs, at most retention.maxBatchesPerRun batches per kind — what is left goes
 * in the next run. A failure stops the run for that kind (the next run continues); rows are only
 * ever deleted, never half-deleted.
 */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger('Retention');

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Runs one purge of every kind; `now` for tests. Returns the rows deleted per kind. */
  async purge(now = new Date()): Promise<Record<RetentionKind, number>> {
    const cfg = this.config.retention;
    const out = {} as Record<RetentionKind, number>;
    for (const k of RETENTION_KINDS) {
      const before = new Date(now.getTime() - cfg[k.days] * 86_400_000);
      let deleted = 0;
      for (let batch = 0; batch < cfg.maxBatchesPerRun; batch++) {
        const [{ n }]: { n: number }[] = await this.db.query(
          `WITH gone AS (DELETE FROM ${k.table} WHERE id IN (SELECT id FROM ${k.table} WHERE ${k.column} < $1 ORDER BY ${k.column} LIMIT $2) RETURNING 1)
           SELECT count(*)::int AS n FROM gone`,
          [before, cfg.batchSize],
        );
        deleted += n;
        if (n < cfg.batchSize) break;
        if (cfg.batchPauseMs > 0) await new Promise((r) => setTimeout(r, cfg.batchPauseMs));
      }
      out[k.kind] = deleted;
      if (deleted) this.logger.log(`${k.kind}: ${deleted} record(s) older than ${cfg[k.days]} days deleted`);
    }
    return out;
  }
}

/** The daily purge job (retention.purgeCron), run wherever job workers run. */
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

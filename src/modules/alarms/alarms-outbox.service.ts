import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { JobsOptions } from 'bullmq';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { inJobsPool } from '../../infra/database/pools';
import type { SqlParams } from '../../infra/database/sql-params';
import { JobName, JobPayloads, JOBS } from '../../infra/queue/queue.catalogue';
import { closing } from '../../infra/lifecycle/shutdown';
import { QueueService } from '../../infra/queue/queue.service';

export interface OutboxJob<N extends JobName = JobName> {
  name: N;
  jobId: string;
  payload: JobPayloads[N];
  /** When the job should run (delayed jobs: escalation, relay watch). */
  availableAt: Date;
}

export interface OutboxRow {
  id: string;
  job_name: JobName;
  job_id: string;
  payload: object;
  available_at: Date;
  dispatched_at: Date | null;
}

/**
 * Transactional outbox. Rows are inserted in the same transaction as the incident, so a crash
 * between commit and enqueue loses nothing: the api "kicks" them right after commit (fast
 * path), and a relay in the worker polls for rows not yet dispatched. A row stays pending
 * until its handler marks it done (in the handler's own transaction); a row dispatched long
 * ago and still not done is re-dispatched — its deterministic job id makes that a no-op while
 * BullMQ still holds the job, and recreates it if Redis lost it (restart without persistence)
 * or retries it if it ran out of attempts.
 */
@Injectable()
export class AlarmsOutboxService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AlarmsOutbox');
  private readonly cfg: AlarmsConfig;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private polling?: Promise<void>;
  private kicked: OutboxRow[] = [];
  private kicking?: Promise<void>;
  /** Runs started here per job id during Redis outages (the attempt number handlers are given). */
  private readonly attemptsHere = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly queue: QueueService,
  ) {
    this.cfg = config.alarms;
  }

  async insert(m: EntityManager, jobs: OutboxJob[]): Promise<OutboxRow[]> {
    if (jobs.length === 0) return [];
    return m.query(
      `INSERT INTO alarm_outbox (job_name, job_id, payload, available_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[])
       ON CONFLICT (job_id) DO NOTHING
       RETURNING id, job_name, job_id, payload, available_at, dispatched_at`,
      [jobs.map((j) => j.name), jobs.map((j) => j.jobId), jobs.map((j) => JSON.stringify(j.payload)), jobs.map((j) => j.availableAt.toISOString())],
    );
  }

  /**
   * The insert as one data-modifying CTE body for a caller folding it into its own statement:
   * the rows are written only if `whenExists` (a CTE of the caller) has a row. RETURNING gives
   * the rows for `kick` (as the insert above does).
   */
  insertSql(p: SqlParams, jobs: OutboxJob[], whenExists: string): string {
    return `INSERT INTO alarm_outbox (job_name, job_id, payload, available_at)
       SELECT * FROM unnest(${p.add(jobs.map((j) => j.name))}::text[], ${p.add(jobs.map((j) => j.jobId))}::text[],
         ${p.add(jobs.map((j) => JSON.stringify(j.payload)))}::jsonb[], ${p.add(jobs.map((j) => j.availableAt.toISOString()))}::timestamptz[])
       WHERE EXISTS (SELECT 1 FROM ${whenExists})
       ON CONFLICT (job_id) DO NOTHING
       RETURNING id, job_name, job_id, payload, available_at, dispatched_at`;
  }

  /** Marks jobs done (call in the handler's transaction, with its effect). */
  async markDone(m: EntityManager | DataSource, jobIds: string[]): Promise<void> {
    if (jobIds.length) await m.query(`UPDATE alarm_outbox SET done_at = now() WHERE job_id = ANY($1) AND done_at IS NULL`, [jobIds]);
  }

  /**
   * After commit: enqueue now rather than wait for the poll. Never throws (the poll catches up).
   * Rows kicked while a dispatch is in flight wait for it and go together: under a burst of
   * alarms that is one addBulk and one UPDATE for many incidents, not one each.
   */
  kick(rows: OutboxRow[]): void {
    // Redis down: nothing to try now; the relay catches up (and re-creates timers) when it is back.
    if (rows.length === 0 || !this.queue.redisReady) return;
    this.kicked.push(...rows);
    if (this.kicking) return;
    this.kicking = (async () => {
      while (this.kicked.length) {
        const batch = this.kicked.splice(0, this.cfg.outbox.batchSize);
        await this.dispatch(batch, false).catch((e: Error) => this.logger.warn(`kick failed, the outbox relay will retry: ${e.message}`));
      }
    })().finally(() => (this.kicking = undefined));
  }

  options(name: JobName, availableAt: Date): JobsOptions {
    const delay = Math.max(0, new Date(availableAt).getTime() - Date.now());
    const base: JobsOptions = { ...JOBS[name].options, delay };
    // The withdrawal retries like the alarm it follows (it also waits for that alarm's delivery).
    if (name === JobName.AlarmPoliceRelay || name === JobName.AlarmPoliceWithdraw) {
      const r = this.cfg.policeRelay;
      return { ...base, attempts: r.attempts, backoff: { type: 'exponential', delay: r.backoffMs, jitter: 0.2 } };
    }
    return base;
  }

  private async dispatch(rows: OutboxRow[], redispatch: boolean): Promise<void> {
    const fresh: OutboxRow[] = [];
    for (const row of rows) {
      if (redispatch) {
        const job = await this.queue.bounded(this.queue.queue(JOBS[row.job_name].queue).getJob(row.job_id), `job ${row.job_id}`);
        if (job) {
          if (await this.queue.bounded(job.isFailed(), `job ${row.job_id}`)) await this.queue.bounded(job.retry('failed'), `retry ${row.job_id}`);
          continue;
        }
      }
      fresh.push(row);
    }
    // One round trip per job name (deterministic ids: a job BullMQ already holds is left alone).
    for (const name of new Set(fresh.map((r) => r.job_name))) {
      await this.queue.addBulk(
        name,
        fresh
          .filter((r) => r.job_name === name)
          .map((r) => ({ payload: r.payload as never, options: { ...this.options(name, r.available_at), jobId: r.job_id } })),
      );
    }
    await this.db.query(`UPDATE alarm_outbox SET dispatched_at = now() WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
  }

  /** One relay pass; returns how many rows it handled. */
  async relayOnce(): Promise<number> {
    if (!this.queue.redisReady) return 0; // nothing can be handed over now; resync runs when Redis is back
    const { batchSize, redispatchAfterMs } = this.cfg.outbox;
    const fresh: OutboxRow[] = await this.db.query(
      `SELECT id, job_name, job_id, payload, available_at, dispatched_at FROM alarm_outbox
       WHERE done_at IS NULL AND dispatched_at IS NULL ORDER BY id LIMIT $1`,
      [batchSize],
    );
    if (fresh.length) await this.dispatch(fresh, false);
    const stale: OutboxRow[] = await this.db.query(
      `SELECT id, job_name, job_id, payload, available_at, dispatched_at FROM alarm_outbox
       WHERE done_at IS NULL AND dispatched_at < now() - make_interval(secs => $2 / 1000.0)
         AND available_at < now() - make_interval(secs => $2 / 1000.0)
       ORDER BY dispatched_at LIMIT $1`,
      [batchSize, redispatchAfterMs],
    );
    if (stale.length) await this.dispatch(stale, true);
    return fresh.length + stale.length;
  }

  /**
   * Redis is back (possibly empty): every pending row is handed to BullMQ again at once — jobs it
   * still holds are left alone (deterministic ids), lost ones are re-created with the delay left
   * from their due time (an escalation already overdue runs now). Without this, timers lost with
   * Redis would wait for the re-dispatch period (outbox.redispatchAfterMs). Returns the rows handed over.
   */
  async resync(): Promise<number> {
    let after = '0';
    let n = 0;
    for (;;) {
      const rows: OutboxRow[] = await this.db.query(
        `SELECT id, job_name, job_id, payload, available_at, dispatched_at FROM alarm_outbox
         WHERE done_at IS NULL AND id > $1 ORDER BY id LIMIT $2`,
        [after, this.cfg.outbox.batchSize],
      );
      if (rows.length === 0) return n;
      await this.dispatch(rows, false);
      n += rows.length;
      after = rows[rows.length - 1].id;
    }
  }

  /**
   * Redis unreachable (QueueService.duringOutage): claims the due rows of jobs that must not wait for
   * it — escalations, police relay, relay watch, notification planning (JOBS[…].duringOutage) — for
   * queue.outage.leaseMs (dispatched_at: a row another process or an earlier run claimed within the
   * lease is left alone; SKIP LOCKED: two processes never claim one row at once) and starts them here.
   * Their handlers mark the rows done with their effect, so a row run here is not handed to BullMQ
   * when Redis returns (resync takes only rows not done); one still running then is run again from
   * BullMQ and does nothing twice (handlers lock and check). Returns how many it started.
   */
  async runDueHere(): Promise<number> {
    const names = this.queue.outageJobs();
    if (names.length === 0) return 0;
    const { leaseMs, batchSize } = this.config.queue.outage;
    // An UPDATE's query() answer is [rows, count].
    const [rows] = (await this.db.query(
      `UPDATE alarm_outbox o SET dispatched_at = now()
       FROM (SELECT id FROM alarm_outbox
             WHERE done_at IS NULL AND available_at <= now() AND job_name = ANY($1)
               AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(secs => $2 / 1000.0))
             ORDER BY available_at LIMIT $3 FOR UPDATE SKIP LOCKED) c
       WHERE o.id = c.id
       RETURNING o.id, o.job_name, o.job_id, o.payload, o.available_at, o.dispatched_at`,
      [names, leaseMs, batchSize],
    )) as [OutboxRow[], number];
    let started = 0;
    for (const r of rows) {
      const attempt = (this.attemptsHere.get(r.job_id) ?? 0) + 1;
      if (!this.queue.runHere(r.job_name, r.payload as never, { jobId: r.job_id, attempt })) continue;
      this.attemptsHere.set(r.job_id, attempt);
      started++;
    }
    if (this.attemptsHere.size > 10 * batchSize) this.attemptsHere.clear(); // only a display count for retries; bounded
    return started;
  }

  onApplicationBootstrap(): void {
    if (this.config.role === 'api') return;
    this.queue.duringOutage('alarm outbox', () => this.runDueHere());
    // On a reconnect (Redis may be back empty) and on the first connect too: a process booting onto an empty
    // Redis — after a restore, a Redis replaced while everything was down — would otherwise leave the timers it
    // lost to the re-dispatch period. Jobs Redis still holds keep their deterministic ids and are left alone.
    let synced = false;
    const resync = async (reconnect: boolean) => {
      if (!reconnect && synced) return;
      synced = true;
      const n = await this.resync().catch((e: Error) => {
        synced = false; // the next connect or periodic pass tries again
        throw e;
      });
      if (n) this.logger.log(`${reconnect ? 'redis is back' : 'first connection to redis'}: ${n} pending alarm job(s) handed to the queue again`);
    };
    this.queue.onReconcile('alarm outbox resync', ({ reconnect }) => resync(reconnect));
    // The first connection may have come before this hook was registered.
    if (this.queue.redisReady) void inJobsPool(() => resync(false)).catch((e: Error) => this.logger.warn(`alarm outbox resync: ${e.message}`));
    const loop = async () => {
      if (this.stopped) return;
      let handled = 0;
      this.polling = inJobsPool(() => this.relayOnce()) // background work: the jobs pool, never intake's connections
        .then((n) => void (handled = n))
        .catch((e: Error) => this.logger.warn(`outbox relay: ${e.message}`));
      await this.polling;
      // A full batch means more are waiting: go again at once.
      if (!this.stopped) this.timer = setTimeout(() => void loop(), handled >= this.cfg.outbox.batchSize ? 0 : this.cfg.outbox.pollMs);
    };
    this.timer = setTimeout(() => void loop(), 0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // Bounded: each Redis call fails within redis.commandTimeoutMs; what is not dispatched stays in the outbox.
    await closing('alarm outbox relay', async () => {
      await this.polling;
      await this.kicking;
    });
  }
}

import { Cluster } from 'ioredis';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DelayedError, Job, JobsOptions, Queue, Worker } from 'bullmq';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { DbConnectionUnavailableError, inJobsPool } from '../database/pools';
import { closing, withinMs } from '../lifecycle/shutdown';
import { Counter } from 'prom-client';
import { metrics } from '../observability/metrics';
import { RepeatThrottle } from '../observability/repeat-throttle';
import { createRedis, pingMasters, quitWithin, type RedisClient, taggedKey } from '../redis/redis.module';
import { API_QUEUES, JOBS, JobHandler, JobName, JobPayloads, QueueName, slotFromJobId } from './queue.catalogue';

const workerRestarts = new Counter({
  name: 'shouhu_queue_worker_restarts_total',
  help: 'Queue workers the stall watchdog restarted (queue.workerStallMs): no job started while one was runnable',
  labelNames: ['queue'],
  registers: [metrics],
});

export interface SchedulerRepeat {
  /** Cron pattern, evaluated in `tz` (default Asia/Shanghai). */
  pattern?: string;
  tz?: string;
  /** Or a fixed period in milliseconds. */
  every?: number;
}

interface WantedScheduler {
  name: JobName;
  repeat: SchedulerRepeat;
  payload: unknown;
}

/** Runs the caller's due outbox work in this process while Redis is unreachable (QueueService.runHere); returns how many jobs it started. */
export type OutageHook = () => Promise<number>;

/** Work to redo whenever Redis (re)connects, and every queue.schedulerReconcileMs: `reconnect` is false on the first connect and on the periodic pass. */
export type ReconcileHook = (why: { reconnect: boolean }) => Promise<unknown>;

/**
 * Typed access to BullMQ. Modules register exactly one handler per job in their constructor;
 * a process that works a queue (workers: all but API_QUEUES; api: API_QUEUES; all: every queue)
 * fails to boot if a job of that queue has none.
 *
 * Producers (add, schedulers) use a bounded connection (redis.commandTimeoutMs): with Redis down
 * they fail at once instead of waiting, and callers fall back on their outbox. Workers keep the
 * unbounded blocking connections BullMQ requires.
 *
 * Handlers and reconcile hooks run on the jobs pool of Postgres (database.jobsPoolSize), never on
 * intake's. A handler that could not get a connection (DbConnectionUnavailableError) is put back as
 * delayed by queue.noConnectionRetryMs without spending an attempt: retried, never lost for it.
 * Concurrency per queue: queue.alarmsConcurrency, notificationsConcurrency, videoConcurrency, else queue.concurrency.
 *
 * Job schedulers a module declares with `upsertScheduler` are wanted state: re-created on every
 * Redis (re)connect and whenever the periodic check (queue.schedulerReconcileMs) finds one
 * missing (a Redis that came back empty), and `missingSchedulers` tells readiness which are gone.
 */
@Injectable()
export class QueueService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Queue');
  private readonly handlers = new Map<JobName, JobHandler<JobName>>();
  private readonly queues = new Map<QueueName, Queue>();
  private readonly workers: Worker[] = [];
  private readonly workerConnections: RedisClient[] = [];
  /**
   * Per worker, for the stall watchdog: the jobs it runs now (one with any is busy — a hung handler is
   * its lock's business — not stalled) and when it last started one (or was started, or reconnected).
   */
  private readonly workerState = new WeakMap<Worker, { active: number; lastStart: number }>();
  /** Per queue: the oldest waiting job the watchdog saw and when it first saw it waiting. */
  private readonly waitingSeen = new Map<string, { id: string; at: number }>();
  private watchdogTimer?: NodeJS.Timeout;
  private watching = false;
  private connection?: RedisClient;
  private readonly wanted = new Map<string, WantedScheduler>();
  private readonly hooks: { name: string; fn: ReconcileHook }[] = [];
  private reconcileTimer?: NodeJS.Timeout;
  private reconciling?: Promise<void>;
  /** Whether the pass running is a reconnect pass; a reconnect asked for during a periodic one runs after it. */
  private reconcilingReconnect = false;
  private reconnectAfter?: Promise<void>;
  private connectedOnce = false;
  private closed = false;
  private readonly outageHooks: { name: string; fn: OutageHook }[] = [];
  private readonly runningHere = new Map<string, Promise<void>>();
  private downSince?: number;
  /** The last outage seen by outageTick, once Redis answered again: [first seen down, seen back]. */
  private lastOutageWindow?: { from: number; to: number };
  private outageLogged = false;
  private outageTimer?: NodeJS.Timeout;
  private outagePass?: Promise<void>;
  /** Set while the producers' connection is up but Redis did not answer the last PING within redis.commandTimeoutMs (a hung Redis). */
  private unansweredSince?: number;
  /** When the first of the unanswered PINGs in a row was sent (two in a row make Redis count as down). */
  private firstUnanswered?: number;
  private probing = false;
  private probeTimer?: NodeJS.Timeout;

  /** Connection warnings of the queues and workers (one per queue per reconnect attempt while Redis is down): first, then a summary per log.repeatSummaryMs. */
  private readonly connectionWarnings: RepeatThrottle;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.connectionWarnings = new RepeatThrottle(this.logger, 'queue connections', config.log.repeatSummaryMs);
  }

  /**
   * The BullMQ prefix of a queue: `<redis.keyPrefix>:{<redis.keyPrefix>:bull:<queue>}`. BullMQ's
   * scripts touch many keys of one queue at once, so in a Redis Cluster they must share a slot: the
   * hash tag puts each queue in one slot, and the queues (one tag each) spread over the masters.
   * Same layout in single mode. Never change it lightly: jobs under another prefix are not seen (the
   * keys of the layout before issue 17, `<keyPrefix>:bull:<queue>:…`, are left for the operator to
   * delete — docs/OPERATIONS.md 'Redis Cluster'; the outbox resync re-creates what they held).
   */
  prefixOf(queue: QueueName): string {
    return taggedKey(this.config, `bull:${queue}`);
  }

  private firstReady?: Promise<boolean>;

  /**
   * Resolves true once the producers' connection is ready, or false after redis.connectTimeoutMs
   * (one wait shared by every caller: a boot with Redis down is delayed by it once, not per call).
   */
  private ready(): Promise<boolean> {
    const c = this.conn();
    if (c.status === 'ready') return Promise.resolve(true);
    this.firstReady ??= new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.config.redis.connectTimeoutMs);
      timer.unref();
      c.once('ready', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    return this.firstReady.then((ok) => ok && c.status === 'ready');
  }

  private conn(): RedisClient {
    if (!this.connection) {
      const { queueCommandTimeoutMs, connectTimeoutMs } = this.config.redis;
      this.connection = createRedis(this.config.redis, `shouhu-${this.config.role}-queue`, { commandTimeoutMs: queueCommandTimeoutMs, connectTimeoutMs });
      this.connection.on('error', () => undefined); // reported by the queues' own error events
      // A cluster stays 'ready' while one master is gone: its node's end counts as Redis down at once
      // (not after two unanswered probes — presses in between would wait on it); the probe, which
      // pings every master of the slot map, says when all answer again. Only a master of the slot map
      // left without a connection counts: the pool also drops replicas and nodes that no longer hold
      // slots, and replaces stale connections ('-node' for each) — with replicas that counted a
      // healthy cluster as down.
      const cluster = this.connection;
      if (cluster instanceof Cluster)
        cluster.on('-node', (n: { options: { host?: string; port?: number } }) => {
          if (this.unansweredSince !== undefined || this.closed) return;
          const key = `${n.options.host}:${n.options.port}`;
          const pool = (cluster as unknown as { connectionPool: { getInstanceByKey(key: string): { status: string } | undefined } }).connectionPool;
          const live = pool.getInstanceByKey(key);
          if (!cluster.slots.some((s) => s?.[0] === key) || (live && live.status !== 'end' && live.status !== 'close')) return;
          this.unansweredSince = this.firstUnanswered = Date.now();
          this.logger.warn(`redis cluster node ${n.options.host}:${n.options.port} is gone: counted as down until every master answers`);
        });
      this.connection.on('ready', () => {
        const reconnect = this.connectedOnce;
        this.connectedOnce = true;
        this.unansweredSince = this.firstUnanswered = undefined; // a new connection that passed its ready check
        if (reconnect) this.logger.log('redis is back: re-creating job schedulers and catching up');
        void this.reconcile({ reconnect });
      });
    }
    return this.connection;
  }

  /**
   * `p`, or an error after redis.queueCommandTimeoutMs (plus a second): BullMQ waits for its first
   * connection before sending anything, so a call made before Redis was ever reached would otherwise wait.
   */
  bounded<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.config.redis.queueCommandTimeoutMs + 1000;
    return withinMs(p, ms).then((r) => {
      if (r === 'timeout') throw new Error(`redis: ${what} not answered within ${ms} ms`);
      return r;
    });
  }

  /**
   * True while the producers' connection to Redis is up and Redis answers. A hung Redis (SIGSTOPped,
   * swapping, a stuck network path) keeps the TCP connection open, so the connection's status alone
   * says nothing: a PING every queue.outage.pollMs that is not answered within redis.commandTimeoutMs
   * makes this false until one is answered again — callers then skip Redis instead of waiting on it,
   * and the outage runner counts it as down exactly like a refused connection.
   */
  get redisReady(): boolean {
    return this.connection?.status === 'ready' && this.unansweredSince === undefined;
  }

  /**
   * One PING (at most one in flight), bounded by redis.commandTimeoutMs: two unanswered in a row (one
   * slow answer on a loaded machine is not an outage) → Redis counts as down from the time the first
   * was sent; answered after that → up again, and what a reconnect redoes
   * (schedulers, outbox resync) runs as after a reconnect, since no `ready` event will say so.
   */
  private probe(): void {
    const c = this.connection;
    if (this.probing || this.closed || !c || c.status !== 'ready') return;
    this.probing = true;
    const sentAt = Date.now();
    const ms = this.config.redis.commandTimeoutMs;
    // Every master must answer and take a write (pingMasters): a PING through a Cluster reaches any one
    // node and answers while a master is gone, and a Redis out of memory (noeviction), unable to
    // snapshot (MISCONF) or a replica (READONLY) answers PING and takes no job.
    const ping: Promise<unknown> = pingMasters(c, ms, this.config.redis.keyPrefix).then((rs) =>
      rs.every((r) => r.ok)
        ? 'PONG'
        : rs
            .filter((r) => !r.ok)
            .map((r) => `${r.node}: ${r.error}`)
            .join('; '),
    );
    void withinMs(
      ping.catch(() => 'failed' as const),
      ms,
    )
      .then((r) => {
        if (r === 'PONG') {
          this.firstUnanswered = undefined;
          if (this.unansweredSince !== undefined) {
            this.unansweredSince = undefined;
            this.logger.log('redis answers commands again: catching up through the queue');
            void this.reconcile({ reconnect: true });
          }
        } else if (this.firstUnanswered === undefined) {
          this.firstUnanswered = sentAt;
        } else if (this.unansweredSince === undefined && c.status === 'ready') {
          this.unansweredSince = this.firstUnanswered;
          this.logger.warn(
            `redis is connected but did not answer and take a write within ${this.config.redis.commandTimeoutMs} ms (${r === 'timeout' ? 'no answer' : String(r)}): counted as down`,
          );
        }
      })
      .finally(() => (this.probing = false));
  }

  /** Fails at once while Redis is known not to answer (a caller waits on no command that would time out). */
  private answering(what: string): void {
    if (this.unansweredSince !== undefined) throw new Error(`redis: ${what} not sent, redis does not answer`);
  }

  /** Registers work to redo on every Redis (re)connect and periodic check (e.g. a module's own schedulers, timers Redis lost). */
  onReconcile(name: string, fn: ReconcileHook): void {
    this.hooks.push({ name, fn });
  }

  /**
   * Registers the owner of an outbox whose `duringOutage` jobs (queue.catalogue.ts) must not wait for
   * Redis. Once Redis has been unreachable for queue.outage.afterMs, every queue.outage.pollMs a process
   * that works those queues calls `fn`, which claims its due rows (for queue.outage.leaseMs) and starts
   * them with `runHere`. Failures are logged and retried after the lease; never thrown.
   */
  duringOutage(name: string, fn: OutageHook): void {
    this.outageHooks.push({ name, fn });
  }

  /**
   * When Redis was last unreachable for this process (ms since the epoch): `from` when it was first
   * seen down (a PING unanswered, a write refused, the connection lost — to within queue.outage.pollMs),
   * `to` when it was seen answering again, or now while it has not been seen back. Undefined if never.
   * For what happened meanwhile without Redis: heartbeats were not recorded (the liveness sweep).
   */
  lastOutage(): { from: number; to: number } | undefined {
    if (this.downSince !== undefined) return { from: this.downSince, to: Date.now() };
    return this.lastOutageWindow;
  }

  /** True once Redis has been unreachable for queue.outage.afterMs (outbox owners then run due work here). */
  get inOutage(): boolean {
    return this.downSince !== undefined && Date.now() - this.downSince >= this.config.queue.outage.afterMs;
  }

  /** The `duringOutage` jobs this process may run here (their queue is one it works), for the owners' claim queries. */
  outageJobs(): JobName[] {
    const worked = this.workedQueues();
    return (Object.keys(JOBS) as JobName[]).filter((n) => JOBS[n].duringOutage && worked.includes(JOBS[n].queue));
  }

  /**
   * Starts a `duringOutage` job's handler in this process, as a worker would (jobs pool, same payload
   * and job id), for work taken straight from an outbox while Redis is unreachable. Does not wait for
   * it (a hung police endpoint must not hold the escalations claimed with it); a job id already running
   * here is not started twice. Returns whether it started. A failure is logged; the caller's lease
   * lapses and it is claimed again.
   */
  runHere<N extends JobName>(name: N, payload: JobPayloads[N], meta: { jobId: string; attempt: number }): boolean {
    const handler = this.handlers.get(name);
    if (!JOBS[name].duringOutage || !handler || this.closed || this.runningHere.has(meta.jobId)) return false;
    const run = inJobsPool(() => handler(payload, { jobId: meta.jobId, attempt: meta.attempt, scheduledFor: slotFromJobId(meta.jobId) }))
      .then(() => undefined)
      .catch((e: Error) => this.logger.warn(`job ${name} ${meta.jobId} run here during the redis outage failed (attempt ${meta.attempt}): ${e.message}`))
      .finally(() => this.runningHere.delete(meta.jobId));
    this.runningHere.set(meta.jobId, run);
    return true;
  }

  /** One outage tick: tracks how long Redis has been unreachable and, past queue.outage.afterMs, runs the owners' hooks. */
  private async outageTick(): Promise<number> {
    if (this.redisReady) {
      if (this.outageLogged) this.logger.log('redis answers again: jobs go through the queue again');
      if (this.downSince !== undefined) {
        this.lastOutageWindow = { from: this.downSince, to: Date.now() };
        for (const w of this.workers) this.workerState.get(w)!.lastStart = Date.now(); // the watchdog counts from Redis's return
      }
      this.downSince = undefined;
      this.outageLogged = false;
      return 0;
    }
    this.downSince ??= this.unansweredSince ?? Date.now();
    if (!this.inOutage || this.outageHooks.length === 0) return 0;
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.logger.warn(
        `redis unreachable for ${Date.now() - this.downSince} ms: escalations, police relay and notifications run from Postgres in this process`,
      );
    }
    let started = 0;
    for (const h of this.outageHooks) {
      if (this.closed) break;
      started += await inJobsPool(h.fn).catch((e: Error) => {
        this.logger.warn(`${h.name} during the redis outage: ${e.message}`);
        return 0;
      });
    }
    return started;
  }

  private startOutageLoop(): void {
    const { pollMs, batchSize } = this.config.queue.outage;
    const loop = () => {
      if (this.closed) return;
      let started = 0;
      this.outagePass = this.outageTick()
        .then((n) => void (started = n))
        .finally(() => {
          // A full batch means more are due: go again at once.
          if (!this.closed) this.outageTimer = setTimeout(loop, started >= batchSize ? 0 : pollMs);
        });
    };
    this.outageTimer = setTimeout(loop, pollMs);
  }

  onModuleInit(): void {
    this.conn();
    this.reconcileTimer = setInterval(() => void this.reconcile({ reconnect: false }), this.config.queue.schedulerReconcileMs);
    this.reconcileTimer.unref();
    this.probeTimer = setInterval(() => this.probe(), this.config.queue.outage.pollMs);
    this.probeTimer.unref();
  }

  /**
   * Re-creates wanted schedulers Redis does not have, then runs the hooks. One pass at a time;
   * failures are logged (Redis down: the next connect or period tries again).
   */
  reconcile(why: { reconnect: boolean }): Promise<void> {
    if (this.closed) return Promise.resolve();
    // A reconnect asked for while a periodic pass runs must not be lost in it (its hooks redo more):
    // one reconnect pass follows.
    if (this.reconciling && why.reconnect && !this.reconcilingReconnect)
      return (this.reconnectAfter ??= this.reconciling.then(() => {
        this.reconnectAfter = undefined;
        return this.reconcile({ reconnect: true });
      }));
    if (!this.reconciling) this.reconcilingReconnect = why.reconnect;
    this.reconciling ??= inJobsPool(async () => {
      try {
        const missing = await this.missingSchedulers();
        for (const id of missing) {
          const w = this.wanted.get(id);
          if (w) await this.applyScheduler(id, w);
        }
        if (missing.length) this.logger.warn(`job schedulers re-created: ${missing.join(', ')}`);
      } catch (e) {
        this.logger.warn(`job schedulers not reconciled: ${(e as Error).message}`);
      }
      for (const h of this.hooks) {
        if (this.closed) break;
        await h.fn(why).catch((e: Error) => this.logger.warn(`${h.name} after redis (re)connect: ${e.message}`));
      }
    }).finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  /** Wanted schedulers Redis does not hold now (throws when Redis cannot be asked). */
  async missingSchedulers(): Promise<string[]> {
    const missing: string[] = [];
    for (const [id, w] of this.wanted) {
      if (!(await this.bounded(this.queue(JOBS[w.name].queue).getJobScheduler(id), `scheduler ${id}`))) missing.push(id);
    }
    return missing;
  }

  /** The ids of the schedulers this process wants (readiness reports them). */
  wantedSchedulers(): string[] {
    return [...this.wanted.keys()];
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.conn(), prefix: this.prefixOf(name) });
      q.on('error', (e) => this.connectionWarnings.warn(`queue ${name}: ${e.message}`));
      this.queues.set(name, q);
    }
    return q;
  }

  handle<N extends JobName>(name: N, handler: JobHandler<N>): void {
    if (this.handlers.has(name)) throw new Error(`Job ${name} has two handlers`);
    this.handlers.set(name, handler as unknown as JobHandler<JobName>);
  }

  /** Adds a job; pass a deterministic `jobId` wherever a duplicate must collapse into one. */
  async add<N extends JobName>(name: N, payload: JobPayloads[N], options: JobsOptions = {}): Promise<string | undefined> {
    this.answering(`add ${name}`);
    const spec = JOBS[name];
    const job = await this.bounded(this.queue(spec.queue).add(name, payload, { ...spec.options, ...options }), `add ${name}`);
    return job.id;
  }

  async addBulk<N extends JobName>(name: N, jobs: { payload: JobPayloads[N]; options?: JobsOptions }[]): Promise<void> {
    if (jobs.length === 0) return;
    this.answering(`add ${name}`);
    const spec = JOBS[name];
    await this.bounded(this.queue(spec.queue).addBulk(jobs.map((j) => ({ name, data: j.payload, opts: { ...spec.options, ...j.options } }))), `add ${name}`);
  }

  /**
   * Runs a job waiting out its backoff (or its delay) now: a job that waits for something that has just
   * happened need not wait the rest of its backoff. Returns whether there was such a job; a job not
   * held, or not delayed (running, waiting, done), is left as it is. Bounded like every queue call.
   */
  async promoteJob(name: JobName, jobId: string): Promise<boolean> {
    this.answering(`promote ${jobId}`);
    const job = await this.bounded(this.queue(JOBS[name].queue).getJob(jobId), `job ${jobId}`);
    if (!job || !(await this.bounded(job.isDelayed(), `job ${jobId}`))) return false;
    // Between the check and the promotion it may have started: BullMQ then refuses, and there is nothing to hurry.
    return this.bounded(job.promote(), `promote ${jobId}`).then(
      () => true,
      () => false,
    );
  }

  async removeJob(name: JobName, jobId: string): Promise<void> {
    this.answering(`remove ${jobId}`);
    await this.bounded(this.queue(JOBS[name].queue).remove(jobId), `remove ${jobId}`);
  }

  /**
   * A job scheduler. Default (`wanted`): a scheduler of the deployment (sweeps, prunes, checks) —
   * remembered and kept by `reconcile`; with Redis down it is created when Redis is back, and the
   * call does not fail. `{ wanted: false }`: a scheduler whose owner keeps its own truth in
   * Postgres and reconciles it through `onReconcile` (patrol plans); failures are thrown.
   */
  async upsertScheduler<N extends JobName>(
    schedulerId: string,
    name: N,
    repeat: SchedulerRepeat,
    payload: JobPayloads[N],
    opts: { wanted?: boolean } = {},
  ): Promise<void> {
    const w: WantedScheduler = { name, repeat, payload };
    if (opts.wanted === false) return this.applyScheduler(schedulerId, w);
    this.wanted.set(schedulerId, w);
    if (!(await this.ready())) return; // Redis down: created by reconcile when it answers
    await this.applyScheduler(schedulerId, w).catch((e: Error) =>
      this.logger.warn(`job scheduler ${schedulerId} not created now (${e.message}); it will be when Redis answers`),
    );
  }

  private async applyScheduler(schedulerId: string, w: WantedScheduler): Promise<void> {
    const spec = JOBS[w.name];
    const r = w.repeat;
    const opts = r.pattern ? { pattern: r.pattern, tz: r.tz ?? 'Asia/Shanghai' } : { every: r.every };
    await this.bounded(
      this.queue(spec.queue).upsertJobScheduler(schedulerId, opts, { name: w.name, data: w.payload, opts: spec.options }),
      `scheduler ${schedulerId}`,
    );
  }

  /** Removes a scheduler (a wanted one is forgotten first; with Redis down, only that). */
  async removeScheduler(name: JobName, schedulerId: string, opts: { wanted?: boolean } = {}): Promise<void> {
    if (opts.wanted === false) {
      await this.bounded(this.queue(JOBS[name].queue).removeJobScheduler(schedulerId), `remove scheduler ${schedulerId}`);
      return;
    }
    this.wanted.delete(schedulerId);
    if (!(await this.ready())) return;
    await this.bounded(this.queue(JOBS[name].queue).removeJobScheduler(schedulerId), `remove scheduler ${schedulerId}`).catch((e: Error) =>
      this.logger.warn(`job scheduler ${schedulerId} not removed now: ${e.message}`),
    );
  }

  /**
   * The queues this process works: worker → all but API_QUEUES; api → API_QUEUES; all → every queue;
   * less a queue whose concurrency is 0 here (queue.videoConcurrency on the api nodes that are not the SIP node).
   */
  workedQueues(): QueueName[] {
    const all = [...new Set(Object.values(JOBS).map((j) => j.queue))];
    const role = this.config.role;
    return all.filter((q) => (role === 'all' || API_QUEUES.includes(q) === (role === 'api')) && this.concurrency(q) > 0);
  }

  onApplicationBootstrap(): void {
    const worked = this.workedQueues();
    if (this.config.role === 'all' && this.config.queue.videoConcurrency === 0)
      this.logger.warn('queue.videoConcurrency is 0: this process takes no alarm evidence or check-in pictures — some api node must');
    if (worked.length === 0) return;
    const missing = (Object.keys(JOBS) as JobName[]).filter((n) => worked.includes(JOBS[n].queue) && !this.handlers.has(n));
    if (missing.length) throw new Error(`No handler registered for job(s): ${missing.join(', ')}`);
    for (const queueName of worked) {
      const { worker, connection } = this.startWorker(queueName);
      this.workers.push(worker);
      this.workerConnections.push(connection);
    }
    if (this.outageJobs().length) this.startOutageLoop();
    if (this.config.queue.workerStallMs > 0) {
      // A third of the stall bound (at least queue.outage.pollMs): an idle worker's queue is asked of Redis that often, not every poll.
      const every = Math.max(this.config.queue.outage.pollMs, Math.floor(this.config.queue.workerStallMs / 3));
      this.watchdogTimer = setInterval(() => void this.watchWorkers(), every);
      this.watchdogTimer.unref();
    }
  }

  /** A worker for a queue on a connection of its own (BullMQ does not close a connection it was given: kept to close on shutdown). */
  private startWorker(queueName: QueueName): { worker: Worker; connection: RedisClient } {
    const { lockDurationMs, stalledIntervalMs } = this.config.queue;
    const connection = createRedis(this.config.redis, `shouhu-worker-${queueName}`);
    const state = { active: 0, lastStart: Date.now() };
    connection.on('ready', () => {
      this.connectionWarnings.recovered('queue workers: connected to redis again');
      state.lastStart = Date.now(); // a reconnected worker gets a full period to start fetching
    });
    const worker = new Worker(
      queueName,
      async (job: Job, token?: string) => {
        state.active++;
        state.lastStart = Date.now();
        try {
          return await this.run(job, token);
        } finally {
          state.active--;
        }
      },
      {
        connection,
        prefix: this.prefixOf(queueName),
        concurrency: this.concurrency(queueName),
        lockDuration: lockDurationMs,
        stalledInterval: stalledIntervalMs,
      },
    );
    this.workerState.set(worker, state);
    worker.on('failed', (job, err) => this.logger.warn(`job ${job?.name} ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`));
    worker.on('error', (e) => this.connectionWarnings.warn(`worker ${queueName}: ${e.message}`));
    return { worker, connection };
  }

  /**
   * The stall watchdog (queue.workerStallMs): a worker running no job that started none for that long while its
   * queue holds a job runnable for as long — waiting, or delayed and overdue (a worker promotes
   * delayed jobs itself) — is closed (force, bounded) and replaced. Only while Redis answers (an
   * outage is the outage runner's). A healthy idle worker has no runnable job waiting: never touched.
   */
  private async watchWorkers(): Promise<void> {
    if (this.watching || this.closed || !this.redisReady) return;
    this.watching = true;
    try {
      const stallMs = this.config.queue.workerStallMs;
      for (let i = 0; i < this.workers.length && !this.closed; i++) {
        const name = this.workers[i].name as QueueName;
        const state = this.workerState.get(this.workers[i])!;
        const now = Date.now();
        if (now - state.lastStart < stallMs || state.active > 0) continue;
        const runnableSince = await this.oldestRunnable(name);
        if (runnableSince === undefined || now - runnableSince < stallMs || this.closed) continue;
        this.logger.warn(
          `queue ${name}: its worker started no job for ${Math.round((now - state.lastStart) / 1000)} s while a job has been runnable for ${Math.round((now - runnableSince) / 1000)} s: worker restarted`,
        );
        workerRestarts.inc({ queue: name });
        const [old, oldConnection] = [this.workers[i], this.workerConnections[i]];
        const fresh = this.startWorker(name);
        this.workers[i] = fresh.worker;
        this.workerConnections[i] = fresh.connection;
        // The stuck one: its running jobs (none, or stuck too) are retried after their lock lapses.
        void withinMs(
          old.close(true).catch(() => undefined),
          2000,
        ).finally(() => oldConnection.disconnect());
      }
    } catch (e) {
      this.logger.warn(`queue worker watchdog: ${(e as Error).message}`);
    } finally {
      this.watching = false;
    }
  }

  /**
   * Since when (ms) the queue's oldest runnable job has been runnable, or undefined if none: the
   * earliest delayed job's due time, read from its score in the delayed set (a job waiting out a retry
   * back-off keeps its creation timestamp, and timestamp + delay named a due time long past: attack
   * pass 5 saw a worker restarted while the only job waited out a 50 s back-off), and the oldest
   * waiting job since this watchdog first saw it waiting (its entry time is not kept by BullMQ).
   */
  private async oldestRunnable(name: QueueName): Promise<number | undefined> {
    const q = this.queue(name);
    const read = async () => {
      const [waiting, delayed] = await Promise.all([
        q.getJobs(['wait', 'prioritized'], 0, 0, true),
        this.conn().zrange(q.keys.delayed, '0', '0', 'WITHSCORES'),
      ]);
      return { waitingId: waiting[0]?.id, delayedScore: delayed[1] };
    };
    const r = await withinMs(read(), this.config.redis.commandTimeoutMs);
    if (r === 'timeout') return undefined; // Redis slow: the probe decides about it, not this
    const now = Date.now();
    const seen = this.waitingSeen.get(name);
    if (r.waitingId === undefined) this.waitingSeen.delete(name);
    else if (seen?.id !== r.waitingId) this.waitingSeen.set(name, { id: r.waitingId, at: now });
    const since = [
      ...(r.waitingId !== undefined ? [this.waitingSeen.get(name)!.at] : []),
      // BullMQ scores a delayed job by due time × 0x1000 (plus a counter in the low 12 bits).
      ...(r.delayedScore !== undefined ? [Math.floor(Number(r.delayedScore) / 0x1000)] : []),
    ].filter((t) => t <= now);
    return since.length ? Math.min(...since) : undefined;
  }

  /** Jobs worked at once for a queue (queue.alarmsConcurrency, notificationsConcurrency, videoConcurrency, else queue.concurrency). */
  concurrency(queueName: QueueName): number {
    const q = this.config.queue;
    if (queueName === QueueName.Alarms) return q.alarmsConcurrency;
    if (queueName === QueueName.Notifications) return q.notificationsConcurrency;
    if (queueName === QueueName.Video) return q.videoConcurrency;
    return q.concurrency;
  }

  private async run(job: Job, token?: string): Promise<unknown> {
    const handler = this.handlers.get(job.name as JobName);
    if (!handler) throw new Error(`No handler for job ${job.name}`);
    const jobId = job.id ?? '';
    try {
      return await inJobsPool(() => handler(job.data, { jobId, attempt: job.attemptsMade + 1, scheduledFor: slotFromJobId(jobId) }));
    } catch (e) {
      if (!(e instanceof DbConnectionUnavailableError) || !token) throw e;
      // No connection (jobs pool busy past its wait, Postgres down): not the job's fault — try again later
      // without spending one of its attempts (a job with one attempt would otherwise be lost to a burst).
      this.logger.warn(`job ${job.name} ${jobId}: ${e.message}; again in ${this.config.queue.noConnectionRetryMs} ms`);
      await job.moveToDelayed(Date.now() + this.config.queue.noConnectionRetryMs, token);
      throw new DelayedError();
    }
  }

  /**
   * Workers finish their running jobs, then every connection closes. Each step is bounded: with
   * Redis down a worker's close never completes, so after a step's share of the shutdown deadline
   * its connections are dropped (a job cut short is retried after its lock lapses).
   */
  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.outageTimer) clearTimeout(this.outageTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    const stepMs = Math.max(1000, Math.floor(this.config.ops.shutdownDeadlineMs / 3));
    // Jobs started here during an outage: what does not finish within the step stays due in its outbox.
    await closing('jobs run during the redis outage', () => withinMs(Promise.allSettled([this.outagePass, ...this.runningHere.values()]), stepMs));
    await closing('queue workers', async () => {
      const r = await withinMs(Promise.allSettled(this.workers.map((w) => w.close())), stepMs);
      if (r === 'timeout') {
        this.logger.warn(`queue workers did not close within ${stepMs} ms (Redis down?): dropping their connections`);
        for (const c of this.workerConnections) c.disconnect();
        await withinMs(Promise.allSettled(this.workers.map((w) => w.close(true))), 1000);
      }
    });
    await closing('queue producers', async () => {
      const r = await withinMs(Promise.allSettled([...this.queues.values()].map((q) => q.close())), stepMs);
      if (r === 'timeout') this.connection?.disconnect();
    });
    await closing('queue connections', () =>
      Promise.all(
        [...this.workerConnections, ...(this.connection ? [this.connection] : [])].map((c) => quitWithin(c, this.config.redis.commandTimeoutMs)),
      ).then(() => undefined),
    );
  }
}

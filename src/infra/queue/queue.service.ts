import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Job, JobsOptions, Queue, Worker } from 'bullmq';
import type Redis from 'ioredis';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { createRedis } from '../redis/redis.module';
import { JOBS, JobHandler, JobName, JobPayloads, QueueName, slotFromJobId } from './queue.catalogue';

export interface SchedulerRepeat {
  /** Cron pattern, evaluated in `tz` (default Asia/Shanghai). */
  pattern?: string;
  tz?: string;
  /** Or a fixed period in milliseconds. */
  every?: number;
}

/**
 * Typed access to BullMQ. Modules register exactly one handler per job in their constructor;
 * in the worker role, boot fails if a job in the catalogue has none.
 */
@Injectable()
export class QueueService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Queue');
  private readonly handlers = new Map<JobName, JobHandler<JobName>>();
  private readonly queues = new Map<QueueName, Queue>();
  private readonly workers: Worker[] = [];
  private readonly workerConnections: Redis[] = [];
  private connection?: Redis;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  get prefix(): string {
    return `${this.config.redis.keyPrefix}:bull`;
  }

  private conn(): Redis {
    this.connection ??= createRedis(this.config.redis.url, `shouhu-${this.config.role}-queue`);
    return this.connection;
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.conn(), prefix: this.prefix });
      q.on('error', (e) => this.logger.warn(`queue ${name}: ${e.message}`));
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
    const spec = JOBS[name];
    const job = await this.queue(spec.queue).add(name, payload, { ...spec.options, ...options });
    return job.id;
  }

  async addBulk<N extends JobName>(name: N, jobs: { payload: JobPayloads[N]; options?: JobsOptions }[]): Promise<void> {
    if (jobs.length === 0) return;
    const spec = JOBS[name];
    await this.queue(spec.queue).addBulk(jobs.map((j) => ({ name, data: j.payload, opts: { ...spec.options, ...j.options } })));
  }

  async removeJob(name: JobName, jobId: string): Promise<void> {
    await this.queue(JOBS[name].queue).remove(jobId);
  }

  async upsertScheduler<N extends JobName>(schedulerId: string, name: N, repeat: SchedulerRepeat, payload: JobPayloads[N]): Promise<void> {
    const spec = JOBS[name];
    const opts = repeat.pattern ? { pattern: repeat.pattern, tz: repeat.tz ?? 'Asia/Shanghai' } : { every: repeat.every };
    await this.queue(spec.queue).upsertJobScheduler(schedulerId, opts, { name, data: payload, opts: spec.options });
  }

  async removeScheduler(name: JobName, schedulerId: string): Promise<void> {
    await this.queue(JOBS[name].queue).removeJobScheduler(schedulerId);
  }

  private runsWorkers(): boolean {
    return this.config.role === 'worker' || this.config.role === 'all';
  }

  onApplicationBootstrap(): void {
    if (!this.runsWorkers()) return;
    const missing = (Object.keys(JOBS) as JobName[]).filter((n) => !this.handlers.has(n));
    if (missing.length) throw new Error(`No handler registered for job(s): ${missing.join(', ')}`);
    const { concurrency, lockDurationMs, stalledIntervalMs } = this.config.queue;
    for (const queueName of new Set(Object.values(JOBS).map((j) => j.queue))) {
      // BullMQ does not close a connection it was given: keep it to close on shutdown.
      const connection = createRedis(this.config.redis.url, `shouhu-worker-${queueName}`);
      this.workerConnections.push(connection);
      const worker = new Worker(queueName, (job: Job) => this.run(job), {
        connection,
        prefix: this.prefix,
        concurrency,
        lockDuration: lockDurationMs,
        stalledInterval: stalledIntervalMs,
      });
      worker.on('failed', (job, err) => this.logger.warn(`job ${job?.name} ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`));
      worker.on('error', (e) => this.logger.warn(`worker ${queueName}: ${e.message}`));
      this.workers.push(worker);
    }
  }

  private async run(job: Job): Promise<unknown> {
    const handler = this.handlers.get(job.name as JobName);
    if (!handler) throw new Error(`No handler for job ${job.name}`);
    const jobId = job.id ?? '';
    return handler(job.data, { jobId, attempt: job.attemptsMade + 1, scheduledFor: slotFromJobId(jobId) });
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    await Promise.allSettled([...this.workerConnections, ...(this.connection ? [this.connection] : [])].map((c) => c.quit()));
  }
}

import { Global, HttpStatus, Inject, Injectable, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { HeavyReadsConfig } from '../../config/sections';
import { DomainError, ErrorCode, Errors } from './errors';
import { RateLimiter } from './rate-limit';

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

/**
 * The gate of the heavy district reads (compliance, patrol coverage, response statistics, incident
 * history search): reads that compute over every school or a long time range, partly on the event
 * loop that also takes alarm presses (attack A14: one auditor with 30 of them in parallel pushed
 * presses to 3.3 s). Per process, at most heavyReads.maxConcurrent run at once; up to
 * heavyReads.maxQueued more wait their turn (a dashboard asks for several at once), each at most
 * heavyReads.maxWaitMs; past that, 503 HEAVY_READ.BUSY with Retry-After. Per user (in this
 * process's memory, like every hot-path limit: rate-limit.ts), heavyReads.userPerMinute sustained
 * and heavyReads.userBurst at once; past it, 429 HEAVY_READ.TOO_MANY with Retry-After. No separate
 * database pool: at most maxConcurrent request connections are ever busy with these reads (of
 * database.poolSize), and a pool of their own would take connections from Postgres's
 * max_connections budget that intake may need.
 */
@Injectable()
export class HeavyReads {
  private readonly cfg: HeavyReadsConfig;
  private readonly users: RateLimiter;
  private running = 0;
  private readonly queue: Waiter[] = [];

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.cfg = config.heavyReads;
    this.users = new RateLimiter(this.cfg.userPerMinute / 60, this.cfg.userBurst);
  }

  /** Runs one heavy read of `userId` within the limits; rejects with 429/503 DomainErrors (nothing run). */
  async run<T>(userId: string, read: () => Promise<T>): Promise<T> {
    const wait = this.users.take(userId);
    if (wait) throw Errors.tooMany(ErrorCode.HEAVY_READ.TOO_MANY, '统计查询过于频繁，请稍后再试', Math.ceil(wait / 1000));
    await this.acquire();
    try {
      return await read();
    } finally {
      this.release();
    }
  }

  /** Reads running and waiting now (metrics, tests). */
  counts(): { running: number; queued: number } {
    return { running: this.running, queued: this.queue.length };
  }

  private busy(): DomainError {
    const retryAfterSeconds = Math.max(1, Math.ceil(this.cfg.maxWaitMs / 1000));
    return new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.HEAVY_READ.BUSY, `统计查询繁忙，请 ${retryAfterSeconds} 秒后重试`, {
      retryAfterSeconds,
      maxConcurrent: this.cfg.maxConcurrent,
    });
  }

  private acquire(): Promise<void> {
    if (this.running < this.cfg.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    if (this.queue.length >= this.cfg.maxQueued) return Promise.reject(this.busy());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(this.busy());
        }, this.cfg.maxWaitMs),
      };
      this.queue.push(waiter);
    });
  }

  private release(): void {
    const next = this.queue.shift();
    // The slot passes straight to the next waiter: `running` stays the same.
    if (next) next.start();
    else this.running--;
  }
}

/** One HeavyReads gate per process, for every module with heavy reads. */
@Global()
@Module({ providers: [HeavyReads], exports: [HeavyReads] })
export class HeavyReadsModule {}

import { Controller, Get, HttpStatus, Inject, Logger, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { Public } from '../../infra/access/decorators';
import { QueueService } from '../../infra/queue/queue.service';
import { pingMasters, REDIS, type RedisClient } from '../../infra/redis/redis.module';

class CheckTimeout extends Error {}

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new CheckTimeout(`timed out after ${ms} ms`)), ms).unref())]);

/** Socket-level failures: the dependency is not there (as opposed to answering with an error). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT']);

/**
 * What a public readiness answer may say about a failed check: a fixed word, never the driver's own
 * message (it carries host names, ports, user names and SQL — issue 12: no internal text in answers).
 * The detail goes to the log.
 */
export type ReadyFailure = 'timeout' | 'unreachable' | 'refuses_writes' | 'failed' | 'missing_schedulers';

const failureOf = (e: unknown): ReadyFailure => {
  if (e instanceof CheckTimeout) return 'timeout';
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && UNREACHABLE.has(code)) return 'unreachable';
  const msg = (e as Error)?.message ?? '';
  if (/Command timed out/i.test(msg)) return 'timeout'; // ioredis commandTimeout
  // ioredis with its offline queue off / a closed client, and pg's pool after a terminated connection
  if (/Connection is closed|Stream isn't writeable|max retries per request|Connection terminated|ECONNREFUSED/i.test(msg)) return 'unreachable';
  // Redis answering but taking no write: out of memory under noeviction, a failed snapshot (stop-writes-on-bgsave-error), a replica.
  if (/\b(OOM|MISCONF|READONLY)\b/.test(msg)) return 'refuses_writes';
  return 'failed';
};

@ApiTags('health')
@Controller('health')
export class HealthController {
  private readonly log = new Logger('Health');
  /** Last failure logged per check: a load balancer probes every few seconds, the log says each change once. */
  private readonly lastFailure = new Map<string, string>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(QueueService) private readonly queue: QueueService,
  ) {}

  /** The process is up (for restart decisions). */
  @Public()
  @Get('live')
  live() {
    return { status: 'ok' };
  }

  /**
   * Postgres and Redis answer, and every job scheduler this deployment needs exists in Redis (a
   * Redis that came back empty has none until they are re-created: QueueService.reconcile). 503
   * while any is not so; `checks.schedulers.missing` names the missing ones. Alarm intake keeps
   * working through a Redis outage — this tells the operator and the load balancer, it is not a
   * reason to stop taking alarms on this process alone.
   *
   * Answer: `{ status: 'ok' | 'unavailable', checks: { postgres, redis, schedulers } }`, each check
   * `{ ok: true, ms }` or `{ ok: false, error: ReadyFailure }` (a fixed word; the driver's message is
   * logged once per change, never returned — this endpoint is public). Each check gives up after
   * `ops.readyCheckTimeoutMs` (`timeout`).
   */
  @Public()
  @Get('ready')
  async ready(@Res({ passthrough: true }) res: Response) {
    let missing: string[] = [];
    let redisNodes: { node: number; ok: boolean }[] | undefined;
    const timeoutMs = this.config.ops.readyCheckTimeoutMs;
    const check = async (name: string, fn: () => Promise<unknown>) => {
      const t = Date.now();
      try {
        await withTimeout(fn(), timeoutMs);
        if (this.lastFailure.delete(name)) this.log.log(`ready: ${name} answers again`);
        return { ok: true as const, ms: Date.now() - t };
      } catch (e) {
        const error: ReadyFailure = name === 'schedulers' && !(e instanceof CheckTimeout) && missing.length ? 'missing_schedulers' : failureOf(e);
        const detail = `${error}: ${(e as Error)?.message ?? String(e)}`;
        if (this.lastFailure.get(name) !== detail) {
          this.lastFailure.set(name, detail);
          this.log.warn(`ready: ${name} not ready (${detail})`);
        }
        return { ok: false as const, error };
      }
    };
    const [postgres, redis, schedulers] = await Promise.all([
      check('postgres', () => this.db.query('SELECT 1')),
      check('redis', async () => {
        // Each master in a cluster (one PING through the Cluster answers while a master is down);
        // the failed ones are named in the log by address, in the answer by their position only.
        const rs = await pingMasters(this.redis, timeoutMs, this.config.redis.keyPrefix);
        // Per master only on a cluster: a single Redis answers as before ({ ok, error }; redis-outage spec).
        if (rs.length > 1) redisNodes = rs.map((r, i) => ({ node: i + 1, ok: r.ok }));
        const failed = rs.filter((r) => !r.ok);
        if (failed.length) throw Object.assign(new Error(`redis ${failed.map((r) => `${r.node}: ${r.error}`).join('; ')}`), { nodes: failed });
      }),
      check('schedulers', async () => {
        missing = await this.queue.missingSchedulers();
        if (missing.length) throw new Error(`missing job schedulers: ${missing.join(', ')}`);
      }),
    ]);
    const ok = postgres.ok && redis.ok && schedulers.ok;
    res.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: ok ? 'ok' : 'unavailable',
      checks: { postgres, redis: { ...redis, ...(redisNodes ? { nodes: redisNodes } : {}) }, schedulers: { ...schedulers, missing } },
    };
  }
}

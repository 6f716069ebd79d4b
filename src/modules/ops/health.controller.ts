import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { Public } from '../../infra/access/decorators';
import { QueueService } from '../../infra/queue/queue.service';
import { REDIS } from '../../infra/redis/redis.module';

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms).unref())]);

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
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
   */
  @Public()
  @Get('ready')
  async ready(@Res({ passthrough: true }) res: Response) {
    const check = async (fn: () => Promise<unknown>) => {
      const t = Date.now();
      try {
        await withTimeout(fn(), 2000);
        return { ok: true, ms: Date.now() - t };
      } catch (e) {
        return { ok: false, error: (e as Error).message };
      }
    };
    let missing: string[] = [];
    const [postgres, redis, schedulers] = await Promise.all([
      check(() => this.db.query('SELECT 1')),
      check(() => this.redis.ping()),
      check(async () => {
        missing = await this.queue.missingSchedulers();
        if (missing.length) throw new Error(`missing job schedulers: ${missing.join(', ')}`);
      }),
    ]);
    const ok = postgres.ok && redis.ok && schedulers.ok;
    res.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks: { postgres, redis, schedulers: { ...schedulers, missing } } };
  }
}

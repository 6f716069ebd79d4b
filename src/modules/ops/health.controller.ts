import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { Public } from '../../infra/access/decorators';
import { REDIS } from '../../infra/redis/redis.module';

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms).unref())]);

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  /** The process is up (for restart decisions). */
  @Public()
  @Get('live')
  live() {
    return { status: 'ok' };
  }

  /** Postgres and Redis answer (for load-balancer decisions). */
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
    const [postgres, redis] = await Promise.all([check(() => this.db.query('SELECT 1')), check(() => this.redis.ping())]);
    const ok = postgres.ok && redis.ok;
    res.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks: { postgres, redis } };
  }
}

import { Controller, Get, Header, Inject, Req } from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { Public } from '../../infra/access/decorators';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { metrics } from '../../infra/observability/metrics';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Prometheus metrics (outside /api/v1). Not a user route: with ops.metricsToken set (required in
 * production) the scraper sends `Authorization: Bearer <token>`; anything else is a 401.
 */
@Controller()
export class MetricsController {
  private readonly token: Buffer | null;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.token = config.ops.metricsToken ? digest(config.ops.metricsToken) : null;
  }

  /** Prometheus metrics in the text exposition format (with ops.metricsToken set: `Authorization: Bearer <token>`, else 401). */
  @Public()
  @Get('metrics')
  @Header('Content-Type', metrics.contentType)
  @ApiOkResponse({ description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } })
  scrape(@Req() req: Request): Promise<string> {
    if (this.token) {
      const header = req.headers.authorization ?? '';
      const given = header.startsWith('Bearer ') ? digest(header.slice(7)) : null;
      if (!given || !timingSafeEqual(given, this.token))
        throw Errors.unauthorized(ErrorCode.AUTH.UNAUTHENTICATED, 'Metrics need the metrics token (ops.metricsToken)');
    }
    return metrics.metrics();
  }
}

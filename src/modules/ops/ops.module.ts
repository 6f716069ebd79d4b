import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { HealthController } from './health.controller';
import { HttpMetricsMiddleware } from './http-metrics.middleware';
import { MetricsController } from './metrics.controller';

/**
 * The operations endpoints (api role): GET /health/live, /health/ready and /metrics (outside the
 * api/v1 prefix, see bootstrap.ts), and the HTTP duration histogram of every request. The
 * prom-client registry and counters stay in src/infra/observability, where every layer adds to them.
 */
@Module({ controllers: [HealthController, MetricsController] })
export class OpsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('*path');
  }
}

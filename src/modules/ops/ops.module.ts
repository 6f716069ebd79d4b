import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { HealthController } from './health.controller';
import { HttpMetricsMiddleware } from './http-metrics.middleware';
import { MetricsController } from './metrics.controller';
import { AuthModule } from '../auth';
import { QueueBoard, QueueBoardController } from './queue-board';

/**
 * The operations endpoints (api role): GET /health/live, /health/ready and /metrics (outside the
 * api/v1 prefix, see bootstrap.ts), the HTTP duration histogram of every request, and the admins'
 * queue dashboard (bull-board at /admin/queues, mounted by bootstrap.ts: QueueBoard). The
 * prom-client registry and counters stay in src/infra/observability, where every layer adds to them.
 */
@Module({ imports: [AuthModule], controllers: [HealthController, MetricsController, QueueBoardController], providers: [QueueBoard], exports: [QueueBoard] })
export class OpsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('*path');
  }
}

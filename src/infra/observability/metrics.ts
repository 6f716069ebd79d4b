import { Controller, Get, Header, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { Public } from '../access/decorators';

/** One registry per process; capabilities add their own counters to it. */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics, prefix: 'shouhu_' });

export const httpDuration = new Histogram({
  name: 'shouhu_http_request_duration_seconds',
  help: 'HTTP request duration by route and status',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [metrics],
});

/** Counts input that was refused as malformed, by source (http, sip, import…). */
export const malformedInput = new Counter({
  name: 'shouhu_malformed_input_total',
  help: 'Malformed requests or packets dropped, by source and reason',
  labelNames: ['source', 'reason'],
  registers: [metrics],
});

@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  use(req: Request, res: Response, next: NextFunction): void {
    const end = httpDuration.startTimer();
    res.on('finish', () => {
      // The matched route pattern, never the raw URL: ids would explode the label set.
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      end({ method: req.method, route: req.baseUrl + route, status: String(res.statusCode) });
    });
    next();
  }
}

@Controller()
export class MetricsController {
  @Public()
  @Get('metrics')
  @Header('Content-Type', metrics.contentType)
  scrape(): Promise<string> {
    return metrics.metrics();
  }
}

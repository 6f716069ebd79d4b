import { Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { httpDuration } from '../../infra/observability/metrics';

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

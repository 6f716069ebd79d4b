import { Controller, Get, Header } from '@nestjs/common';
import { Public } from '../../infra/access/decorators';
import { metrics } from '../../infra/observability/metrics';

@Controller()
export class MetricsController {
  @Public()
  @Get('metrics')
  @Header('Content-Type', metrics.contentType)
  scrape(): Promise<string> {
    return metrics.metrics();
  }
}

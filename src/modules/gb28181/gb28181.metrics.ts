import { Counter } from 'prom-client';
import { metrics } from '../../infra/observability/metrics';

export const sipRequests = new Counter({
  name: 'shouhu_gb28181_requests_total',
  help: 'GB/T 28181 SIP requests answered, by kind and status',
  labelNames: ['kind', 'status'],
  registers: [metrics],
});
export const sipDropped = new Counter({
  name: 'shouhu_gb28181_dropped_total',
  help: 'SIP input dropped before parsing (rate limit, size, TCP framing), by reason',
  labelNames: ['reason'],
  registers: [metrics],
});
export const sipEvents = new Counter({
  name: 'shouhu_gb28181_events_total',
  help: 'GB/T 28181 platform-side events (queries, catalogs, alarms without a camera…)',
  labelNames: ['event'],
  registers: [metrics],
});

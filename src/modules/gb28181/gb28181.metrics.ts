import { Counter, Gauge } from 'prom-client';
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
export const cascadeEvents = new Counter({
  name: 'shouhu_gb28181_cascade_events_total',
  help: 'Cascade to higher-level platforms (issue 16 §7): registrations, keepalives, queries answered, alarms forwarded, by superior and event',
  labelNames: ['superior', 'event'],
  registers: [metrics],
});
export const cascadeRegistered = new Gauge({
  name: 'shouhu_gb28181_cascade_registered',
  help: '1 while our registration with the superior platform is current, else 0',
  labelNames: ['superior'],
  registers: [metrics],
});

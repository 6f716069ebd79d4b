import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** One registry per process; capabilities add their own counters to it (served at GET /metrics by OpsModule). */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics, prefix: 'shouhu_' });

/** Recorded for every request by HttpMetricsMiddleware (OpsModule). */
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

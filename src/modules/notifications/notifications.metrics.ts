import { Counter, Gauge, Histogram } from 'prom-client';
import { metrics } from '../../infra/observability/metrics';

/** Notification figures (GET /metrics). */
export const notificationMetrics = {
  attempts: new Counter({
    name: 'shouhu_notification_attempts_total',
    help: 'Attempts to deliver an escalation message, by channel kind and outcome (sent, retrying, failed)',
    labelNames: ['kind', 'outcome'],
    registers: [metrics],
  }),
  channelFailing: new Gauge({
    name: 'shouhu_notification_channel_failing',
    help: "1 while a channel's last attempt from this process failed, 0 after a success",
    labelNames: ['channel', 'kind'],
    registers: [metrics],
  }),
  latency: new Histogram({
    name: 'shouhu_notification_latency_seconds',
    help: "From an escalation's due time to the provider accepting its message",
    labelNames: ['kind'],
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [metrics],
  }),
};

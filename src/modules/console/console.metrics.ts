import { Counter, Gauge } from 'prom-client';
import { metrics } from '../../infra/observability/metrics';

/** Console delivery figures (GET /metrics). */
export const consoleMetrics = {
  connected: new Gauge({ name: 'shouhu_console_connected', help: 'Consoles connected to this api process', registers: [metrics] }),
  delivered: new Counter({ name: 'shouhu_console_events_delivered_total', help: 'Console events this api process delivered live', registers: [metrics] }),
  replayed: new Counter({ name: 'shouhu_console_events_replayed_total', help: 'Console events replayed to reconnecting consoles', registers: [metrics] }),
  gapsPassedOver: new Counter({
    name: 'shouhu_console_gaps_passed_over_total',
    help: 'Gaps in console event seqs held longer than console.gapMaxWaitMs: later events went on without them',
    registers: [metrics],
  }),
  lateDelivered: new Counter({
    name: 'shouhu_console_events_late_total',
    help: 'Console events delivered after later ones (their transaction held them past console.gapMaxWaitMs)',
    registers: [metrics],
  }),
  rowsRead: new Counter({
    name: 'shouhu_console_feed_rows_read_total',
    help: 'console_events rows the live feed of this api process read (each committed event once, unless more than 4 × console.deliveryBatchSize wait behind a gap)',
    registers: [metrics],
  }),
  snapshots: new Counter({ name: 'shouhu_console_snapshots_total', help: 'Snapshots sent to consoles that could not replay', registers: [metrics] }),
  actions: new Counter({
    name: 'shouhu_console_actions_total',
    help: 'Operator actions over the socket, by action and result',
    labelNames: ['action', 'result'],
    registers: [metrics],
  }),
};

import { Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import { metrics } from '../observability/metrics';

const unhandledRejections = new Counter({
  name: 'shouhu_unhandled_rejections_total',
  help: 'Promise rejections nothing handled (each a bug: logged at error with its stack); the process kept running',
  registers: [metrics],
});

/**
 * A rejected promise nobody handled is logged (error, with its stack) and counted
 * (shouhu_unhandled_rejections_total, for alerting) instead of ending the process, Node's default.
 * Why: it is a bug on one request's or one job's path, and ending the process takes every school's
 * alarm intake, SIP and console down with it — attack pass 4 did that with one unauthenticated
 * request (a cookie that did not decode, on a handler started with `void`). The paths are fixed
 * one by one; this keeps the next such bug from being an outage. An uncaught exception still ends
 * the process (Node's default: the state of a synchronous path cut midway is unknown); the
 * supervisor (Docker restart policy, systemd) starts it again.
 */
export function keepRunningOnUnhandledRejections(): void {
  const log = new Logger('Process');
  process.on('unhandledRejection', (reason) => {
    unhandledRejections.inc();
    log.error(`unhandled promise rejection (a bug; the service keeps running): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  });
}

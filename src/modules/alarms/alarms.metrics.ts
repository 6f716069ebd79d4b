import { Gauge, Histogram } from 'prom-client';
import { metrics } from '../../infra/observability/metrics';

/**
 * Alarm intake figures (GET /metrics): where a press's time goes between its arrival and its
 * COMMIT, so an engineer (and the alarms bench) can tell a burst that waits for a group slot from
 * one that waits for connections, locks, statements or the WAL flush.
 */
export const intakeMetrics = {
  /** Seconds per phase of an intake transaction. queued: an event's wait for a group (alarms.groupCommit); connect: for a pooled connection; lock: BEGIN with the devices' advisory locks; apply: the events' statements; commit: COMMIT (the WAL flush). */
  phase: new Histogram({
    name: 'shouhu_alarm_intake_phase_seconds',
    help: 'Alarm intake time by phase: queued (waiting for a group), connect, lock, apply, commit',
    labelNames: ['phase'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics],
  }),
  /** Device events per group transaction. */
  groupSize: new Histogram({
    name: 'shouhu_alarm_intake_group_size',
    help: 'Device alarm events committed per group transaction',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    registers: [metrics],
  }),
  /** Seconds work that yields to intake (incident evidence rounds, IntakePressure) waited for a burst of presses to pass. */
  yieldWait: new Histogram({
    name: 'shouhu_alarm_yield_wait_seconds',
    help: 'Seconds work that yields to alarm intake (incident evidence rounds) waited for a burst of presses to pass',
    buckets: [0, 0.1, 0.5, 1, 2, 5, 10, 20, 60],
    registers: [metrics],
  }),
  /** Device events waiting for a group transaction now. */
  queued: new Gauge({ name: 'shouhu_alarm_intake_queued', help: 'Device alarm events waiting for a group transaction', registers: [metrics] }),
};

export type IntakePhase = 'queued' | 'connect' | 'lock' | 'apply' | 'commit';

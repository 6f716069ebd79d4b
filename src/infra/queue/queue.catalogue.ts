import type { JobsOptions } from 'bullmq';

/**
 * The one catalogue of queues and jobs. Names are stored in Redis with queued and scheduled
 * jobs: never rename one in place; add a new name and migrate.
 */
export enum QueueName {
  System = 'system',
  Alarms = 'alarms',
  Patrols = 'patrols',
  /** Escalation messages to people (WeCom, DingTalk, Feishu, SMS): their own workers, so a slow provider never delays alarms. */
  Notifications = 'notifications',
  /**
   * Jobs that need live video (snapshots of GB/T 28181 cameras need the process that holds the SIP
   * server): worked in the api processes (roles api and all), not in workers — see API_QUEUES.
   */
  Video = 'video',
  /**
   * Deliveries to the public-security platform (一键报警联网): their own workers, so an endpoint that
   * hangs until its timeout holds only these — escalations ran 12–16 s late behind hung relays
   * when they shared the alarms queue's workers (adversarial pass F15).
   */
  PoliceRelay = 'police-relay',
}

/** Queues whose workers run in api processes (role api or all) instead of worker processes. */
export const API_QUEUES: readonly QueueName[] = [QueueName.Video];

export enum JobName {
  /** Deletes refresh tokens past their expiry (daily). */
  PruneRefreshTokens = 'auth.prune-refresh-tokens',
  /** Finds devices past their liveness deadline and records offline transitions (every few seconds). */
  LivenessSweep = 'device-health.sweep',
  /** An unacknowledged incident reaches an escalation level (delayed; id esc-<incident>-<level>). */
  AlarmEscalate = 'alarms.escalate',
  /** Delivers an incident to the police endpoint (id relay-<incident>; attempts/backoff from config). */
  AlarmPoliceRelay = 'alarms.police-relay',
  /** Flags an incident whose police delivery is late (delayed; id relaywatch-<incident>). */
  AlarmRelayWatch = 'alarms.relay-watch',
  /**
   * Tells the police endpoint that an alarm it was sent is withdrawn — cancelled by the school, or
   * resolved as a false alarm or a test (attack note A17: officers dispatched to a mis-press) (id withdraw-<incident>).
   */
  AlarmPoliceWithdraw = 'alarms.police-withdraw',
  /** Delivers an alarm-button self-test press to the police endpoint, marked as a test (id testrelay-<test>). */
  AlarmButtonTestRelay = 'alarms.button-test-relay',
  /** One run of a patrol plan (job scheduler patrol-plan:<planId>; idempotent per plan and slot). */
  PatrolRun = 'patrols.run',
  /** Protection posts past window start + grace with too few on post become findings (every minute). */
  PatrolPostCheck = 'patrols.post-check',
  /** Daily snapshot of the four targets per school (idempotent per day). */
  ComplianceSnapshot = 'compliance.snapshot',
  /** Deletes console events older than the replay window (console.pruneEveryMs). */
  ConsolePrune = 'console.prune',
  /**
   * Retention (retention.*, daily): keeps the monthly partitions of the audit log and device
   * transitions (creates ahead, drops months past retention) and deletes closed incidents and patrol
   * results past theirs in bounded batches. Idempotent and self-healing (src/infra/database/retention.ts).
   */
  RetentionPurge = 'retention.purge',
  /**
   * An incident reached an escalation level: tell the people the escalation policy names (written by
   * the alarms escalate handler into its outbox with the level, id notice-<incident>-<level>; handled by
   * src/modules/notifications, which marks the outbox row done).
   */
  NotifyEscalation = 'notifications.escalation',
  /** One message to one recipient through one channel (id ntf-<delivery>; retried up to notifications.attempts). */
  NotifyDeliver = 'notifications.deliver',
  /** Messages queued long ago and neither sent nor failed are queued again (notifications.reconcileEveryMs). */
  NotifyReconcile = 'notifications.reconcile',
  /** Uncovered hours in the duty roster ahead become findings on the console (notifications.rosterCheckEveryMs). */
  RosterGapCheck = 'notifications.roster-gap-check',
  /** Deletes evidence snapshots past video.evidenceRetentionDays (daily, video.evidencePurgeCron). */
  VideoEvidencePurge = 'video.evidence-purge',
  /**
   * Evidence of an incident: a JPEG of each linked camera, attached to its timeline (written by the
   * alarms intake into its outbox at raise, one per offset of alarms.evidenceSnapshotSeconds, id
   * evidence-<incident>-<round>; handled by src/modules/video, which marks the outbox row done).
   */
  VideoIncidentEvidence = 'video.incident-evidence',
  /**
   * A protection-post check-in at a post with a gate camera: that camera's picture of the moment,
   * stored with the check-in (added by src/modules/patrols after the check-in commits, id
   * checkin-snap-<checkin>; handled by src/modules/video).
   */
  VideoCheckinSnapshot = 'video.checkin-snapshot',
}

/** The payload each job carries. */
export interface JobPayloads {
  [JobName.PruneRefreshTokens]: { olderThanDays?: number };
  [JobName.LivenessSweep]: Record<string, never>;
  [JobName.AlarmEscalate]: { incidentId: string; level: number };
  /** `real`: the delivery of a drill an operator turned real (ids relay-<incident>-real, relaywatch-<incident>-real). */
  [JobName.AlarmPoliceRelay]: { incidentId: string; real?: boolean };
  [JobName.AlarmRelayWatch]: { incidentId: string; real?: boolean };
  [JobName.AlarmButtonTestRelay]: { testId: string };
  [JobName.AlarmPoliceWithdraw]: { incidentId: string };
  [JobName.PatrolRun]: { planId: string };
  [JobName.PatrolPostCheck]: Record<string, never>;
  [JobName.ComplianceSnapshot]: { date?: string };
  [JobName.ConsolePrune]: Record<string, never>;
  [JobName.RetentionPurge]: Record<string, never>;
  [JobName.NotifyEscalation]: { incidentId: string; level: number };
  [JobName.NotifyDeliver]: { deliveryId: string };
  [JobName.NotifyReconcile]: Record<string, never>;
  [JobName.RosterGapCheck]: Record<string, never>;
  [JobName.VideoEvidencePurge]: Record<string, never>;
  /** `round`: 0, 1… (the offset's index); `afterSeconds`: its offset from the raise. */
  [JobName.VideoIncidentEvidence]: { incidentId: string; round: number; afterSeconds: number };
  [JobName.VideoCheckinSnapshot]: { checkinId: string };
}

export interface JobSpec {
  queue: QueueName;
  options: JobsOptions;
  /**
   * Run in-process from its outbox row while Redis is unreachable (QueueService.runHere, queue.outage):
   * only for work that must not wait for Redis — a person or the police must hear of an alarm — and
   * whose handler is idempotent (it may run once here and once more from BullMQ after Redis returns).
   */
  duringOutage?: true;
}

const retrying: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600, count: 10000 },
  removeOnFail: { age: 7 * 86400 },
};

/** Queue and default options for every job, in one place. */
export const JOBS: Record<JobName, JobSpec> = {
  [JobName.PruneRefreshTokens]: { queue: QueueName.System, options: retrying },
  // A failed sweep is simply superseded by the next one a few seconds later: no retries, little history.
  [JobName.LivenessSweep]: { queue: QueueName.System, options: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  [JobName.AlarmEscalate]: { queue: QueueName.Alarms, options: retrying, duringOutage: true },
  [JobName.AlarmPoliceRelay]: { queue: QueueName.PoliceRelay, options: retrying, duringOutage: true },
  [JobName.AlarmRelayWatch]: { queue: QueueName.Alarms, options: retrying, duringOutage: true },
  [JobName.AlarmPoliceWithdraw]: { queue: QueueName.PoliceRelay, options: retrying, duringOutage: true },
  [JobName.AlarmButtonTestRelay]: { queue: QueueName.PoliceRelay, options: retrying },
  [JobName.PatrolRun]: { queue: QueueName.Patrols, options: { ...retrying, attempts: 3 } },
  // Superseded by the next check a minute later; findings are idempotent per post and window anyway.
  [JobName.PatrolPostCheck]: { queue: QueueName.Patrols, options: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  [JobName.ComplianceSnapshot]: { queue: QueueName.Patrols, options: { ...retrying, attempts: 5 } },
  // Superseded by the next run: no retries.
  [JobName.ConsolePrune]: { queue: QueueName.System, options: { attempts: 1, removeOnComplete: { count: 20 }, removeOnFail: { count: 20 } } },
  // Superseded by the next day's run: no retries.
  [JobName.RetentionPurge]: { queue: QueueName.System, options: { attempts: 1, removeOnComplete: { count: 20 }, removeOnFail: { count: 20 } } },
  [JobName.NotifyEscalation]: { queue: QueueName.Notifications, options: retrying, duringOutage: true },
  // Attempts and the pause between them come from notifications.attempts / retryDelayMs (set where the job is added).
  [JobName.NotifyDeliver]: { queue: QueueName.Notifications, options: retrying, duringOutage: true },
  // Superseded by the next run: no retries.
  [JobName.NotifyReconcile]: { queue: QueueName.Notifications, options: { attempts: 1, removeOnComplete: { count: 20 }, removeOnFail: { count: 20 } } },
  [JobName.RosterGapCheck]: { queue: QueueName.Notifications, options: { attempts: 1, removeOnComplete: { count: 20 }, removeOnFail: { count: 20 } } },
  // Idempotent (deletes what is past retention); a failed run retries, else the next day's catches up.
  [JobName.VideoEvidencePurge]: { queue: QueueName.System, options: { ...retrying, attempts: 3 } },
  // A camera that cannot be grabbed is an answer (written on the timeline), not a failure: retries are for Postgres/Redis faults.
  [JobName.VideoIncidentEvidence]: { queue: QueueName.Video, options: { ...retrying, attempts: 5 } },
  // As above: an offline camera is recorded on the check-in (failed + code), retries are for our own faults.
  [JobName.VideoCheckinSnapshot]: { queue: QueueName.Video, options: { ...retrying, attempts: 5 } },
};

/**
 * What a handler learns about its job besides the payload. `scheduledFor`: the time slot a job
 * made by a job scheduler belongs to (null for other jobs), so a retried or late run lands in the
 * same slot.
 */
export interface JobMeta {
  jobId: string;
  attempt: number;
  scheduledFor: Date | null;
}

export type JobHandler<N extends JobName> = (payload: JobPayloads[N], meta: JobMeta) => Promise<unknown>;

/** The scheduled time carried by a BullMQ job-scheduler job id (`repeat:<schedulerId>:<millis>`), or null. */
export function slotFromJobId(jobId: string): Date | null {
  const m = /^repeat:.+:(\d{10,})$/.exec(jobId);
  return m ? new Date(Number(m[1])) : null;
}

/**
 * The catalogue of console events: what operators' consoles receive. Type names and the
 * version are stored with every event (console_events table) and sent to clients: never
 * rename one in place; add a new type or bump `v`.
 */
export const CONSOLE_EVENT_VERSION = 1;

export interface ConsoleEventMap {
  /** A new incident (alarm) was committed. */
  'incident.raised': IncidentSummary;
  /** An incident changed state (acknowledged, dispatched, on scene, resolved, cancelled, note, press…). */
  'incident.updated': IncidentSummary & { change: string };
  /** An unacknowledged incident reached an escalation level (supervisors are to be alerted). */
  'incident.escalated': IncidentSummary & { level: number };
  /** Delivery of an incident to the police endpoint is late. */
  'incident.relay_late': IncidentSummary & { lateAfterSeconds: number };
  /** Device status transitions found by one liveness sweep, batched (never one event per device). */
  'device.status_batch': {
    /** maintenance: went offline inside a maintenance window (no fault, no outage). */
    changes: { deviceId: string; kind: string; schoolId: string; from: string; to: string; at: string; maintenance?: boolean }[];
  };
  /**
   * A school's "devices offline" outage incident opened, changed or closed (src/modules/device-health).
   * A liveness sweep adds the devices of this school that went offline / came back in it
   * (`wentOffline`, `recovered`); the overdue check adds the faults that just became overdue.
   */
  'device.outage': {
    schoolId: string;
    outageId: string;
    status: 'open' | 'closed';
    /** Devices of the school offline now (open faults of this outage). */
    offline: number;
    /** The most offline at once during the outage. */
    peak: number;
    /** Devices that were offline at some time during the outage. */
    affected: number;
    openedAt: string;
    closedAt: string | null;
    /** A fault of this outage is past the repair deadline (liveness.faultOverdueHours). */
    overdue: boolean;
    wentOffline?: string[];
    recovered?: string[];
    newlyOverdue?: { deviceId: string; kind: string }[];
  };
  /**
   * A drill window (演练) was created, requested by a school, approved, ended early or deleted
   * (src/modules/alarms). Consoles show the approved windows in force (startsAt ≤ now < endsAt)
   * and the pending requests to approve.
   */
  'drill.window': DrillWindowItem & { change: DrillWindowChange };
  /**
   * An alarm button's self-test (issue 11 §3): a test press was recorded (`tested`: device flag, test
   * mode, or an incident resolved with outcome `test`), or a guard started / ended its test mode.
   */
  'button.test': {
    alarmDeviceId: string;
    schoolId: string;
    change: 'tested' | 'test_mode_started' | 'test_mode_ended';
    testId: string | null;
    kind: 'device_flag' | 'test_mode' | 'outcome' | null;
    at: string;
    by: string;
    testModeUntil: string | null;
  };
  /**
   * A maintenance window (维护时段: the district, a school or one device) was declared, changed, ended early or
   * deleted (src/modules/device-health): consoles refresh the device status (offline inside a window is maintenance).
   */
  'device.maintenance': { windowId: string; schoolId: string | null; deviceId: string | null; change: 'created' | 'updated' | 'ended' | 'deleted' };
  /** Devices started flapping (bounced more than liveness.flapCount times in flapWindowMinutes): reported once per episode. */
  'device.flapping': { schoolId: string; devices: { deviceId: string; kind: string; bounces: number }[] };
  /**
   * A patrol audit, video patrol round or protection-post check produced findings: batched.
   * Rounds and post checks: one event per school (`findings` capped; `total` is the full count).
   * Audit runs: a few district events (schoolId null), each covering up to 500 schools — `schools`
   * lists every one with its count per check, `chunk` says which part of the run it is, `total`
   * counts the chunk's findings and `findings` lists the first of them.
   */
  'patrol.finding': {
    schoolId: string | null;
    source: 'audit' | 'round' | 'post';
    runId: string | null;
    total: number;
    findings: PatrolFindingItem[];
    chunk?: { index: number; of: number };
    schools?: { schoolId: string | null; total: number; checks: Record<string, number> }[];
  };
  /**
   * One school's findings from an audit run, for that school's staff only: the control center
   * already gets the run as `patrol.finding` summaries (see SCHOOL_ONLY_EVENTS).
   */
  'patrol.school_findings': {
    schoolId: string;
    source: 'audit';
    runId: string | null;
    total: number;
    findings: PatrolFindingItem[];
  };
  /**
   * One message about an escalated incident changed state (src/modules/notifications): queued,
   * sent, retrying, failed, cancelled (acknowledged first), suppressed (channel silenced) or
   * no_recipient (nobody on duty). District only.
   */
  'notification.delivery': NotificationDeliveryItem;
  /** A notification channel started failing, recovered, or was silenced / unsilenced for maintenance. District only. */
  'notification.channel': {
    channelId: string;
    name: string;
    kind: string;
    state: 'failing' | 'recovered' | 'silenced' | 'unsilenced';
    /** The provider's answer or the network error of the failure. */
    error: string | null;
    silencedUntil: string | null;
  };
  /**
   * The roster check found hours ahead with nobody on duty in a role (each gap reported once).
   * `from`/`to` are clipped to the hours checked; `to` null = still uncovered at the end of them. District only.
   */
  'duty.roster_gap': { gaps: { dutyRole: string; from: string; to: string | null }[] };
  /**
   * A duty shift was added, changed, removed or handed over — or (`person`) someone holding a shift now or later changed
   * as the roster shows them: disabled or enabled, moved out of or into a role that may hold a duty, renamed, a new
   * phone (`userId` them, `shiftId` their shift on duty now or next). Consoles refresh "on duty now". District only.
   */
  'duty.roster_changed': { shiftId: string; change: 'created' | 'updated' | 'deleted' | 'handover' } | { shiftId: string; change: 'person'; userId: string };
}

/** One message to one recipient through one channel, as the console lists it under the incident. */
export interface NotificationDeliveryItem {
  deliveryId: string;
  incidentId: string;
  level: number;
  channelId: string | null;
  channelKind: string | null;
  channelName: string | null;
  recipientName: string;
  /** The duty role the recipient was picked for (null: a named user or a group). */
  dutyRole: string | null;
  status: 'pending' | 'retrying' | 'sent' | 'failed' | 'cancelled' | 'suppressed' | 'no_recipient';
  attempts: number;
  /** The provider's answer code (WeCom/DingTalk errcode, Feishu code, HTTP status), or the network error. */
  providerCode: string | null;
  sentAt: string | null;
  updatedAt: string;
}

/** A drill window as the API lists it and the console shows it. */
export interface DrillWindowItem {
  id: string;
  schoolId: string;
  schoolName: string;
  startsAt: string;
  endsAt: string;
  note: string;
  /** pending: requested by the school, marks nothing until approved. */
  status: 'pending' | 'approved';
  createdBy: string;
  approvedBy: string | null;
  approvedAt: string | null;
  endedBy: string | null;
  endedAt: string | null;
}
export type DrillWindowChange = 'created' | 'requested' | 'approved' | 'ended' | 'deleted';

/** One finding as listed in a patrol event. */
export interface PatrolFindingItem {
  findingId: string;
  check: string;
  message: string;
  subjectLabel: string;
  taskId: string | null;
}

/** Event types delivered to their school's room only, never to the district room or district replays. */
export const SCHOOL_ONLY_EVENTS: readonly ConsoleEventType[] = ['patrol.school_findings'];

export type ConsoleEventType = keyof ConsoleEventMap;

/** A camera covering an incident's spot, as the console shows it (no second request needed). */
export interface IncidentCamera {
  id: string;
  name: string;
  location: string;
  areaKind: string;
  streamUrl: string;
  status: string;
}

/** Everything the console needs to render an incident (src/modules/alarms builds it). */
export type IncidentSummary = {
  incidentId: string;
  /** null: an unplaced device alarm (a GB/T 28181 channel of no known school; location names device and channel), district only. */
  schoolId: string | null;
  schoolName: string;
  zoneId: string | null;
  type: string;
  priority: 'P1' | 'P2' | 'P3' | 'P4';
  source: 'device' | 'staff' | 'operator';
  status: string;
  location: string;
  areaKind: string | null;
  note: string;
  alarmDeviceId: string | null;
  cameraId: string | null;
  pressCount: number;
  firstPressAt: string;
  lastPressAt: string;
  drill: boolean;
  outcome: string | null;
  cameras: IncidentCamera[];
  raisedBy: string;
  /** The user who raised it (null: a device, or the system); a school's staff may cancel only their own. */
  raisedById: string | null;
  acknowledgedBy: { id: string | null; name: string; at: string } | null;
  escalationLevel: number;
  relay: { required: boolean; deliveredAt: string | null; attempts: number; late: boolean };
  /** Where the phone that raised it was (the guard allowed it): WGS-84 degrees and the phone's accuracy in metres; null when not sent. */
  reporterPosition: ReporterPosition | null;
};

/** A phone's position at an alarm (navigator.geolocation: WGS-84). */
export interface ReporterPosition {
  latitude: number;
  longitude: number;
  accuracyM: number;
}

/**
 * An event to append: a union over the catalogue keyed by `type`, so each type takes exactly its
 * own payload (a payload of another type, or a misspelled field, does not compile; see
 * test/unit/console-events.types.spec.ts). `ConsoleEventInput<'a' | 'b'>` narrows it to some types.
 */
export type ConsoleEventInput<T extends ConsoleEventType = ConsoleEventType> = {
  [K in T]: {
    type: K;
    /** The school the event concerns (its staff see it too); null = district only. */
    schoolId: string | null;
    payload: ConsoleEventMap[K];
  };
}[T];

/** An event as stored and as sent to clients. */
export type ConsoleEvent<T extends ConsoleEventType = ConsoleEventType> = ConsoleEventInput<T> & {
  seq: number;
  v: number;
  at: string;
  /** Delivered after later seqs: its transaction held it past console.gapMaxWaitMs. Take it once even though its seq is below the last seen. */
  late?: true;
};

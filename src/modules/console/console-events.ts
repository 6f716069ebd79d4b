/**
 * The catalogue of console events: what operators' consoles receive. Type names and the
 * version are stored with every event (console_events table) and sent to clients: never
 * rename one in place; add a new type or bump `v`.
 */
export const CONSOLE_EVENT_VERSION = 1;

export interface ConsoleEventMap {
  /** A new incident (alarm) was committed. */
  'incident.raised': { incidentId: string; schoolId: string; [k: string]: unknown };
  /** An incident changed state (acknowledged, dispatched, on scene, resolved, cancelled, note…). */
  'incident.updated': { incidentId: string; schoolId: string; status: string; [k: string]: unknown };
  /** An unacknowledged incident reached an escalation level. */
  'incident.escalated': { incidentId: string; schoolId: string; level: number; [k: string]: unknown };
  /** Delivery of an incident to the police endpoint is late. */
  'incident.relay_late': { incidentId: string; schoolId: string; [k: string]: unknown };
  /** Device status transitions found by one liveness sweep, batched (never one event per device). */
  'device.status_batch': { changes: { deviceId: string; kind: string; schoolId: string; from: string; to: string; at: string }[]; [k: string]: unknown };
  /** A school's "devices offline" outage incident opened, changed or closed. */
  'device.outage': { schoolId: string; outageId: string; status: 'open' | 'closed'; offline: number; [k: string]: unknown };
  /** Devices started flapping (bounced more than liveness.flapCount times in flapWindowMinutes): reported once per episode. */
  'device.flapping': { schoolId: string; devices: { deviceId: string; kind: string; bounces: number }[]; [k: string]: unknown };
  /** A patrol audit or video patrol round produced a finding. */
  'patrol.finding': { findingId: string; schoolId: string; check: string; [k: string]: unknown };
}

export type ConsoleEventType = keyof ConsoleEventMap;

export interface ConsoleEventInput<T extends ConsoleEventType = ConsoleEventType> {
  type: T;
  /** The school the event concerns (its staff see it too); null = district only. */
  schoolId: string | null;
  payload: ConsoleEventMap[T];
}

/** An event as stored and as sent to clients. */
export interface ConsoleEvent<T extends ConsoleEventType = ConsoleEventType> extends ConsoleEventInput<T> {
  seq: number;
  v: number;
  at: string;
}

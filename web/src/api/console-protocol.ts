import type { components } from '@/shared/api-schema';
import type { ConsoleEvent, ConsoleEventType, IncidentView } from '@/shared/server';
import type { DeviceSummary } from './responses';

/**
 * The console socket's protocol (namespace /console, src/modules/console/console.gateway.ts).
 * Events are the shared catalogue's; the envelopes around them (snapshot, live, action answers)
 * are not in the catalogue yet and are written here from the gateway's code.
 */

/** Any catalogue event, discriminated by `type` (narrowing `type` narrows `payload`). */
export type AnyConsoleEvent = { [K in ConsoleEventType]: ConsoleEvent<K> }[ConsoleEventType];

/** What a console starts from when it cannot replay (gateway `snapshot`). */
export interface Snapshot {
  v: number;
  /** The event seq the snapshot stands for: events after it follow. */
  seq: number;
  at: string;
  /** The newest open incidents, at most console.snapshotMaxIncidents of them. */
  incidents: IncidentView[];
  /** All open incidents the user may see. */
  incidentsTotal: number;
  devices: DeviceSummary;
}

export interface ActionError {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}
export type ActionAnswer = { ok: true; incident: IncidentView } | { ok: false; error: ActionError };

type Schemas = components['schemas'];
type WithId<T> = T & { id: string };
/** Operator actions over the socket: the REST routes' DTOs plus the incident id. */
export interface ActionPayloads {
  'incident:acknowledge': WithId<Schemas['OptionalNoteDto']>;
  'incident:dispatch': WithId<Schemas['OptionalNoteDto']>;
  'incident:on_scene': WithId<Schemas['OptionalNoteDto']>;
  'incident:resolve': WithId<Schemas['ResolveDto']>;
  'incident:note': WithId<Schemas['NoteDto']>;
  'incident:cancel': WithId<Schemas['CancelDto']>;
}
export type ActionName = keyof ActionPayloads;

/**
 * The degraded-state banner (gateway `system_state`, src/modules/console/console-state.ts): sent on
 * connect and on every change.
 */
export interface SystemState {
  v: number;
  redis: 'ok' | 'down';
  database: 'ok' | 'down';
  /** Alarm jobs overdue by more than ops.queueBehindSeconds. */
  queueBehind: number;
  /** Alarms the police endpoint has not taken after a failed attempt (0 for school staff). */
  policeRelayFailing: number;
  at: string;
}

export interface ServerToClientEvents {
  system_state: (s: SystemState) => void;
  session: (s: { v: number; user: { id: string; username: string; role: string; schoolId: string | null }; tokenExpiresAt: string }) => void;
  snapshot: (s: Snapshot) => void;
  event: (e: AnyConsoleEvent) => void;
  /** Caught up: every event of this console's scope up to `seq` was sent, except `watched` (held; may follow flagged late). */
  live: (l: { seq: number; watched?: number[] }) => void;
  /** The same, while live (at most every console.throughMs): the other schools' seqs are not gaps. */
  through: (t: { seq: number; watched: number[] }) => void;
  auth_expired: (e: { code: string; message: string }) => void;
  resync_failed: (e: { code: string; message: string }) => void;
}

export type ClientToServerEvents = {
  resume: (p: { lastSeq: number }) => void;
  reauth: (p: { token: string }, ack: (a: { ok: true; tokenExpiresAt: string } | { ok: false; error: ActionError }) => void) => void;
} & { [A in ActionName]: (p: ActionPayloads[A], ack: (a: ActionAnswer) => void) => void };

/** Values stored in the database (incidents table): never rename one without a migration. */
export const INCIDENT_TYPES = ['intrusion', 'violence', 'medical', 'fire', 'video_alarm', 'tamper', 'device_fault', 'other'] as const;
export type IncidentType = (typeof INCIDENT_TYPES)[number];
/** Types school staff and operators pick from; the others come from devices. */
export const MANUAL_TYPES = ['intrusion', 'violence', 'medical', 'fire', 'other'] as const;
export const DEVICE_REPORT_TYPES = ['video_alarm', 'tamper', 'device_fault', 'intrusion', 'fire', 'other'] as const;

export const PRIORITIES = ['P1', 'P2', 'P3', 'P4'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const SOURCES = ['device', 'staff', 'operator'] as const;
export type IncidentSource = (typeof SOURCES)[number];

export const STATUSES = ['raised', 'acknowledged', 'dispatched', 'on_scene', 'resolved', 'cancelled'] as const;
export type IncidentStatus = (typeof STATUSES)[number];
export const OPEN_STATUSES: IncidentStatus[] = ['raised', 'acknowledged', 'dispatched', 'on_scene'];

export const OUTCOMES = ['genuine', 'false_alarm', 'drill', 'test'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface AlarmsConfig {
  escalationSeconds: Record<Priority, number[]>;
  priorityByType: Record<IncidentType, Priority>;
  devicePressPriority: Priority;
  relayPriorities: Priority[];
  policeRelay: { url: string; hmacSecret: string; timeoutMs: number; attempts: number; backoffMs: number; lateAfterSeconds: number };
  outbox: { pollMs: number; redispatchAfterMs: number; batchSize: number };
}

/** Deterministic BullMQ job ids (BullMQ forbids ':' in custom ids, hence '-'). */
export const jobIds = {
  escalation: (incidentId: string, level: number) => `esc-${incidentId}-${level}`,
  relay: (incidentId: string) => `relay-${incidentId}`,
  relayWatch: (incidentId: string) => `relaywatch-${incidentId}`,
};

/**
 * Incident types and priorities are declared with the config that maps one to the other
 * (alarms.priorityByType, alarms.escalationSeconds). Stored in the database (incidents table):
 * never rename one without a migration.
 */
export { INCIDENT_TYPES, PRIORITIES, type IncidentType, type Priority } from '../../config/sections';
/** Types school staff and operators pick from; the others come from devices. */
export const MANUAL_TYPES = ['intrusion', 'violence', 'medical', 'fire', 'other'] as const;
export const DEVICE_REPORT_TYPES = ['video_alarm', 'tamper', 'device_fault', 'intrusion', 'fire', 'other'] as const;

export const SOURCES = ['device', 'staff', 'operator'] as const;
export type IncidentSource = (typeof SOURCES)[number];

export const STATUSES = ['raised', 'acknowledged', 'dispatched', 'on_scene', 'resolved', 'cancelled'] as const;
export type IncidentStatus = (typeof STATUSES)[number];
export const OPEN_STATUSES: IncidentStatus[] = ['raised', 'acknowledged', 'dispatched', 'on_scene'];

export const OUTCOMES = ['genuine', 'false_alarm', 'drill', 'test'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Deterministic BullMQ job ids (BullMQ forbids ':' in custom ids, hence '-'). */
export const jobIds = {
  escalation: (incidentId: string, level: number) => `esc-${incidentId}-${level}`,
  relay: (incidentId: string) => `relay-${incidentId}`,
  relayWatch: (incidentId: string) => `relaywatch-${incidentId}`,
  /** The escalation handed to the notifications (JobName.NotifyEscalation). */
  notice: (incidentId: string, level: number) => `notice-${incidentId}-${level}`,
};

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

/** pending: requested by school staff, marks nothing until a control-center user approves it. */
export const DRILL_WINDOW_STATUSES = ['pending', 'approved'] as const;

export const OUTCOMES = ['genuine', 'false_alarm', 'drill', 'test'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Deterministic BullMQ job ids (BullMQ forbids ':' in custom ids, hence '-'). */
export const jobIds = {
  escalation: (incidentId: string, level: number) => `esc-${incidentId}-${level}`,
  relay: (incidentId: string, real = false) => `relay-${incidentId}${real ? '-real' : ''}`,
  relayWatch: (incidentId: string, real = false) => `relaywatch-${incidentId}${real ? '-real' : ''}`,
  /** Escalation timers of a drill turned real (the drill's own timers did nothing). */
  realEscalation: (incidentId: string, level: number) => `esc-${incidentId}-${level}-real`,
  /** The escalation handed to the notifications (JobName.NotifyEscalation). */
  notice: (incidentId: string, level: number) => `notice-${incidentId}-${level}`,
  /** Evidence pictures of the linked cameras at the round-th offset of alarms.evidenceSnapshotSeconds (JobName.VideoIncidentEvidence). */
  evidence: (incidentId: string, round: number) => `evidence-${incidentId}-${round}`,
};

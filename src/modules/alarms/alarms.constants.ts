/**
 * Incident types and priorities are declared with the config that maps one to the other
 * (alarms.priorityByType, alarms.escalationSeconds). Stored in the database (incidents table):
 * never rename one without a migration.
 */
export { INCIDENT_TYPES, PRIORITIES, type IncidentType, type Priority } from '../../config/sections';
import type { IncidentType } from '../../config/sections';
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
/**
 * Outcomes after which an alarm relayed to the police is withdrawn there: everything but a genuine one.
 * `drill` included: a real alarm found to be a drill afterwards was relayed as live, and the police
 * must not keep holding it as one (attack note: a drill outcome withdrew nothing).
 */
export const WITHDRAWN_OUTCOMES: Outcome[] = ['false_alarm', 'drill', 'test'];

/** A complete code → name table, looked up by any string a row holds (an unknown code: undefined). */
const labels = <K extends string>(m: Record<K, string>): Readonly<Record<string, string | undefined>> => m;

/** zh-CN names in messages and exports (the console has its own, in both languages). */
export const INCIDENT_TYPE_LABEL = labels<IncidentType>({
  intrusion: '入侵',
  violence: '暴力事件',
  medical: '急救',
  fire: '火情',
  video_alarm: '视频告警',
  tamper: '设备破坏',
  device_fault: '设备故障',
  other: '其他',
});
export const STATUS_LABEL = labels<IncidentStatus>({
  raised: '待确认',
  acknowledged: '已确认',
  dispatched: '已派警',
  on_scene: '已到场',
  resolved: '已处置',
  cancelled: '已撤销',
});
export const OUTCOME_LABEL = labels<Outcome>({ genuine: '真实警情', false_alarm: '误报', drill: '演练', test: '测试' });

/** Deterministic BullMQ job ids (BullMQ forbids ':' in custom ids, hence '-'). */
export const jobIds = {
  escalation: (incidentId: string, level: number) => `esc-${incidentId}-${level}`,
  relay: (incidentId: string, real = false) => `relay-${incidentId}${real ? '-real' : ''}`,
  relayWatch: (incidentId: string, real = false) => `relaywatch-${incidentId}${real ? '-real' : ''}`,
  /** The withdrawal sent to the police after a relayed alarm is cancelled or resolved as false/test (JobName.AlarmPoliceWithdraw). */
  withdraw: (incidentId: string) => `withdraw-${incidentId}`,
  /** Escalation timers of a drill turned real (the drill's own timers did nothing). */
  realEscalation: (incidentId: string, level: number) => `esc-${incidentId}-${level}-real`,
  /** The timers of a folded press that raised the incident's priority (counted from that press). */
  raisedEscalation: (incidentId: string, level: number, priority: string) => `esc-${incidentId}-${level}-${priority}`,
  /** The escalation handed to the notifications (JobName.NotifyEscalation). */
  notice: (incidentId: string, level: number) => `notice-${incidentId}-${level}`,
  /** Evidence pictures of the linked cameras at the round-th offset of alarms.evidenceSnapshotSeconds (JobName.VideoIncidentEvidence). */
  evidence: (incidentId: string, round: number) => `evidence-${incidentId}-${round}`,
};

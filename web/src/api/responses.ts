import type { Role } from '@/domain';
import type { IncidentView, NotificationDeliveryItem } from '@/shared/server';

/**
 * Response bodies of the routes the console calls. The OpenAPI document has no response schemas
 * yet (every route answers `200: description ""`), so these are written by hand from the
 * server's code, or taken from the server's own types where they are importable (IncidentView). When the routes declare
 * their responses, replace each with the generated type (see api/http.ts `ResponseTypes`).
 */

/** POST /auth/login, /auth/refresh (src/modules/auth/auth.service.ts `issue`). */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  tokenType: 'Bearer';
  user: Me;
}

/** A camera of a video patrol round (src/modules/patrols/rounds.service.ts `round`). */
export interface PatrolRoundItem {
  cameraId: string;
  schoolId: string;
  position: number;
  favoured: boolean;
  verdict: string | null;
  note: string;
  /** The evidence picture the verdict was made on (POST /cameras/{id}/evidence id), when one could be taken. */
  snapshotRef: string | null;
  verdictAt: string | null;
  findingId: string | null;
  camera: { name: string; location: string; areaKind: string; streamUrl: string; status: string } | null;
}

/** GET/POST /patrol-rounds(/{id}). */
export interface PatrolRound {
  id: string;
  operatorId: string;
  operatorName: string;
  size: number;
  startedAt: string;
  finishedAt: string | null;
  items: PatrolRoundItem[];
}

/** POST /cameras/{id}/evidence (src/modules/video/evidence.service.ts EvidenceRecord). */
export interface EvidenceItem {
  id: string;
  cameraId: string;
  sha256: string;
  width: number;
  height: number;
  purpose: string;
  refId: string | null;
  capturedAt: string;
}

/** GET /auth/me. */
export interface Me {
  id: string;
  username: string;
  displayName: string | null;
  role: Role;
  schoolId: string | null;
}

/** An incident as the REST routes and socket actions answer it: the server's own type. */
export type { IncidentView };

export interface TimelineEntry {
  at: string;
  actorType: 'user' | 'device' | 'system';
  actorId: string | null;
  /** The actor's display name (their username when they have none). */
  actorName: string;
  action: string;
  note: string;
  data: Record<string, unknown> | null;
}

/** GET /incidents/{id}. */
export type IncidentDetail = IncidentView & { timeline: TimelineEntry[] };

/** GET /schools items (src/modules/registry/entities/school.entity.ts): the fields the console uses. */
export interface SchoolItem {
  id: string;
  code: string;
  name: string;
  zoneId: string | null;
  address: string;
  securityChiefName: string;
  securityChiefPhone: string;
  principalName: string;
  principalPhone: string;
  policeStationName: string;
  policeStationPhone: string;
}

/** GET /guards items (src/modules/registry/entities/guard.entity.ts). */
export interface GuardItem {
  id: string;
  schoolId: string;
  name: string;
  phone: string;
  fullTime: boolean;
  active: boolean;
}

/** GET /protection-posts items (registry view: never the post's QR token). */
export interface ProtectionPostItem {
  id: string;
  code: string;
  schoolId: string;
  gate: string;
  windows: { kind: string; start?: string; end?: string }[];
  requiredHeadcount: number;
  gateCameraId: string | null;
}

/** GET /protection-posts/{id}/qr (src/modules/patrols/field.service.ts postQr): the signed code of the current window. */
export interface PostQr {
  postId: string;
  postCode: string;
  schoolId: string;
  gate: string;
  payload: string;
  validFrom: string;
  validUntil: string;
  nextAt: string;
  windowMinutes: number;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface DeviceCounts {
  online: number;
  offline: number;
  unknown: number;
  fault: number;
  total: number;
  /** 0–1, null without devices. */
  onlineRate: number | null;
}

/** GET /device-health/summary (device-health.queries.ts `summary`); also the snapshot's `devices`. */
export interface DeviceSummary {
  totals: DeviceCounts;
  openOutages: number;
  /** Maintenance windows in force (the first 20) and the devices offline under them: maintenance, not outages. */
  maintenance?: { windows: MaintenanceWindow[]; windowsTotal: number; devicesOffline: number };
  zones: (DeviceCounts & { zoneId: string | null })[];
  schools: Page<DeviceCounts & { schoolId: string; name: string; zoneId: string | null }>;
}

/** GET /device-health/devices items (device-health.queries.ts `devices`). */
export interface DeviceStatusItem {
  id: string;
  kind: 'camera' | 'alarm_device';
  schoolId: string;
  name: string;
  status: 'online' | 'offline' | 'unknown' | 'fault';
  /** Last sign of life the registry holds (null: never seen). */
  lastSeenAt: string | null;
  lastHeartbeatAt: string | null;
  keepaliveSeconds: number | null;
  /** Offline inside a maintenance window (not a fault). */
  maintenance?: boolean;
}

/** A patrol plan (src/modules/patrols/audits.service.ts PLAN_COLS): a scheduled audit of some schools. */
export interface PatrolPlan {
  id: string;
  name: string;
  /** Asia/Shanghai, 5 fields (or 6 with seconds). */
  cron: string;
  scope: { kind: 'district' | 'zone' | 'group' | 'schools'; ids?: string[] };
  checks: string[];
  enabled: boolean;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A zone or group of the registry (the fields the plan form uses). */
export interface RegistryUnit {
  id: string;
  name: string;
  code: string;
}

/** A maintenance window (维护时段; src/modules/device-health/maintenance-windows.service.ts `MaintenanceWindowView`). */
export interface MaintenanceWindow {
  id: string;
  schoolId: string | null;
  deviceId: string | null;
  deviceKind: 'camera' | 'alarm_device' | null;
  startsAt: string;
  endsAt: string;
  reason: string;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  endedEarlyAt: string | null;
  endedBy: string | null;
  status: 'upcoming' | 'active' | 'ended';
}

/** GET /device-health/outages items (device-health.queries.ts `outageDto`). */
export interface OutageItem {
  id: string;
  schoolId: string;
  status: 'open' | 'closed';
  openedAt: string;
  closedAt: string | null;
  offline: number;
  peak: number;
  affected: number;
  overdue: boolean;
  overdueAt: string | null;
}

/** One row of GET /incidents/stats (incident-queries.service.ts `stats`): durations in ms from the first press, null without data. */
export interface StatsRow {
  schoolId: string | null;
  schoolName: string | null;
  zoneId: string | null;
  day: string | null;
  count: number;
  closed: number;
  falseAlarms: number;
  toConsoleP50: number | null;
  toConsoleP90: number | null;
  toAcknowledgedP50: number | null;
  toAcknowledgedP90: number | null;
  toRelayedP50: number | null;
  toRelayedP90: number | null;
  toOnSceneP50: number | null;
  toOnSceneP90: number | null;
  toResolvedP50: number | null;
  toResolvedP90: number | null;
}

/** GET /incidents/stats. */
export interface IncidentStats {
  from: string;
  to: string;
  unit: 'ms';
  bySchool: StatsRow[];
  byZone: StatsRow[];
  byDay: StatsRow[];
}

/** GET /compliance/trend (compliance.service.ts `trend`): shares 0–1 of schools meeting each target, null without schools. */
export interface ComplianceTrend {
  from: string;
  to: string;
  days: { date: string; schools: number; shares: Record<'closedCampus' | 'guards' | 'networked' | 'posts' | 'allMet', number | null> }[];
}

/** GET /audit-log items (audit-entry.entity.ts). */
export interface AuditEntryItem {
  id: string;
  at: string;
  actorType: string;
  actorId: string | null;
  actorName: string;
  action: string;
  entity: string;
  entityId: string | null;
  schoolId: string | null;
}

/** GET/POST /handovers (src/modules/alarms/handovers.service.ts HandoverView). */
export interface HandoverView {
  id: string;
  fromUserId: string;
  fromName: string;
  shiftFrom: string;
  at: string;
  note: string;
  summary: {
    open: number;
    unacknowledged: number;
    oldestOpen: { id: string; schoolName: string; location: string; type: string; priority: string; status: string; firstPressAt: string }[];
    raised: number;
    resolved: number;
    falseAlarms: number;
    cancelled: number;
    escalations: number;
    notes: number;
    latestNotes: { incidentId: string; at: string; actorName: string; note: string }[];
  };
  acknowledgedBy: { id: string; name: string; at: string } | null;
}

/** Duty roles of the roster (src/config/sections.ts DUTY_ROLES). */
export type DutyRole = 'operator_desk' | 'duty_supervisor' | 'bureau_leader';

/** A duty shift (src/modules/notifications/roster.service.ts ShiftView). */
export interface DutyShift {
  id: string;
  dutyRole: DutyRole;
  userId: string;
  userName: string;
  phone: string | null;
  startsAt: string;
  endsAt: string;
  note: string;
  handedOverFromId: string | null;
}

/** GET /duty/now. */
export interface DutyNow {
  at: string;
  onDuty: Record<DutyRole, DutyShift[]>;
  gaps: { dutyRole: DutyRole; from: string; to: string | null }[];
}

/** A notification channel (channels.service.ts ChannelView). */
export interface NotificationChannel {
  id: string;
  kind: 'wecom' | 'dingtalk' | 'feishu' | 'sms';
  name: string;
  webhookUrl: string;
  hasSecret: boolean;
  enabled: boolean;
  silencedUntil: string | null;
  silenceReason: string | null;
  failingSince: string | null;
  lastError: string | null;
  state: 'disabled' | 'silenced' | 'failing' | 'ok';
}

/** One message about an incident (deliveries.service.ts DeliveryView). */
export type NotificationDelivery = NotificationDeliveryItem & { address: string | null; lastError: string | null; dueAt: string };

/** POST /cameras/{id}/stream (src/modules/video/video.service.ts `PlayTicket`): the player opens `url` (a WebSocket) before `expiresAt`. */
export interface PlayTicket {
  cameraId: string;
  token: string;
  expiresAt: string;
  url: string;
  codec: string;
  width: number;
  height: number;
  transcoded: boolean;
}

/** GET /cameras/{id} and /cameras items (registry resources.ts CAMERAS view). */
export interface CameraItem {
  id: string;
  schoolId: string;
  /** The GB/T 28181 device id (20 digits) for GB cameras. */
  deviceId: string;
  channelId: string;
  name: string;
  location: string;
  areaKind: string;
  status: string;
  lastSeenAt: string | null;
}

/** GET /gb28181/devices/{deviceId} (gb28181.controller.ts `device`): one device as the device panel shows it. */
export interface GbDeviceView {
  deviceId: string;
  schoolId: string | null;
  name: string | null;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  transport: string | null;
  registered: boolean;
  registeredAt: string | null;
  expiresAt: string | null;
  lastKeepaliveAt: string | null;
  channels: number;
  heartbeatInterval: number | null;
  heartbeatCount: number | null;
  offlineAfterSeconds: number | null;
}

/** GET /gb28181/devices/{deviceId}/status (gb-commands.ts `DeviceStatusResult`). */
export interface GbDeviceStatus {
  deviceId: string;
  targetId: string;
  sn: number;
  online: 'ONLINE' | 'OFFLINE' | null;
  status: 'OK' | 'ERROR' | null;
  reason: string | null;
  encode: 'ON' | 'OFF' | null;
  record: 'ON' | 'OFF' | null;
  deviceTime: string | null;
  alarmStatus: { deviceId: string; dutyStatus: 'ONDUTY' | 'OFFDUTY' | 'ALARM' | null }[];
}

/** A DeviceControl's answer (gb-commands.ts `control`): OK, or SENT for a reboot (the device answers nothing else). */
export interface GbControlResult {
  deviceId: string;
  targetId: string;
  result: 'OK' | 'SENT';
  sn: number;
}

/** GET /gb28181/devices/{deviceId}/channels/{channelId}/records (gb-commands.ts `RecordInfoResult`). */
export interface GbRecordInfo {
  deviceId: string;
  channelId: string;
  sumNum: number;
  complete: boolean;
  items: { deviceId: string; name: string; filePath: string; address: string; startTime: string | null; endTime: string | null; type: string }[];
  omitted: number;
}

/** POST /incidents: the incident, and whether this request made it (201) or an earlier try did (200, a retry with the same Idempotency-Key). */
export type RaisedIncident = IncidentView & { created: boolean; folded: boolean };

/** POST /post-checkins (src/modules/patrols/field.service.ts `checkIn`). */
export interface PostCheckin {
  id: string;
  postId: string;
  schoolId: string;
  personName: string;
  personRole: string;
  checkedInAt: string;
  checkedOutAt: string | null;
  postCode?: string;
  gate?: string;
  /** The post's gate camera at check-in (null: the post has none). */
  cameraId?: string | null;
  /** The gate camera's picture of the moment: none (no camera), pending, taken (evidenceId), failed (evidenceError: a video error code). */
  evidenceStatus?: 'none' | 'pending' | 'taken' | 'failed';
  evidenceId?: string | null;
  evidenceError?: string | null;
}

/** POST /guard-patrols (field.service.ts `recordGuardPatrol`). */
export interface GuardPatrol {
  id: string;
  schoolId: string;
  guardName: string;
  route: string;
  note: string;
  at: string;
}

/** A rectification task (findings.service.ts TASK_COLS; `title` is the server's zh-CN text). */
export interface RectificationTask {
  id: string;
  schoolId: string;
  check: string;
  title: string;
  status: 'open' | 'closed';
  deadline: string;
  findingCount: number;
  closedAt: string | null;
  closeNote: string | null;
  evidenceRef: string | null;
  createdAt: string;
}

/** GET /patrol-findings items (src/modules/patrols/findings.service.ts FINDING_COLS). */
export interface FindingItem {
  id: string;
  source: string;
  check: string;
  schoolId: string;
  subjectKind: string;
  subjectId: string | null;
  subjectLabel: string;
  message: string;
  runId: string | null;
  taskId: string | null;
  at: string;
}

/** Why a school fails a target (src/modules/compliance/compliance.service.ts `compute`). */
export interface ComplianceReasons {
  closedCampus?: { gates: { gate: string; at: string; source: string }[]; count: number };
  guards?: { required: number; actual: number; short: number };
  networked?: {
    cameras: number;
    buttons: number;
    offlineCameraCount: number;
    offlineButtons: { id: string; name: string }[];
    notPoliceLinked: { id: string; name: string }[];
    noAlarmButton?: boolean;
    noCamera?: boolean;
  };
  posts?: { windows: { post: string; gate: string; window: string; start: string; required: number; present: number }[] };
}

/** One school's day against the four targets (GET /compliance/schools items). */
export interface SchoolCompliance {
  date: string;
  schoolId: string;
  schoolName: string;
  schoolDay: boolean;
  closedCampus: boolean;
  guards: boolean;
  networked: boolean;
  posts: boolean;
  allMet: boolean;
  failedCount: number;
  reasons: ComplianceReasons;
}

/** An alarm button as the registry lists it (src/modules/registry/resources.ts ALARM_DEVICES view, the fields the guard app reads). */
export interface AlarmButton {
  id: string;
  code: string;
  schoolId: string;
  location: string;
  status: string;
  policeLinked: boolean;
  lastTestAt: string | null;
  lastTestByName: string | null;
  /** Presses before this time are test presses (a guard's test mode); null: off. */
  testModeUntil: string | null;
}

/** POST/DELETE /alarm-buttons/{id}/test-mode. */
export interface TestModeAnswer {
  alarmDeviceId: string;
  testModeUntil: string | null;
}

/** A recorded self-test of a button (src/modules/alarms/button-tests.service.ts ButtonTestView). */
export interface ButtonTest {
  id: string;
  alarmDeviceId: string;
  at: string;
  kind: 'device_flag' | 'test_mode' | 'outcome';
  by: string;
  policeLinked: boolean;
  relay: { required: boolean; deliveredAt: string | null; attempts: number };
}

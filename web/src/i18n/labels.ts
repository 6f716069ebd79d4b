import { INCIDENT_TYPES, isOneOf, OUTCOMES, PRIORITIES, ROLES, STATUSES } from '@/domain';
import type { MessageKey } from './zh-CN';

/**
 * Message keys for codes the server sends (status, type, role…). A code the dictionaries do not
 * know yet maps to a generic label, never to a raw key. The template-literal types make the
 * compiler check that every listed code has a key.
 */
export const statusKey = (s: string): MessageKey => (isOneOf(STATUSES, s) ? `status.${s}` : 'timeline.other');
export const typeKey = (s: string): MessageKey => (isOneOf(INCIDENT_TYPES, s) ? `type.${s}` : 'type.other');
export const outcomeKey = (s: string): MessageKey | null => (isOneOf(OUTCOMES, s) ? `outcome.${s}` : null);
export const priorityKey = (s: string): MessageKey => (isOneOf(PRIORITIES, s) ? `priority.${s}` : 'priority.P4');
export const roleKey = (s: string): MessageKey | null => (isOneOf(ROLES, s) ? `role.${s}` : null);

const SOURCES = ['device', 'staff', 'operator'] as const;
export const sourceKey = (s: string): MessageKey | null => (isOneOf(SOURCES, s) ? `source.${s}` : null);

const TIMELINE = [
  'raised',
  'made_real',
  'press',
  'acknowledge',
  'dispatch',
  'on_scene',
  'resolve',
  'cancel',
  'note',
  'escalated',
  'relayed',
  'relay_late',
  'relay_withdrawn',
  'notified',
  'notify_failed',
  'notify_skipped',
  'notify_planned',
  'notify_cancelled',
  'evidence',
  'evidence_failed',
  'photo',
] as const;
const AUDIT_ACTIONS = [
  'create',
  'update',
  'delete',
  'seed_create',
  'import_create',
  'import_update',
  'login',
  'login_failed',
  'logout',
  'refresh_reuse',
  'revoke',
  'raise',
  'acknowledge',
  'dispatch',
  'on_scene',
  'resolve',
  'cancel',
  'note',
  'make_real',
  'priority_raised',
  'attach_photo',
  'close',
  'reopen',
  'check_in',
  'check_out',
  'verify',
  'handover',
  'take_over',
  'silence',
  'unsilence',
  'test_mode_start',
  'test_mode_end',
  'snapshot',
  'queue_board',
  'end',
  'run',
] as const;
/** An audit entry's action by name (null: a code not listed yet, shown as it is). */
export const auditActionKey = (s: string, entity?: string): MessageKey | null =>
  // One action code, two things: an alarm's scene photo and a rectification task's photo (整改照片).
  s === 'attach_photo' && entity === 'rectification_task' ? 'auditAction.attach_photo_task' : isOneOf(AUDIT_ACTIONS, s) ? `auditAction.${s}` : null;
const AUDIT_ENTITIES = [
  'user',
  'device_credential',
  'district',
  'zone',
  'group',
  'school',
  'camera',
  'alarm_device',
  'guard',
  'protection_post',
  'incident',
  'drill_window',
  'patrol_plan',
  'patrol_round',
  'rectification_task',
  'post_checkin',
  'guard_patrol',
  'gate_event',
  'maintenance_window',
  'duty_shift',
  'shift_handover',
  'notification_channel',
  'escalation_policy',
  'compliance_daily',
  'gb_device',
  'gb_cascade',
  'camera_media_settings',
  'queue',
] as const;
export const auditEntityKey = (s: string): MessageKey | null => (isOneOf(AUDIT_ENTITIES, s) ? `auditEntity.${s}` : null);

export const timelineKey = (s: string): MessageKey => (isOneOf(TIMELINE, s) ? `timeline.${s}` : 'timeline.other');

/** Where an evidence picture came from (the evidence record's `source`, video_evidence.source). */
const EVIDENCE_SOURCES = ['snapshot_uri', 'stream', 'upload', 'unknown'] as const;
export const evidenceSourceKey = (s: string | null | undefined): MessageKey => (isOneOf(EVIDENCE_SOURCES, s) ? `video.source.${s}` : 'video.source.unknown');
/** Its longer explanation (a tooltip). */
export const evidenceSourceTitleKey = (s: string | null | undefined): MessageKey =>
  isOneOf(EVIDENCE_SOURCES, s) ? `video.sourceTitle.${s}` : 'video.sourceTitle.unknown';

const PATROL_SOURCES = ['audit', 'round', 'post'] as const;
export const patrolSourceKey = (s: string | null | undefined): MessageKey => (isOneOf(PATROL_SOURCES, s) ? `patrol.source.${s}` : 'patrol.source.other');

const CHECKS = [
  'camera_online_rate',
  'alarm_button',
  'device_offline_24h',
  'guard_staffing',
  'gate_open',
  'guard_patrol_count',
  'post_unstaffed',
  'round_obstructed',
  'round_offline',
  'round_guard_absent',
  'round_crowding',
  'round_other',
] as const;
export const checkKey = (s: string): MessageKey => (isOneOf(CHECKS, s) ? `check.${s}` : 'check.other');

const DELIVERY_STATUSES = ['pending', 'retrying', 'sent', 'failed', 'cancelled', 'suppressed', 'no_recipient'] as const;
export const deliveryStatusKey = (s: string): MessageKey => (isOneOf(DELIVERY_STATUSES, s) ? `notify.status.${s}` : 'timeline.other');
const CHANNEL_KINDS = ['wecom', 'dingtalk', 'feishu', 'sms'] as const;
export const channelKindKey = (s: string | null): MessageKey => (isOneOf(CHANNEL_KINDS, s) ? `notify.channel.${s}` : 'notify.channel.none');
const DUTY_ROLES = ['operator_desk', 'duty_supervisor', 'bureau_leader'] as const;
export const dutyRoleKey = (s: string | null): MessageKey => (isOneOf(DUTY_ROLES, s) ? `duty.role.${s}` : 'timeline.other');
const NOT_COUNTED = ['user_deleted', 'user_disabled', 'user_role'] as const;
/** Why a shift does not count as cover (ShiftView.notCounted); an unknown reason still says it does not count. */
export const notCountedKey = (s: string): MessageKey => (isOneOf(NOT_COUNTED, s) ? `duty.notCounted.${s}` : 'duty.notCounted.other');

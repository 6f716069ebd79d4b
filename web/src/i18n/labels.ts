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
export const timelineKey = (s: string): MessageKey => (isOneOf(TIMELINE, s) ? `timeline.${s}` : 'timeline.other');

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

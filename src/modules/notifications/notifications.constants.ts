/**
 * Values stored in the notifications tables (duty_shifts, notification_channels,
 * notification_deliveries): never rename one without a migration.
 */
export { DUTY_ROLES, type DutyRole } from '../../config/sections';
import type { DutyRole } from '../../config/sections';

/** Outbound channels: WeCom group robot (企业微信群机器人), DingTalk robot (钉钉机器人), Feishu custom bot (飞书自定义机器人), an SMS / voice gateway. */
export const CHANNEL_KINDS = ['wecom', 'dingtalk', 'feishu', 'sms'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

export const DELIVERY_STATUSES = ['pending', 'retrying', 'sent', 'failed', 'cancelled', 'suppressed', 'no_recipient'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
/** A message in one of these is not finished: the reconciler queues it again when its job is lost. */
export const OPEN_DELIVERY: DeliveryStatus[] = ['pending', 'retrying'];

/** Chinese labels used in messages and timeline notes (the console translates codes itself). */
export const DUTY_ROLE_LABEL: Record<DutyRole, string> = {
  operator_desk: '值班员',
  duty_supervisor: '值班主管',
  bureau_leader: '带班领导',
};
export const CHANNEL_LABEL: Record<ChannelKind, string> = {
  wecom: '企业微信',
  dingtalk: '钉钉',
  feishu: '飞书',
  sms: '短信/语音',
};

/** Deterministic BullMQ job ids (no ':' allowed). */
export const notifyJobIds = {
  deliver: (deliveryId: string) => `ntf-${deliveryId}`,
  reconcile: 'notifications-reconcile',
  rosterCheck: 'notifications-roster-check',
};

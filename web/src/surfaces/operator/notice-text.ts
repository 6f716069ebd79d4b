import type { TimelineEntry } from '@/api/responses';
import type { useT } from '@/i18n';
import { channelKindKey, deliveryStatusKey, dutyRoleKey } from '@/i18n/labels';
import zhCN from '@/i18n/zh-CN';

type T = ReturnType<typeof useT>['t'];

/** Timeline entries of escalation notices in the page's language, from their data (the server's note is Chinese); null = not one. */
export function noticeText(t: T, e: TimelineEntry): string | null {
  const d = (e.data ?? {}) as Record<string, unknown>;
  const level = Number(d.level) || 1;
  if (e.action === 'notify_planned') return t('notify.planned', { level, n: Number(d.count) || 0 });
  if (e.action === 'notify_cancelled') return t('notify.cancelledEntry', { level });
  if (!['notified', 'notify_failed', 'notify_skipped'].includes(e.action) || typeof d.status !== 'string') return null;
  const via = d.channel ? `${t(channelKindKey(String(d.channel)))}「${String(d.channelName ?? '')}」` : '—';
  const code = d.providerCode ? ` · ${t('notify.code', { code: String(d.providerCode) })}` : '';
  return t('notify.entry', { level, recipient: recipientText(t, String(d.recipient ?? ''), d.dutyRole), via, status: t(deliveryStatusKey(d.status)) }) + code;
}

/** The server's Chinese duty-role names (notifications.constants DUTY_ROLE_LABEL = the zh-CN dictionary's duty.role) → role. */
const ZH_DUTY_ROLES = new Map<string, string>(Object.entries(zhCN.duty.role).map(([role, label]) => [label, role]));
const ROLE_SUFFIX = /^(.*)（([^（）]+)）$/;

/**
 * A notice's recipient in the page's language. The server stores it composed in Chinese (its
 * `recipient_name`, also on timeline entries already written): a duty role with nobody on duty
 * ('值班主管'), a person with the duty role they are notified as ('张主管（值班主管）'), a group
 * ('群：指挥中心群') or a deleted user / channel. The role part comes from the dictionary; names as
 * entered stay as they are. `dutyRole` (a delivery's) is used when given; anything else unknown is
 * shown as written.
 */
export function recipientText(t: T, name: string, dutyRole?: unknown): string {
  const role = (typeof dutyRole === 'string' && dutyRole) || ZH_DUTY_ROLES.get(name);
  if (role && (name === '' || ZH_DUTY_ROLES.has(name))) return t(dutyRoleKey(role));
  const m = ROLE_SUFFIX.exec(name);
  if (m && ZH_DUTY_ROLES.has(m[2])) return t('notify.personAs', { name: m[1] || '—', role: t(dutyRoleKey(ZH_DUTY_ROLES.get(m[2])!)) });
  if (name === '（已删除的用户）') return t('notify.deletedUser');
  if (name === '（已删除的渠道）') return t('notify.deletedChannel');
  if (name.startsWith('群：')) return t('notify.group', { name: name.slice(2) });
  return name;
}

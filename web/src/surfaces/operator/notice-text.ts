import type { TimelineEntry } from '@/api/responses';
import type { useT } from '@/i18n';
import { channelKindKey, deliveryStatusKey } from '@/i18n/labels';

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
  return t('notify.entry', { level, recipient: String(d.recipient ?? ''), via, status: t(deliveryStatusKey(d.status)) }) + code;
}

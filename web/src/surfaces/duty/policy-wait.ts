import type { Msg } from '@/i18n';
import { durationMsg } from '@/lib/format';

/** An escalation level's delay (alarms.escalationSeconds): whole minutes or hours as such ("2 分钟"), else minutes and seconds. */
export function waitMsg(s: number): Msg {
  if (s >= 3600 && s % 3600 === 0) return { key: 'ntf.policy.waitHours', params: { h: s / 3600 } };
  if (s >= 60 && s % 60 === 0 && s < 3600) return { key: 'ntf.policy.waitMinutes', params: { m: s / 60 } };
  return durationMsg(s * 1000);
}

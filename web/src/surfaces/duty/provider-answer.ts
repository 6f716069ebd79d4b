// Relative imports of types only, no '@/' alias and no DOM: test/unit/web-provider-answer.spec.ts loads this file under the api's tsconfig.
import type { MessageKey } from '../../i18n/zh-CN';

/** NotificationChannel['kind']; a ProviderAnswer's `ok` and `code` (api/responses.ts). */
type Kind = 'wecom' | 'dingtalk' | 'feishu' | 'sms';
type Answer = { ok: boolean; code: string };
type Reason = 'badKey' | 'badSign' | 'badMessage' | 'busy';

/**
 * What a provider's answer code means, per platform (the codes src/modules/notifications/providers.ts
 * reads, from the platforms' documentation): WeCom and DingTalk answer { errcode }, Feishu { code }.
 */
const CODES: Record<Kind, Record<string, Reason>> = {
  // https://developer.work.weixin.qq.com/document/path/91770 and its error code list
  wecom: { '93000': 'badKey', '40008': 'badMessage', '44004': 'badMessage', '40058': 'badMessage', '-1': 'busy', '45009': 'busy', '45033': 'busy' },
  // https://open.dingtalk.com/document/robots/customize-robot-security-settings (310000: sign, keyword or IP refused)
  dingtalk: { '300001': 'badKey', '310000': 'badSign', '40035': 'badMessage', '-1': 'busy', '130101': 'busy', '130102': 'busy' },
  // https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
  feishu: { '19001': 'badKey', '19021': 'badSign', '19024': 'badSign', '19002': 'badMessage', '9499': 'busy', '11232': 'busy', '11233': 'busy' },
  sms: {},
};

/** Codes of the sender itself (providers.ts sendOnce): no answer from the provider. */
const LOCAL: Record<string, MessageKey> = {
  TIMEOUT: 'ntf.answer.timeout',
  BLOCKED_ADDRESS: 'ntf.answer.blocked',
  UNRESOLVED: 'ntf.answer.unresolved',
  CONFIG: 'ntf.answer.config',
};

type T = (key: MessageKey, params?: Record<string, string | number>) => string;

/**
 * The answer of POST /notifications/channels/{id}/test in plain words, in the page's language (call it
 * while rendering, so a language switch applies): the provider's code explained; its raw code and
 * text are shown beside it, as data.
 */
export function answerText(t: T, kind: Kind, a: Answer): string {
  const provider = t(`ntf.provider.${kind}`);
  if (a.ok) return t('ntf.answer.ok', { provider });
  const r = reasonKey(kind, a.code);
  return t('ntf.answer.failed', { reason: t(r.key, { provider, status: r.status ?? '' }) });
}

/** Why it failed, as a message; its params name the provider and HTTP status. */
export function reasonKey(kind: Kind, code: string): { key: MessageKey; status?: number } {
  if (LOCAL[code]) return { key: LOCAL[code] };
  const http = /^HTTP (\d{3})$/.exec(code);
  if (http) {
    const status = Number(http[1]);
    if (status === 401 || status === 403) return { key: 'ntf.answer.auth', status };
    if (status === 404) return { key: 'ntf.answer.notFound', status };
    if (status === 408 || status === 429) return { key: 'ntf.answer.busy', status };
    if (status >= 500) return { key: 'ntf.answer.down', status };
    if (status >= 200 && status < 300) return { key: 'ntf.answer.unreadable', status };
    return { key: 'ntf.answer.rejected', status };
  }
  const known = CODES[kind][code];
  if (known) return { key: `ntf.answer.${known}` };
  // A number is the platform's own code; anything else is a network error code (ECONNREFUSED, ENOTFOUND, NETWORK…).
  return /^-?\d+$/.test(code) ? { key: 'ntf.answer.other' } : { key: 'ntf.answer.network' };
}

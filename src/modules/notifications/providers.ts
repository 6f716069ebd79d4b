import { createHmac } from 'node:crypto';
import type { OutboundMessage } from './message';
import type { ChannelKind } from './notifications.constants';
import { refusedTarget, type ResolveAll } from './target-address';

/** A channel as the senders need it (secrets included: never sent to a client). */
export interface ChannelTarget {
  kind: ChannelKind;
  webhookUrl: string;
  secret: string;
  /** SMS gateway: the JSON body, with {{name}} placeholders in its strings (see message.ts vars). */
  template: unknown;
}

/** How a provider answered one attempt. `code`: its answer code (errcode, code, HTTP status) or the network error. */
export interface ProviderAnswer {
  ok: boolean;
  /** Worth another attempt (network, 5xx, rate limit, "busy"); false: the request itself is wrong (key, signature, template). */
  retryable: boolean;
  code: string;
  detail: string;
}

export interface SendOptions {
  timeoutMs: number;
  /** notifications.allowPrivateTargets: may the webhook be a private, loopback or reserved address (target-address.ts). */
  allowPrivateTargets: boolean;
  /** How the webhook's host name is resolved for that check (TargetResolver; default the system resolver). */
  resolve?: ResolveAll;
  /** The message's dedup key (incident, level, recipient, channel): sent to gateways that deduplicate. */
  idempotencyKey: string;
  now: Date;
  /** Mobile numbers to @-mention in a group (DingTalk atMobiles). */
  mentionMobiles: string[];
}

/** The HTTP request for one channel (pure: unit-tested against the platforms' documented formats). */
export interface ProviderRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** WeCom group robot markdown content is limited to 4096 bytes (UTF-8). */
export const WECOM_MARKDOWN_MAX_BYTES = 4096;

function truncateBytes(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = s;
  while (Buffer.byteLength(out, 'utf8') > max - 3) out = out.slice(0, -1);
  return `${out}…`;
}

const md = (m: OutboundMessage) => `### ${m.title}\n${m.lines.map((l) => `> ${l}`).join('\n')}\n\n[打开报警并确认](${m.link})`;

/**
 * DingTalk robot signature (加签): sign = urlEncode(base64(HMAC-SHA256(key = secret,
 * message = timestamp + "\n" + secret))), timestamp in milliseconds, both in the query.
 */
export function dingtalkSign(secret: string, timestampMs: number): string {
  return createHmac('sha256', secret).update(`${timestampMs}\n${secret}`).digest('base64');
}

/**
 * Feishu custom bot signature (签名校验): sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret,
 * message = empty)), timestamp in seconds; both go in the JSON body.
 */
export function feishuSign(secret: string, timestampSec: number): string {
  return createHmac('sha256', `${timestampSec}\n${secret}`).update('').digest('base64');
}

/** Replaces {{name}} in every string of a JSON template (values are data: substituted after parsing, so no escaping breaks the JSON). */
export function fillTemplate(template: unknown, vars: Record<string, string>): unknown {
  // Own properties only: {{constructor}} read Object.prototype's and sent "function Object() { [native code] }" (attack pass 9 #7).
  if (typeof template === 'string') return template.replace(/\{\{\s*([A-Za-z]+)\s*\}\}/g, (all, k: string) => (Object.hasOwn(vars, k) ? vars[k] : all));
  if (Array.isArray(template)) return template.map((x) => fillTemplate(x, vars));
  if (template && typeof template === 'object') return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fillTemplate(v, vars)]));
  return template;
}

export const DEFAULT_SMS_TEMPLATE = { to: '{{phone}}', content: '{{text}}', incidentId: '{{incidentId}}', level: '{{level}}' };

export function buildRequest(ch: ChannelTarget, m: OutboundMessage, o: SendOptions): ProviderRequest {
  const json = { 'Content-Type': 'application/json; charset=utf-8' };
  switch (ch.kind) {
    case 'wecom':
      // https://developer.work.weixin.qq.com/document/path/91770 — the key in the URL is the secret; no signature.
      return {
        url: ch.webhookUrl,
        headers: json,
        body: JSON.stringify({ msgtype: 'markdown', markdown: { content: truncateBytes(md(m), WECOM_MARKDOWN_MAX_BYTES) } }),
      };
    case 'dingtalk': {
      // https://open.dingtalk.com/document/robots/customize-robot-security-settings — 加签 mode.
      const ts = o.now.getTime();
      const url = new URL(ch.webhookUrl);
      if (ch.secret) {
        url.searchParams.set('timestamp', String(ts));
        url.searchParams.set('sign', dingtalkSign(ch.secret, ts));
      }
      const at = o.mentionMobiles.map((p) => ` @${p}`).join('');
      return {
        url: url.toString(),
        headers: json,
        body: JSON.stringify({
          msgtype: 'markdown',
          markdown: { title: m.title, text: `${md(m)}${at}` },
          at: { atMobiles: o.mentionMobiles, isAtAll: false },
        }),
      };
    }
    case 'feishu': {
      // https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot — rich text (post), 签名校验 in the body.
      const ts = Math.floor(o.now.getTime() / 1000);
      const content = [...m.lines.map((l) => [{ tag: 'text', text: l }]), [{ tag: 'a', text: '打开报警并确认', href: m.link }]];
      const body: Record<string, unknown> = { msg_type: 'post', content: { post: { zh_cn: { title: m.title, content } } } };
      if (ch.secret) Object.assign(body, { timestamp: String(ts), sign: feishuSign(ch.secret, ts) });
      return { url: ch.webhookUrl, headers: json, body: JSON.stringify(body) };
    }
    case 'sms': {
      // A generic gateway: the configured JSON body, signed like the police relay (HMAC-SHA256 over "<timestamp>.<body>").
      const body = JSON.stringify(fillTemplate(ch.template ?? DEFAULT_SMS_TEMPLATE, m.vars));
      const ts = String(o.now.getTime());
      return {
        url: ch.webhookUrl,
        headers: {
          ...json,
          'X-Shouhu-Timestamp': ts,
          'X-Shouhu-Signature': `sha256=${createHmac('sha256', ch.secret).update(`${ts}.${body}`).digest('hex')}`,
          'Idempotency-Key': o.idempotencyKey,
        },
        body,
      };
    }
  }
}

/** Answer codes each platform documents as transient (rate limits, "system busy"). */
const TRANSIENT: Record<ChannelKind, Set<number>> = {
  wecom: new Set([-1, 45009, 45033]), // -1 系统繁忙; 45009 接口调用超过限制 (20 messages/min per robot); 45033 并发过高
  dingtalk: new Set([-1, 130101, 130102]), // 130101 发送速度太快而限流 (20/min); 130102 …
  feishu: new Set([9499, 11232, 11233]), // 9499 Too Many Request; 11232/11233 频率限制
  sms: new Set(),
};

/**
 * What of an answer body is shown (timeline, channel test): a JSON body's own message field
 * (errmsg, msg, message, error), never raw text — a webhook pointed somewhere else must not
 * relay what that service answered (attack note A16).
 */
function errorText(text: string): string {
  try {
    const b = JSON.parse(text) as Record<string, unknown>;
    const m = b.errmsg ?? b.msg ?? b.message ?? b.error ?? b.StatusMessage;
    if (typeof m === 'string') return m.slice(0, 200);
  } catch {
    // not JSON: said by its size only
  }
  return text ? `(${Buffer.byteLength(text)} bytes)` : '';
}

/** Reads a provider's answer: robots answer HTTP 200 with their own code, which decides. */
export function readAnswer(kind: ChannelKind, status: number, text: string): ProviderAnswer {
  const retryableStatus = status === 408 || status === 429 || status >= 500;
  if (status < 200 || status >= 300) return { ok: false, retryable: retryableStatus, code: `HTTP ${status}`, detail: errorText(text) };
  if (kind === 'sms') return { ok: true, retryable: false, code: `HTTP ${status}`, detail: errorText(text) };
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { ok: false, retryable: true, code: `HTTP ${status}`, detail: `unreadable answer (${Buffer.byteLength(text)} bytes)` };
  }
  // WeCom / DingTalk: { errcode, errmsg }; Feishu: { code, msg } (older hooks: { StatusCode, StatusMessage }).
  const code = Number(body.errcode ?? body.code ?? body.StatusCode ?? NaN);
  const msg = String(body.errmsg ?? body.msg ?? body.StatusMessage ?? '');
  if (code === 0) return { ok: true, retryable: false, code: '0', detail: msg };
  if (Number.isNaN(code)) return { ok: false, retryable: true, code: `HTTP ${status}`, detail: `no answer code (${Buffer.byteLength(text)} bytes)` };
  return { ok: false, retryable: TRANSIENT[kind].has(code), code: String(code), detail: msg.slice(0, 200) };
}

/**
 * Text with every URL in it cut to scheme, host and path (no user name, password, query or fragment): an
 * error's text may quote the request's URL, whose query carries the robot's key, timestamp and signature,
 * and a provider answer's detail is stored (channel lastError, delivery, audit) and shown to operators and
 * auditors (attack pass 9 #2).
 */
export function withoutUrlSecrets(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (raw) => {
    try {
      const u = new URL(raw);
      return `${u.protocol}//${u.host}${u.pathname}${u.search || u.hash ? '?…' : ''}`;
    } catch {
      return '…';
    }
  });
}

/** One attempt: builds the request, posts it with a timeout, reads the answer. Never throws; the answer's detail quotes no URL secrets. */
export async function sendOnce(ch: ChannelTarget, m: OutboundMessage, o: SendOptions): Promise<ProviderAnswer> {
  const a = await attempt(ch, m, o);
  return { ...a, detail: withoutUrlSecrets(a.detail) };
}

async function attempt(ch: ChannelTarget, m: OutboundMessage, o: SendOptions): Promise<ProviderAnswer> {
  let req: ProviderRequest;
  try {
    req = buildRequest(ch, m, o);
  } catch (e) {
    return { ok: false, retryable: false, code: 'CONFIG', detail: (e as Error).message };
  }
  const target = await refusedTarget(new URL(req.url), o.allowPrivateTargets, { resolve: o.resolve });
  if (target && 'refused' in target) return { ok: false, retryable: false, code: 'BLOCKED_ADDRESS', detail: target.refused };
  // Not checked is not sent (attack pass 10 #3); DNS may answer on a later attempt, so this one may be retried.
  if (target) return { ok: false, retryable: true, code: 'UNRESOLVED', detail: `${target.unresolved}: not sent` };
  try {
    const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(o.timeoutMs), redirect: 'error' });
    return readAnswer(ch.kind, res.status, await res.text());
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    const code = err.name === 'TimeoutError' ? 'TIMEOUT' : (err.cause?.code ?? 'NETWORK');
    return { ok: false, retryable: true, code, detail: (err.cause as Error | undefined)?.message ?? err.message };
  }
}

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Fake chat-robot and SMS-gateway endpoints on loopback (outside the system, so faked), checking
 * what the real platforms check — written from the platforms' documentation, independently of
 * the sender's code:
 *
 * - WeCom group robot (企业微信群机器人): POST /cgi-bin/webhook/send?key=<key>; the key is the
 *   secret (93000 invalid webhook url); JSON {msgtype:'markdown', markdown:{content}} with content
 *   at most 4096 bytes (40058); answers HTTP 200 {errcode, errmsg}.
 * - DingTalk robot (钉钉自定义机器人, 加签): POST /robot/send?access_token=<t>&timestamp=<ms>&sign=<s>;
 *   sign = urlencode(base64(HmacSHA256(secret, timestamp + "\n" + secret))), the timestamp within
 *   one hour of the server's clock (310000); markdown needs title and text; {errcode, errmsg}.
 * - Feishu custom bot (飞书自定义机器人, 签名校验): POST /open-apis/bot/v2/hook/<token> with
 *   {timestamp (seconds, string), sign, msg_type, content}; sign = base64(HmacSHA256(key =
 *   timestamp + "\n" + secret, message = "")), timestamp within one hour (19021); {code, msg}.
 * - SMS/voice gateway (generic): POST /sms with X-Shouhu-Timestamp (ms, within 5 minutes) and
 *   X-Shouhu-Signature: sha256=hex(HMAC(secret, timestamp + "." + body)), 401 otherwise; 2xx accepted.
 *
 * `failUntil` (epoch ms) makes one fail on demand, the way it fails for real: the robots answer
 * HTTP 200 with their "system busy" code, the gateway 503. `received` lists accepted messages,
 * `rejected` the refused ones (signature, key, freshness, format), with the platform's code.
 */
export type Platform = 'wecom' | 'dingtalk' | 'feishu' | 'sms';

export interface ReceivedMessage {
  platform: Platform;
  at: number;
  body: Record<string, unknown>;
  /** Every string in the body, joined: what a person would read. */
  text: string;
  /** The SMS gateway's Idempotency-Key header. */
  key: string | null;
  mentions: string[];
}

export interface FakeReceiver {
  platform: Platform;
  /** The webhook to configure on the channel (with its key / access token). */
  url: string;
  secret: string;
  received: ReceivedMessage[];
  rejected: { at: number; code: string; reason: string }[];
  /** Requests refused because failUntil had not passed. */
  failedOnDemand: number;
  failUntil: number;
  /** Clock skew of the fake platform (ms added to its "now"), to test timestamp freshness. */
  skewMs: number;
  /** How long it takes to answer an accepted message (a slow provider keeps sends in flight). */
  delayMs: number;
  close: () => Promise<void>;
}

const HOUR = 3600_000;

function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => strings(x, out));
  return out;
}

function safeEq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

type Verdict = { ok: true; mentions?: string[] } | { ok: false; status?: number; code: string; reason: string };

export async function startFakeReceiver(platform: Platform, opts: { secret?: string; token?: string } = {}): Promise<FakeReceiver> {
  const token = opts.token ?? `tok${Math.random().toString(36).slice(2, 12)}${Date.now().toString(36)}`;
  const secret = opts.secret ?? (platform === 'wecom' ? '' : `SEC${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`);
  const r: Omit<FakeReceiver, 'url' | 'close'> = { platform, secret, received: [], rejected: [], failedOnDemand: 0, failUntil: 0, skewMs: 0, delayMs: 0 };
  const now = () => Date.now() + r.skewMs;

  const answer = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  const robotAnswer = (res: ServerResponse, code: number, msg: string) =>
    platform === 'feishu' ? answer(res, 200, { code, msg, data: {} }) : answer(res, 200, { errcode: code, errmsg: msg });

  function verify(req: IncomingMessage, url: URL, raw: string, body: Record<string, unknown>): Verdict {
    switch (platform) {
      case 'wecom': {
        if (url.pathname !== '/cgi-bin/webhook/send' || url.searchParams.get('key') !== token)
          return { ok: false, code: '93000', reason: 'invalid webhook url' };
        if (body.msgtype !== 'markdown') return { ok: false, code: '40008', reason: 'invalid message type' };
        const content = (body.markdown as { content?: unknown } | undefined)?.content;
        if (typeof content !== 'string' || content === '') return { ok: false, code: '44004', reason: 'empty content' };
        if (Buffer.byteLength(content, 'utf8') > 4096) return { ok: false, code: '40058', reason: 'markdown.content exceed max length 4096' };
        return { ok: true };
      }
      case 'dingtalk': {
        if (url.pathname !== '/robot/send' || url.searchParams.get('access_token') !== token)
          return { ok: false, code: '300001', reason: 'token is not exist' };
        const ts = url.searchParams.get('timestamp') ?? '';
        const sign = url.searchParams.get('sign') ?? ''; // URLSearchParams decodes: an unencoded '+' arrives as ' ' and fails, as on DingTalk
        if (!/^\d{13}$/.test(ts) || Math.abs(now() - Number(ts)) > HOUR) return { ok: false, code: '310000', reason: 'invalid timestamp' };
        const want = createHmac('sha256', secret).update(`${ts}\n${secret}`).digest('base64');
        if (!safeEq(sign, want)) return { ok: false, code: '310000', reason: 'sign not match' };
        const md = body.markdown as { title?: unknown; text?: unknown } | undefined;
        if (body.msgtype !== 'markdown' || typeof md?.title !== 'string' || typeof md?.text !== 'string')
          return { ok: false, code: '40035', reason: 'missing markdown title/text' };
        const at = body.at as { atMobiles?: unknown } | undefined;
        const mentions = Array.isArray(at?.atMobiles) ? (at.atMobiles as string[]) : [];
        return { ok: true, mentions };
      }
      case 'feishu': {
        if (url.pathname !== `/open-apis/bot/v2/hook/${token}`)
          return { ok: false, code: '19001', reason: 'param invalid: incoming webhook access token invalid' };
        const ts = body.timestamp;
        const sign = body.sign;
        const fail = { ok: false as const, code: '19021', reason: 'sign match fail or timestamp is not within one hour from current time' };
        if (typeof ts !== 'string' || !/^\d{10}$/.test(ts) || typeof sign !== 'string') return fail;
        if (Math.abs(now() - Number(ts) * 1000) > HOUR) return fail;
        const want = createHmac('sha256', `${ts}\n${secret}`).update('').digest('base64');
        if (!safeEq(sign, want)) return fail;
        const post = (body.content as { post?: Record<string, { title?: unknown; content?: unknown }> } | undefined)?.post;
        const lang = post?.zh_cn ?? post?.en_us;
        if (body.msg_type !== 'post' || !lang || !Array.isArray(lang.content)) return { ok: false, code: '9499', reason: 'Bad Request' };
        return { ok: true };
      }
      case 'sms': {
        if (url.pathname !== '/sms') return { ok: false, status: 404, code: 'HTTP 404', reason: 'not found' };
        const ts = String(req.headers['x-shouhu-timestamp'] ?? '');
        const sig = String(req.headers['x-shouhu-signature'] ?? '');
        if (!/^\d{13}$/.test(ts) || Math.abs(now() - Number(ts)) > 5 * 60_000)
          return { ok: false, status: 401, code: 'HTTP 401', reason: 'stale or missing timestamp' };
        const want = `sha256=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`;
        if (!safeEq(sig, want)) return { ok: false, status: 401, code: 'HTTP 401', reason: 'bad signature' };
        if (typeof body.to !== 'string' || !/^1\d{10}$/.test(body.to) || typeof body.content !== 'string')
          return { ok: false, status: 400, code: 'HTTP 400', reason: 'to must be a mobile number, content a string' };
        return { ok: true };
      }
    }
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://fake');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        r.rejected.push({ at: Date.now(), code: 'JSON', reason: 'body is not JSON' });
        if (platform === 'sms') return answer(res, 400, { error: 'bad json' });
        return robotAnswer(res, platform === 'feishu' ? 9499 : 40001, 'invalid json');
      }
      if (req.method !== 'POST') return answer(res, 405, {});
      const v = verify(req, url, raw, body);
      if (!v.ok) {
        r.rejected.push({ at: Date.now(), code: v.code, reason: v.reason });
        if (v.status) return answer(res, v.status, { error: v.reason });
        return robotAnswer(res, Number(v.code), v.reason);
      }
      if (Date.now() < r.failUntil) {
        r.failedOnDemand++;
        if (platform === 'sms') return answer(res, 503, { error: 'unavailable' });
        // The platforms' "system busy" / rate-limit answers (HTTP 200 with a code).
        return robotAnswer(res, platform === 'feishu' ? 9499 : -1, platform === 'feishu' ? 'Too Many Request' : '系统繁忙');
      }
      const accept = () => {
        r.received.push({
          platform,
          at: Date.now(),
          body,
          text: strings(body).join('\n'),
          key: (req.headers['idempotency-key'] as string | undefined) ?? null,
          mentions: v.mentions ?? [],
        });
        if (platform === 'sms') return answer(res, 200, { ok: true, id: r.received.length });
        return robotAnswer(res, 0, platform === 'feishu' ? 'success' : 'ok');
      };
      // Recorded when the answer goes out: a sender killed before then may or may not have been heard — as with a real provider.
      if (r.delayMs > 0) setTimeout(accept, r.delayMs);
      else accept();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const url =
    platform === 'wecom'
      ? `${base}/cgi-bin/webhook/send?key=${token}`
      : platform === 'dingtalk'
        ? `${base}/robot/send?access_token=${token}`
        : platform === 'feishu'
          ? `${base}/open-apis/bot/v2/hook/${token}`
          : `${base}/sms`;
  const out = r as FakeReceiver;
  out.url = url;
  out.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return out;
}

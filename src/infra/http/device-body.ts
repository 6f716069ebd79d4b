import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { Request } from 'express';
import * as iconv from 'iconv-lite';
import { malformedInput } from '../observability/metrics';
import { storableText } from '../text/storable';

/**
 * The body of a device alarm route (one-click button press, camera report), read by the route
 * itself AFTER the device credential was checked — never refused for what it carries (attack
 * finding A1: a 4xx is not retried by the device contract, so every refusal here was an alarm
 * lost). The global edge guards (JSON-only, body-parser, depth/key limits, NUL/surrogate 400s in
 * input-guards.ts) are skipped for these routes (bootstrap.ts DEVICE_BODY_ROUTES) and replaced by:
 *
 * - bounded reading: at most `maxBytes` are kept; the rest is read and thrown away (never buffered)
 *   and the press is taken with "报文过长，已截断" in its note. An unauthenticated request is
 *   answered 401 by the guard before any byte is read;
 * - bounded waiting: a body still arriving after `timeoutMs` is cut there — the press is taken
 *   with what arrived ("报文接收超时，已截断") and the connection closed once answered, so a slow
 *   device holds it for seconds, not for the server's request timeout (~300 s). A device that
 *   closes its connection mid-body ("报文未收完连接已断开") is taken the same way: the credential
 *   proved a press, and its retry (the device retry contract, docs/ARCHITECTURE.md: no answer →
 *   the same request again) finds that press by its event id or folds into its incident, while a
 *   device that cannot retry (power gone, torn off) would otherwise have lost the alarm;
 * - decoding by the declared charset (UTF-8; GBK, GB2312, GB18030 — common on Chinese embedded
 *   devices — through GB18030, their superset; UTF-16 LE/BE, `utf-16` by its BOM or else by its
 *   bytes); none declared: UTF-16 when it starts with a UTF-16 BOM, UTF-8 when the bytes are valid
 *   UTF-8, else GB18030; another charset: the same detection, said in the note. A BOM is dropped.
 *   A body may end inside a UTF-8 character, cut by us (size cap, timeout, hang-up) or by the device
 *   itself: that incomplete tail (1–3 bytes that begin a multibyte sequence) is left out of the
 *   detection and of the text, and when the device cut it the note says so (a 64 KB cut through a
 *   Chinese character, or firmware sending "南" + 2 bytes of "门", made the whole UTF-8 body
 *   "not UTF-8" and garbled it as GB18030);
 * - any Content-Type (or none): the bytes are tried as JSON; a form body (urlencoded) as its fields;
 *   anything else that does not parse (truncated, not JSON) keeps the fields that can still be read
 *   from it (`"eventId": …` and the other known names, best effort) and is said in the note;
 * - text made storable (infra/text/storable.ts: NUL removed, lone surrogates → U+FFFD) in every
 *   string and key, and anything nested deeper than `maxDepth` replaced by "…" (so later code
 *   never recurses through it).
 *
 * `digest` identifies the bytes read (`b-<40 hex of SHA-256>`) of a body that is not a JSON object:
 * its event id when it gives none, so the device's retries of it still find the same press (as a retry only
 * within alarms.deviceRetryWindowSeconds and never once its incident is closed: the same bytes may be every press).
 * Every step is linear in the (capped) byte count.
 */
export interface DeviceBodyLimits {
  /** Bytes kept (alarms.deviceBodyMaxKb × 1024). */
  maxBytes: number;
  /** Nesting kept (http.jsonMaxDepth); deeper values become "…". */
  maxDepth: number;
  /** Top-level field names worth saving from a body that does not parse. */
  salvage: readonly string[];
  /** How long the body may take to arrive, from the first read (alarms.deviceBodyTimeoutMs). */
  timeoutMs: number;
}

export interface DeviceBody {
  /** The body as read and repaired: an object, another JSON value, or undefined (empty body). */
  value: unknown;
  /** What was odd, in words for the alarm's note (zh-CN, short; the most important first). */
  problems: string[];
  /** `b-<sha256 hex, 40>` of the bytes kept when they were not a JSON object (nor empty); else null (the object's own eventId rules). */
  digest: string | null;
}

const GB = new Set(['gbk', 'gb2312', 'gb18030', 'cp936', 'x-gbk', 'euc-cn', 'csgb2312', 'windows-936']);
const UTF8 = new Set(['utf-8', 'utf8']);
/** Declared UTF-16 charsets → the iconv-lite codec ('utf-16': its BOM, else guessed from the bytes, LE by default). */
const UTF16 = new Map([
  ['utf-16', 'utf-16'],
  ['utf16', 'utf-16'],
  ['utf-16le', 'utf-16le'],
  ['utf16le', 'utf-16le'],
  ['ucs-2', 'utf-16le'],
  ['utf-16be', 'utf-16be'],
  ['utf16be', 'utf-16be'],
]);

/**
 * How many bytes at the end of `b` are the start of a UTF-8 sequence that the cut left incomplete
 * (0 when the last sequence is complete, or is not UTF-8 at all: then detection decides).
 */
export function incompleteUtf8Tail(b: Uint8Array): number {
  for (let i = 1; i <= Math.min(4, b.length); i++) {
    const c = b[b.length - i];
    if (c >= 0x80 && c <= 0xbf) continue; // a continuation byte: its lead is further back
    const need = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 1;
    return need > i ? i : 0;
  }
  return 0;
}

/** How reading a body ended: it was all read, the device took longer than alarms.deviceBodyTimeoutMs, or it went away mid-body. */
type BodyEnd = 'complete' | 'timeout' | 'aborted';

/**
 * The raw bytes, at most `max` kept; the rest is read and dropped. `truncated`: there was more.
 * Never rejects: after `timeoutMs` (from the first read, i.e. after the credential) what has
 * arrived is the body ('timeout'; the connection is closed once answered, see below); a device
 * that closes its connection mid-body leaves what arrived ('aborted').
 */
function readCapped(req: Request, max: number, timeoutMs: number): Promise<{ bytes: Buffer; truncated: boolean; total: number; end: BodyEnd }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let total = 0;
    let timer: NodeJS.Timeout | null = null;
    const onData = (c: Buffer) => {
      total += c.length;
      const room = max - kept;
      if (room <= 0) return; // thrown away: the stream keeps flowing so the device can finish sending and read the answer
      const part = c.length > room ? c.subarray(0, room) : c;
      chunks.push(part);
      kept += part.length;
    };
    const done = (end: BodyEnd) => {
      cleanup();
      resolve({ bytes: Buffer.concat(chunks, kept), truncated: total > kept, total, end });
    };
    const onEnd = () => done('complete');
    const onError = () => done('aborted');
    const onClose = () => {
      if (!req.complete) done('aborted');
    };
    const onTimeout = () => {
      // The rest of the body is never read: the connection cannot be reused for another request. Close it
      // once the answer is out (Node ends and destroys the socket after a `Connection: close` response), so a
      // device still trickling bytes holds nothing until the server's request timeout (~300 s).
      if (!req.res?.headersSent) req.res?.setHeader('Connection', 'close');
      done('timeout');
    };
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      // `data` stays attached: whatever still arrives is dropped, not buffered.
    };
    if (req.destroyed) {
      // Gone already (while the credential was checked): what arrived is still buffered. Read before any
      // `data` listener exists (read() emits `data` too); complete when the device sent it all and hung up.
      for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) onData(c);
      return done(req.complete ? 'complete' : 'aborted');
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
    timer = setTimeout(onTimeout, timeoutMs);
  });
}

function charsetOf(req: Request): string | null {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(String(req.headers['content-type'] ?? ''));
  return m ? m[1].toLowerCase() : null;
}

/**
 * The text of the bytes by the declared charset (see above), with what had to be guessed. A UTF-8
 * character the bytes end inside is left out, not guessed from. `cut`: the body was cut by us (size
 * cap, timeout, hang-up) — the note says so already, and another charset's cut character is dropped too.
 */
function decode(bytes: Buffer, charset: string | null, cut: boolean, problems: string[]): string {
  let text: string;
  // UTF-8 is judged without an incomplete sequence at the end, whatever cut it (our size cap, the timeout, a
  // hang-up, or the device itself): the rest of that character never arrived.
  const tail = incompleteUtf8Tail(bytes);
  const whole = tail ? bytes.subarray(0, bytes.length - tail) : bytes;
  // Cut by us, the note already says so; cut by the device, say that its last character was left out.
  const tailNote = () => {
    if (tail && !cut) problems.push('报文末尾字符不完整，已略去');
  };
  const utf16 = charset !== null ? UTF16.get(charset) : undefined;
  const bom16 = bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff));
  if (charset !== null && GB.has(charset)) text = iconv.decode(bytes, 'gb18030');
  else if (utf16) text = iconv.decode(bytes, utf16);
  else if (charset !== null && UTF8.has(charset)) {
    if (!isUtf8(whole)) problems.push('含无效 UTF-8 字节');
    else tailNote();
    text = whole.toString('utf8');
  } else if (charset === null && bom16) {
    problems.push('未声明字符集，按 UTF-16 解码（字节序标记）');
    text = iconv.decode(bytes, 'utf-16');
  } else {
    const utf8 = isUtf8(whole);
    if (charset !== null) problems.push(`字符集 ${storableText(charset, 24)} 不支持，按 ${utf8 ? 'UTF-8' : 'GB18030'} 解码`);
    else if (!utf8) problems.push('未声明字符集且非 UTF-8，按 GB18030 解码');
    if (utf8) tailNote();
    text = utf8 ? whole.toString('utf8') : iconv.decode(bytes, 'gb18030');
  }
  // A multibyte character of another charset cut in half decodes as U+FFFD (UTF-16: a lone high surrogate): not sent, dropped.
  if (cut) text = text.replace(/(?:\uFFFD|[\uD800-\uDBFF])$/, '');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** JSON string/number/true/false/null after `"name":`; an unterminated string (a cut body) up to the end. */
const salvageRes = new Map<string, RegExp>();
function salvageRe(name: string): RegExp {
  let re = salvageRes.get(name);
  if (!re) {
    re = new RegExp(`"${name}"\\s*:\\s*(?:"((?:[^"\\\\]|\\\\.)*)("|\\\\?$)|(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?|true|false|null))`);
    salvageRes.set(name, re);
  }
  return re;
}

/**
 * The known top-level fields that can still be read from a body that does not parse (best effort).
 * An event id cut off mid-string is not taken: "evt-12" of "evt-123" could be another press's id
 * (a retry of it would be swallowed as this one); without it the bytes' digest names the event.
 */
function salvage(text: string, names: readonly string[], problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const m = salvageRe(name).exec(text);
    if (!m) continue;
    const [, str, quote, scalar] = m; // an unterminated string (a cut body) is what arrived before the cut
    if (name === 'eventId' && str !== undefined && quote !== '"') {
      problems.push('事件编号不完整');
      continue;
    }
    if (str === undefined) {
      out[name] = JSON.parse(scalar) as unknown;
      continue;
    }
    try {
      out[name] = JSON.parse(`"${str}"`) as unknown;
    } catch {
      out[name] = str; // a cut escape (\u12…): the text as sent
    }
  }
  return out;
}

/**
 * The value with every string and key storable and nothing deeper than maxDepth (iterative: a
 * body nested 60,000 levels costs a loop, not the stack). Mutates `value` (fresh from JSON.parse).
 */
function repair(value: unknown, maxDepth: number, problems: string[]): unknown {
  let repaired = false;
  let cut = false;
  const fix = (s: string) => {
    const t = storableText(s);
    if (t !== s) repaired = true;
    return t;
  };
  if (typeof value === 'string') value = fix(value);
  const stack: [Record<string, unknown>, number][] = value && typeof value === 'object' ? [[value as Record<string, unknown>, 1]] : [];
  while (stack.length) {
    const [o, depth] = stack.pop()!;
    for (const k of Object.keys(o)) {
      let v = o[k];
      if (typeof v === 'string') v = fix(v);
      else if (v && typeof v === 'object') {
        if (depth >= maxDepth) {
          v = '…';
          cut = true;
        } else stack.push([v as Record<string, unknown>, depth + 1]);
      }
      const key = fix(k);
      if (key !== k) delete o[k];
      // defineProperty, not assignment: a key named __proto__ stays a plain field.
      if (key !== k || v !== o[k]) Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  if (cut) problems.push(`嵌套超过 ${maxDepth} 层，深层内容已忽略`);
  if (repaired) problems.push('含 NUL 或无效字符，已清理');
  return value;
}

const formatSeconds = (ms: number) => String(Math.round(ms / 100) / 10);

/** Reads, decodes, parses and repairs a device alarm body (see above). Never rejects. */
export async function readDeviceBody(req: Request, limits: DeviceBodyLimits): Promise<DeviceBody> {
  const problems: string[] = [];
  // Already parsed (a path spelled so that the edge parser took it): repair what it made.
  if ((req as Request & { _body?: boolean })._body) return { value: repair(req.body, limits.maxDepth, problems), problems, digest: null };
  const { bytes, truncated, total, end } = await readCapped(req, limits.maxBytes, limits.timeoutMs);
  if (end === 'timeout') problems.push(`报文接收超时（${formatSeconds(limits.timeoutMs)} 秒），已截断`);
  else if (end === 'aborted') problems.push('报文未收完连接已断开，按已收到部分处理');
  if (truncated) problems.push(`报文过长（${Math.ceil(total / 1024)} KB），已截断`);
  const cut = truncated || end !== 'complete';
  if (bytes.length === 0) return { value: undefined, problems, digest: null };
  const digest = `b-${createHash('sha256').update(bytes).digest('hex').slice(0, 40)}`;
  const text = decode(bytes, charsetOf(req), cut, problems);
  let value: unknown;
  let object = false;
  if (text.trim() === '') value = undefined;
  else {
    try {
      value = JSON.parse(text);
      object = value !== null && typeof value === 'object' && !Array.isArray(value);
    } catch {
      if (req.is('application/x-www-form-urlencoded')) {
        value = Object.fromEntries(new URLSearchParams(text));
        problems.push('表单格式报文');
      } else {
        value = salvage(text, limits.salvage, problems);
        problems.push(cut ? '截断后 JSON 不完整，已尽量读取' : 'JSON 无法解析，已尽量读取');
      }
    }
  }
  value = repair(value, limits.maxDepth, problems);
  if (problems.length) malformedInput.inc({ source: 'http', reason: 'device_body_repaired' });
  return { value, problems, digest: object ? null : digest };
}

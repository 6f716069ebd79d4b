/**
 * A small SIP (RFC 3261) parser and serializer: enough for GB/T 28181 device signalling
 * (REGISTER, MESSAGE, OPTIONS and the responses to the platform's own MESSAGEs), strict about
 * what it needs and refusing everything else. Header sections are handled as latin1 so any
 * byte (GB2312 display names in From/To) round-trips unchanged into the response.
 */

/** Compact header forms (RFC 3261 §7.3.3 and §20). */
const COMPACT: Record<string, string> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  u: 'allow-events',
};

/** Canonical spelling used when we write a header back. */
const CANONICAL: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  via: 'Via',
  from: 'From',
  to: 'To',
  'content-length': 'Content-Length',
  'content-type': 'Content-Type',
  'www-authenticate': 'WWW-Authenticate',
  'max-forwards': 'Max-Forwards',
};

export class SipParseError extends Error {
  /** `basis`: what a response needs, when the request could be read that far (e.g. a UDP body shorter than Content-Length: 400). */
  constructor(
    public readonly reason: string,
    public readonly basis?: ResponseBasis,
    /** The request's method, with `basis` (an ACK is never answered). */
    public readonly method?: string,
  ) {
    super(reason);
    this.name = 'SipParseError';
  }
}

export interface NameAddr {
  /** The header value as received (copied verbatim into responses). */
  raw: string;
  uri: string;
  /** The user part of a sip: URI (the GB/T 28181 20-digit id), '' when there is none. */
  user: string;
  host: string;
  tag: string | null;
}

export interface Via {
  transport: string;
  host: string;
  port: number | null;
  branch: string;
  /** The `rport` parameter is present (RFC 3581): answer to the source port. */
  rport: boolean;
}

interface Common {
  /** Lower-case header name → values in order (a comma-joined header counts as one value). */
  headers: Map<string, string[]>;
  /** Via values, split on commas, topmost first. */
  vias: string[];
  via: Via;
  from: NameAddr;
  to: NameAddr;
  callId: string;
  cseq: { seq: number; method: string };
  body: Buffer;
}

export interface SipRequest extends Common {
  kind: 'request';
  method: string;
  uri: string;
}

export interface SipResponse extends Common {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

export function header(m: { headers: Map<string, string[]> }, name: string): string | undefined {
  return m.headers.get(name)?.[0];
}

/** Index of the end of the header section ("\r\n\r\n", or a bare "\n\n"), or -1. */
export function headerEnd(buf: Buffer, from = 0): { at: number; sepLen: number } | null {
  const crlf = buf.indexOf('\r\n\r\n', from, 'latin1');
  const lf = buf.indexOf('\n\n', from, 'latin1');
  if (crlf < 0 && lf < 0) return null;
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { at: crlf, sepLen: 4 };
  return { at: lf, sepLen: 2 };
}

/** Splits a header value on commas outside quotes and angle brackets (for Via lists). */
function splitList(v: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const ch = v[i];
    if (ch === '"' && v[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && ch === '<') depth++;
    else if (!quoted && ch === '>') depth--;
    else if (!quoted && depth === 0 && ch === ',') {
      out.push(v.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(v.slice(start).trim());
  return out.filter((s) => s.length > 0);
}

/** `;name=value` parameters after a value (names lower-cased; a bare name maps to ''). */
export function params(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(';').slice(1)) {
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (k) out.set(k, eq < 0 ? '' : part.slice(eq + 1).trim());
  }
  return out;
}

export function parseVia(v: string): Via {
  const m = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)\s+([^;\s]+)/i.exec(v);
  if (!m) throw new SipParseError('bad_via');
  const sentBy = m[2];
  let host = sentBy;
  let port: number | null = null;
  const ipv6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(sentBy);
  const plain = /^([^:]+)(?::(\d+))?$/.exec(sentBy);
  if (ipv6) {
    host = ipv6[1];
    port = ipv6[2] ? Number(ipv6[2]) : null;
  } else if (plain) {
    host = plain[1];
    port = plain[2] ? Number(plain[2]) : null;
  } else throw new SipParseError('bad_via');
  if (port !== null && (port < 1 || port > 65535)) throw new SipParseError('bad_via');
  const p = params(v);
  // No branch: an RFC 2543 device (RFC 3261 §8.1.1.7, §17.2.3 keeps them working): '' here, and its transactions are told
  // apart by Call-ID, CSeq and From (sip-server's transaction key) — answered, not refused (issue 16 §5).
  const branch = p.get('branch') ?? '';
  if (branch.length > 128) throw new SipParseError('bad_via_branch');
  return { transport: m[1].toUpperCase(), host, port, branch, rport: p.has('rport') };
}

export function parseNameAddr(v: string, what: string): NameAddr {
  let uri: string;
  let rest: string;
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    if (gt < 0) throw new SipParseError(`bad_${what}`);
    uri = v.slice(lt + 1, gt).trim();
    rest = v.slice(gt + 1);
  } else {
    const semi = v.indexOf(';');
    uri = (semi < 0 ? v : v.slice(0, semi)).trim();
    rest = semi < 0 ? '' : v.slice(semi);
  }
  const u = /^sips?:(?:([^@;>]*)@)?([^;>?]+)/i.exec(uri);
  if (!u) throw new SipParseError(`bad_${what}`);
  const tag = params(rest).get('tag');
  return { raw: v, uri, user: u[1] ?? '', host: u[2], tag: tag === undefined || tag === '' ? null : tag };
}

/**
 * Parses one SIP message. `datagram`: a UDP packet may omit Content-Length (the body is the
 * rest); over a stream it must be there (the caller frames by it). Throws SipParseError.
 */
export function parseSip(buf: Buffer, opts: { datagram: boolean; maxBytes: number }): SipMessage {
  if (buf.length > opts.maxBytes) throw new SipParseError('too_large');
  const end = headerEnd(buf);
  if (!end) throw new SipParseError('no_header_end');
  const head = buf.toString('latin1', 0, end.at);
  const lines = head.split(/\r?\n/);
  const start = lines[0];
  const headers = new Map<string, string[]>();
  let last: string | null = null;
  let count = 0;
  /** A fault found before the request could be identified: thrown, with what a 400 needs, once it can be. */
  let deferred: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') throw new SipParseError('bad_header');
    if (line[0] === ' ' || line[0] === '\t') {
      // Obsolete line folding: a continuation of the previous header value.
      if (!last) throw new SipParseError('bad_header');
      const vals = headers.get(last)!;
      vals[vals.length - 1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SipParseError('bad_header');
    let name = line.slice(0, colon).trim().toLowerCase();
    if (!TOKEN.test(name)) throw new SipParseError('bad_header');
    name = COMPACT[name] ?? name;
    // Past 100 headers the message is refused, answered 400 once it can be identified (below); the header section is
    // bounded by maxBytes, so reading on costs no more than a message within the limit does.
    if (++count > 100) deferred ??= 'too_many_headers';
    const value = line.slice(colon + 1).trim();
    const list = headers.get(name);
    if (list) list.push(value);
    else headers.set(name, [value]);
    last = name;
  }

  let msg: { kind: 'request'; method: string; uri: string } | { kind: 'response'; status: number; reason: string };
  const resp = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/.exec(start);
  if (resp) msg = { kind: 'response', status: Number(resp[1]), reason: resp[2] ?? '' };
  else {
    const req = /^([A-Z]{2,16}) (\S+) SIP\/2\.0$/.exec(start);
    if (!req) throw new SipParseError('bad_start_line');
    msg = { kind: 'request', method: req[1], uri: req[2] };
  }

  const one = (name: string): string => {
    const v = headers.get(name);
    if (!v || v.length === 0 || v[0] === '') throw new SipParseError(`missing_${name}`);
    if (v.length > 1 && name !== 'via') throw new SipParseError(`duplicate_${name}`);
    return v[0];
  };
  const vias = (headers.get('via') ?? []).flatMap(splitList);
  if (vias.length === 0) throw new SipParseError('missing_via');
  const via = parseVia(vias[0]);
  const from = parseNameAddr(one('from'), 'from');
  const to = parseNameAddr(one('to'), 'to');
  const callId = one('call-id');
  const cs = /^(\d{1,10})\s+([A-Z]{2,16})$/.exec(one('cseq'));
  if (!cs) throw new SipParseError('bad_cseq');
  const cseq = { seq: Number(cs[1]), method: cs[2] };
  // From here the request can be identified (Via, From, To, Call-ID, CSeq): a fault is answered 400 (RFC 3261 §8.2.2, §21.4.1),
  // not dropped in silence (attack pass 4 #5) — the device learns its request will never be taken.
  const fault = (reason: string): SipParseError =>
    new SipParseError(reason, msg.kind === 'request' ? { vias, via, from, to, callId, cseq } : undefined, msg.kind === 'request' ? msg.method : undefined);
  if (deferred) throw fault(deferred);
  if (callId.length > 256 || /\s/.test(callId)) throw fault('bad_call-id');
  // RFC 3261 §8.1.1.5: the sequence number is below 2**31; the method matches the request's.
  if (cseq.seq > 2 ** 31 - 1) throw fault('bad_cseq');
  if (msg.kind === 'request' && cseq.method !== msg.method) throw fault('cseq_method_mismatch');

  const bodyStart = end.at + end.sepLen;
  const available = buf.length - bodyStart;
  let length = available;
  const cl = headers.get('content-length');
  if (cl) {
    if (cl.length > 1) throw fault('duplicate_content-length');
    if (!/^\d{1,9}$/.test(cl[0])) throw fault('bad_content_length');
    length = Number(cl[0]);
    if (length > available) throw fault('truncated_body');
  } else if (!opts.datagram) throw new SipParseError('missing_content-length');
  const body = buf.subarray(bodyStart, bodyStart + length);
  return { ...msg, headers, vias, via, from, to, callId, cseq, body } as SipMessage;
}

/** Writes one header line; values are latin1 text (bytes preserved). */
function line(name: string, value: string | number): string {
  return `${CANONICAL[name.toLowerCase()] ?? name}: ${value}\r\n`;
}

export interface ResponseOptions {
  /** The tag we put on To when the request had none (deterministic per transaction). */
  toTag: string;
  /** The packet's source address, for received/rport on the top Via (RFC 3581). */
  source?: { address: string; port: number };
  headers?: [string, string | number][];
  body?: Buffer;
  contentType?: string;
}

const REASONS: Record<number, string> = {
  100: 'Trying',
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  423: 'Interval Too Brief',
  481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here',
  489: 'Bad Event',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** What a response is built from (a parsed request, or the keepalive fast path's scan of one). */
export type ResponseBasis = Pick<SipRequest, 'vias' | 'via' | 'from' | 'to' | 'callId' | 'cseq'>;

/** FNV-1a: a cheap deterministic tag, so a retransmitted request gets the very same To tag. */
export function tagOf(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** A response to `req` (RFC 3261 §8.2.6): Via, From, To (+tag), Call-ID and CSeq copied. */
export function buildResponse(req: ResponseBasis, status: number, opts: ResponseOptions): Buffer {
  let out = `SIP/2.0 ${status} ${REASONS[status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < req.vias.length; i++) {
    let v = req.vias[i];
    if (i === 0 && opts.source) {
      // received= always when the sent-by differs; rport= filled in when the client asked.
      if (req.via.host !== opts.source.address) v += `;received=${opts.source.address}`;
      if (req.via.rport) v = v.replace(/;rport(?=;|$)/i, `;rport=${opts.source.port}`);
    }
    out += line('via', v);
  }
  out += line('from', req.from.raw);
  out += line('to', req.to.tag ? req.to.raw : `${req.to.raw};tag=${opts.toTag}`);
  out += line('call-id', req.callId);
  out += line('cseq', `${req.cseq.seq} ${req.cseq.method}`);
  for (const [k, v] of opts.headers ?? []) out += line(k, v);
  const body = opts.body ?? Buffer.alloc(0);
  if (body.length) out += line('content-type', opts.contentType ?? 'Application/MANSCDP+xml');
  out += line('content-length', body.length);
  out += '\r\n';
  const head = Buffer.from(out, 'latin1');
  return body.length ? Buffer.concat([head, body]) : head;
}

/** A request the platform originates (MESSAGE queries, alarm responses). */
export function buildRequest(r: {
  method: string;
  uri: string;
  via: string;
  from: string;
  to: string;
  callId: string;
  cseq: number;
  headers?: [string, string | number][];
  body: Buffer;
  contentType: string;
}): Buffer {
  let out = `${r.method} ${r.uri} SIP/2.0\r\n`;
  out += line('via', r.via);
  out += line('from', r.from);
  out += line('to', r.to);
  out += line('call-id', r.callId);
  out += line('cseq', `${r.cseq} ${r.method}`);
  out += line('max-forwards', 70);
  for (const [k, v] of r.headers ?? []) out += line(k, v);
  if (r.body.length) out += line('content-type', r.contentType);
  out += line('content-length', r.body.length);
  out += '\r\n';
  return Buffer.concat([Buffer.from(out, 'latin1'), r.body]);
}

import { NameAddr, parseNameAddr, parseVia, ResponseBasis, Via } from './sip-message';

/**
 * The keepalive fast path. At one million devices every 60 s, Keepalive MESSAGEs are nearly all
 * the SIP traffic, and they all look alike. `scanKeepalive` recognises the common shape — CRLF
 * lines, canonical header spellings, one Via, a pure-ASCII `<Notify>` body with CmdType,
 * SN, DeviceID and an optional Status, nothing else — with a header scan and one regular
 * expression, instead of the general parser, the header Map, GB18030 decoding and the XML tree.
 * It only accepts what `parseSip` + `parseManscdp` would accept with the very same result;
 * anything unusual (folding, compact or odd-case names, other headers, several Vias, other
 * elements, non-ASCII bytes, Content-Length missing…) returns null and takes the full path.
 */
export interface FastKeepalive extends ResponseBasis {
  vias: string[];
  via: Via;
  from: NameAddr;
  to: NameAddr;
  callId: string;
  cseq: { seq: number; method: 'MESSAGE' };
}

/** Headers the fast path knows, in their canonical spelling (one bit each, to refuse duplicates). */
const KNOWN = new Map<string, number>([
  ['Via', 1],
  ['From', 2],
  ['To', 4],
  ['Call-ID', 8],
  ['CSeq', 16],
  ['Content-Type', 32],
  ['Content-Length', 64],
  ['Max-Forwards', 128],
  ['User-Agent', 256],
]);
const REQUIRED = 1 | 2 | 4 | 8 | 16 | 32 | 64;

/** XML whitespace only (not \s: latin1 NBSP and friends are not XML whitespace). */
const KEEPALIVE_BODY =
  /^[ \t\r\n]*(?:<\?xml[\x20-\x3e\x40-\x7e\t\r\n]*\?>[ \t\r\n]*)?<Notify>[ \t\r\n]*<CmdType>Keepalive<\/CmdType>[ \t\r\n]*<SN>\d{1,20}<\/SN>[ \t\r\n]*<DeviceID>[0-9A-Za-z]{1,64}<\/DeviceID>[ \t\r\n]*(?:<Status>[A-Za-z]{0,16}<\/Status>[ \t\r\n]*)?<\/Notify>[ \t\r\n]*$/;
const CSEQ = /^(\d{1,10})[ \t]+MESSAGE$/;
const CONTENT_TYPE = /^application\/manscdp\+xml\b/i;

export function scanKeepalive(buf: Buffer, maxBytes: number): FastKeepalive | null {
  if (buf.length > maxBytes || buf.length < 16) return null;
  // "MESSAGE " — a cheap first test so other methods and responses go straight to the parser.
  if (buf[0] !== 0x4d || buf[1] !== 0x45 || buf[2] !== 0x53 || buf[7] !== 0x20) return null;
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return null;
  const head = buf.toString('latin1', 0, end);
  // A bare LF anywhere would change where the general parser ends the header section.
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) return null;
  const start = head.slice(0, lineEnd);
  if (!start.startsWith('MESSAGE ') || !start.endsWith(' SIP/2.0') || /\s/.test(start.slice(8, -8)) || start.length <= 16) return null;
  let seen = 0;
  let via = '';
  let from = '';
  let to = '';
  let callId = '';
  let cseq = '';
  let ctype = '';
  let clen = '';
  let pos = lineEnd + 2;
  while (pos < head.length + 2) {
    lineEnd = head.indexOf('\r\n', pos);
    if (lineEnd < 0) lineEnd = head.length;
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon >= lineEnd) return null;
    const bit = KNOWN.get(head.slice(pos, colon));
    if (bit === undefined || seen & bit) return null;
    seen |= bit;
    const value = head.slice(colon + 1, lineEnd);
    if (value.indexOf('\n') >= 0 || value.indexOf('\r') >= 0) return null;
    const v = value.trim();
    if (v === '') return null;
    if (bit === 1) via = v;
    else if (bit === 2) from = v;
    else if (bit === 4) to = v;
    else if (bit === 8) callId = v;
    else if (bit === 16) cseq = v;
    else if (bit === 32) ctype = v;
    else if (bit === 64) clen = v;
    pos = lineEnd + 2;
  }
  if ((seen & REQUIRED) !== REQUIRED) return null;
  if (via.indexOf(',') >= 0 || callId.length > 256 || /\s/.test(callId) || !CONTENT_TYPE.test(ctype)) return null;
  const cs = CSEQ.exec(cseq);
  if (!cs || Number(cs[1]) > 2 ** 31 - 1) return null;
  if (!/^\d{1,9}$/.test(clen)) return null;
  const bodyStart = end + 4;
  const length = Number(clen);
  if (length > buf.length - bodyStart) return null;
  // Pure ASCII (latin1 = GB18030 there) by construction of the expression's character classes.
  if (!KEEPALIVE_BODY.test(buf.toString('latin1', bodyStart, bodyStart + length))) return null;
  try {
    return {
      vias: [via],
      via: parseVia(via),
      from: parseNameAddr(from, 'from'),
      to: parseNameAddr(to, 'to'),
      callId,
      cseq: { seq: Number(cs[1]), method: 'MESSAGE' },
    };
  } catch {
    return null; // the general parser will say what is wrong with it
  }
}

import { storableText } from '../../infra/text/storable';
import { Charset, decodeBody, decodeManscdpBody, encodeBody } from './charset';

export { decodeBody, encodeBody };

/**
 * MANSCDP (GB/T 28181 Annex A) bodies: small XML documents, GB18030 or UTF-8 (see charset.ts
 * for how a body's charset is chosen). The parser below handles the subset these documents
 * use — elements, attributes, text, entities, CDATA, comments, declarations — with limits on
 * depth and size, and throws XmlError on anything else. Every text and attribute value leaves
 * the parser storable (infra/text/storable.ts: no NUL, no lone surrogate, e.g. from `&#xD800;`).
 */

export class XmlError extends Error {}

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-z]+);/g, (all, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
    }
    return ENTITIES[e] ?? all;
  });
}

/** XML whitespace (space, tab, CR, LF) by char code: this runs per character on the keepalive hot path. */
const isWs = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/** Element limit: a 1 MiB TCP Catalog (gb28181.maxTcpMessageBytes) holds ~10,000 items of ~10 elements each. */
export function parseXml(src: string, limits = { maxDepth: 16, maxElements: 200_000 }): XmlElement {
  let i = 0;
  let count = 0;
  const n = src.length;
  const skipMisc = () => {
    for (;;) {
      while (i < n && isWs(src.charCodeAt(i))) i++;
      if (src.startsWith('<?', i)) {
        const e = src.indexOf('?>', i);
        if (e < 0) throw new XmlError('unterminated declaration');
        i = e + 2;
      } else if (src.startsWith('<!--', i)) {
        const e = src.indexOf('-->', i);
        if (e < 0) throw new XmlError('unterminated comment');
        i = e + 3;
      } else if (src.startsWith('<!DOCTYPE', i)) {
        throw new XmlError('DOCTYPE not allowed');
      } else return;
    }
  };
  const NAME = /[A-Za-z_][A-Za-z0-9_.:-]*/y;
  const readName = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(src);
    if (!m) throw new XmlError(`name expected at ${i}`);
    i += m[0].length;
    return m[0];
  };
  const element = (depth: number): XmlElement => {
    if (depth > limits.maxDepth) throw new XmlError('too deep');
    if (++count > limits.maxElements) throw new XmlError('too many elements');
    if (src[i] !== '<') throw new XmlError(`'<' expected at ${i}`);
    i++;
    const el: XmlElement = { name: readName(), attrs: {}, children: [], text: '' };
    for (;;) {
      while (i < n && isWs(src.charCodeAt(i))) i++;
      if (src.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      const a = readName();
      while (i < n && isWs(src.charCodeAt(i))) i++;
      if (src[i] !== '=') throw new XmlError(`'=' expected at ${i}`);
      i++;
      while (i < n && isWs(src.charCodeAt(i))) i++;
      const q = src[i];
      if (q !== '"' && q !== "'") throw new XmlError(`quote expected at ${i}`);
      const e = src.indexOf(q, i + 1);
      if (e < 0) throw new XmlError('unterminated attribute');
      el.attrs[a] = storableText(decodeEntities(src.slice(i + 1, e)));
      i = e + 1;
    }
    let text = '';
    for (;;) {
      if (i >= n) throw new XmlError(`unterminated <${el.name}>`);
      if (src.startsWith('</', i)) {
        i += 2;
        const close = readName();
        if (close !== el.name) throw new XmlError(`</${close}> closes <${el.name}>`);
        while (i < n && isWs(src.charCodeAt(i))) i++;
        if (src[i] !== '>') throw new XmlError(`'>' expected at ${i}`);
        i++;
        el.text = storableText(text.trim());
        return el;
      }
      if (src.startsWith('<!--', i)) {
        const e = src.indexOf('-->', i);
        if (e < 0) throw new XmlError('unterminated comment');
        i = e + 3;
      } else if (src.startsWith('<![CDATA[', i)) {
        const e = src.indexOf(']]>', i);
        if (e < 0) throw new XmlError('unterminated CDATA');
        text += src.slice(i + 9, e);
        i = e + 3;
      } else if (src[i] === '<') {
        el.children.push(element(depth + 1));
      } else {
        const e = src.indexOf('<', i);
        if (e < 0) throw new XmlError(`unterminated <${el.name}>`);
        text += decodeEntities(src.slice(i, e));
        i = e;
      }
    }
  };
  skipMisc();
  const root = element(0);
  skipMisc();
  if (i < n && src.slice(i).trim() !== '' && src.slice(i).replace(/\0/g, '').trim() !== '') throw new XmlError('content after the root element');
  return root;
}

/** The text of the first child with that name (case-sensitive as in the standard), or undefined. */
export function childText(el: XmlElement, name: string): string | undefined {
  for (const c of el.children) if (c.name === name) return c.text;
  return undefined;
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);

/** A field of a MANSCDP document: text, or nested fields (`<Info><AlarmMethod>…</AlarmMethod></Info>`). */
export type ManscdpField = [string, string | number | ManscdpField[]];

const fieldXml = ([k, v]: ManscdpField): string =>
  Array.isArray(v) ? `<${k}>\r\n${v.map(fieldXml).join('')}</${k}>\r\n` : `<${k}>${escapeXml(String(v))}</${k}>\r\n`;

/** A MANSCDP document (Query / Control / Response / Notify), GB18030-encoded. */
export function buildManscdp(root: 'Query' | 'Control' | 'Response' | 'Notify', fields: ManscdpField[]): Buffer {
  return encodeBody(`<?xml version="1.0" encoding="GB2312"?>\r\n<${root}>\r\n${fields.map(fieldXml).join('')}</${root}>\r\n`);
}

/** What the platform understands of a MANSCDP message. */
export interface ManscdpMessage {
  root: string;
  cmdType: string;
  sn: string;
  deviceId: string;
  el: XmlElement;
  /** Offset of the first byte that was neither UTF-8 nor GB18030 (decoded as U+FFFD: charset.ts); absent when every byte was read. */
  undecodableAt?: number;
}

/** Longest SN kept (GB/T 28181 says an integer; devices send millisecond timestamps, negatives, text). */
const MAX_SN_CHARS = 32;

/**
 * Parses a MANSCDP body; `charset` is the sending device's setting (auto: declared or detected).
 * Only CmdType is required: SN is kept as text of any form (cut to 32 characters; a millisecond
 * timestamp or `abc` from a registered device must not cost a keepalive or an alarm) and DeviceID
 * may be missing (callers fall back to the sender's id). A body that is not well-formed XML but
 * reads as an Alarm (`<CmdType>Alarm</CmdType>`) is salvaged field by field: "never lose an
 * alarm" comes before "reject bad input" (GB/T 28181-2016 §9.4: the alarm is the point of the
 * message). Throws XmlError when nothing usable can be read.
 */
export function parseManscdp(body: Buffer, charset: Charset = 'auto'): ManscdpMessage {
  const { text, undecodableAt } = decodeManscdpBody(body, charset);
  let el: XmlElement;
  try {
    el = parseXml(text);
  } catch (e) {
    const salvaged = salvageAlarm(text);
    if (!salvaged) throw e;
    el = salvaged;
  }
  const cmdType = childText(el, 'CmdType')?.trim();
  if (!cmdType) throw new XmlError('CmdType is required');
  const sn = (childText(el, 'SN') ?? '').trim().slice(0, MAX_SN_CHARS);
  const deviceId = (childText(el, 'DeviceID') ?? '').trim();
  return { root: el.name, cmdType, sn, deviceId, el, ...(undecodableAt >= 0 ? { undecodableAt } : {}) };
}

/** The flat fields of a broken body that says it is an Alarm (leaf elements by regular expression), or null. */
function salvageAlarm(text: string): XmlElement | null {
  if (!/<CmdType>\s*Alarm\s*<\/CmdType>/i.test(text)) return null;
  const root = /<\s*([A-Za-z]+)[^>]*>/.exec(text.replace(/<\?[^>]*\?>/g, ''))?.[1] ?? 'Notify';
  const el: XmlElement = { name: root, attrs: {}, children: [], text: '' };
  const leaf = /<([A-Za-z][A-Za-z0-9_]{0,40})>([^<]{0,2000})<\/\1>/g;
  for (let m = leaf.exec(text); m && el.children.length < 64; m = leaf.exec(text))
    el.children.push({ name: m[1], attrs: {}, children: [], text: storableText(decodeEntities(m[2]).trim()) });
  el.children = el.children.filter((c) => c.name !== 'CmdType');
  el.children.unshift({ name: 'CmdType', attrs: {}, children: [], text: 'Alarm' });
  return el;
}

import { analyse } from 'chardet';
import * as iconv from 'iconv-lite';
import { ErrorCode, Errors } from '../http/errors';
import { firstInvalidGb18030, firstInvalidUtf16, firstInvalidUtf8, lineOfOffset } from '../text/encodings';

/**
 * The text of a CSV file, in the encoding it was saved in — or a refusal, never a guess.
 *
 * zh-CN Excel saves CSV in GBK (GB18030 is its superset) without a BOM; other tools save UTF-8,
 * with or without a BOM. About 930 common GBK characters pair up into byte sequences that are
 * also valid UTF-8 (`围墙` → `Χǽ`), so "valid UTF-8" proves nothing. The decision:
 *
 * 1. A BOM names the encoding (UTF-8, UTF-16LE/BE) — a claim, checked: when the bytes after it are
 *    not valid in that encoding (a GBK file a tool put a UTF-8 BOM in front of), the file is refused
 *    naming the first invalid byte and its line, never decoded into U+FFFD replacement characters.
 * 2. Pure ASCII is ASCII (UTF-8).
 * 3. Otherwise each candidate (UTF-8 when the bytes are valid UTF-8, and GB18030) is decoded and
 *    scored for plausibility (see `plausibility`): the share of its non-ASCII characters that are
 *    text a school's registry is written in; C1 controls and U+FFFD count against it. chardet (a
 *    port of Mozilla's universal detector) orders candidates that score alike and names what
 *    else the file might be in the refusal (alone it is not enough: it calls the GBK file of
 *    issue 12 "UTF-8, 100 %").
 * 4. One candidate at or above `minScore`, clearly ahead of the other: that is the encoding — when
 *    the whole file is valid in it (the plausibility sample tolerates a few bad bytes; the decode
 *    would turn them into U+FFFD). Anything else (both plausible, none plausible, an encoding we do
 *    not read, bytes invalid in the winner) is refused with IMPORT.UNSURE_ENCODING asking for
 *    UTF-8 — mojibake and replacement characters are never stored silently.
 */
export type TextEncoding = 'UTF-8' | 'UTF-8 (BOM)' | 'UTF-16LE (BOM)' | 'UTF-16BE (BOM)' | 'GB18030';

export interface Decoded {
  text: string;
  encoding: TextEncoding;
}

/** How much better the winner must score than the other candidate. */
const MARGIN = 0.3;
/** Bytes scored (a plausibility sample; the whole file is still decoded). */
const SAMPLE_BYTES = 256 * 1024;

const unsure = (why: string, details: Record<string, unknown>) =>
  Errors.badRequest(
    ErrorCode.IMPORT.UNSURE_ENCODING,
    `无法确定文件编码（${why}）：请在 Excel 中“另存为”选择“CSV UTF-8（逗号分隔）”（带 BOM）后重新上传`,
    details,
  );

/** The bytes after a BOM (or of the detected encoding) are not valid in it: refused, naming where. */
function invalidBytes(buf: Buffer, encoding: TextEncoding, offset: number, from: number, utf16?: 'LE' | 'BE'): never {
  const line = utf16 ? lineOfOffset(buf, offset, from, 2, utf16 === 'LE') : lineOfOffset(buf, offset, from);
  const claim = encoding.endsWith('(BOM)') ? `文件开头的 BOM 表明是 ${encoding.replace(' (BOM)', '')}，但` : `按 ${encoding} 读取时，`;
  throw unsure(`${claim}第 ${line} 行（字节偏移 ${offset}）不是有效的 ${encoding.replace(' (BOM)', '')} 字符，可能是其他编码`, {
    encoding,
    byteOffset: offset,
    line,
  });
}

/**
 * Is `ch` common Chinese text? GB2312 hanzi (rows 0xB0–0xF7) and its punctuation, full-width
 * forms and CJK symbols (rows 0xA1–0xA3), by its GBK code: the 7,000 characters school names,
 * places and people's names are written in. GB2312's Greek, Cyrillic and kana rows are not.
 */
function commonChinese(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x2000 || cp > 0xffef) return false;
  const b = iconv.encode(ch, 'gbk');
  if (b.length !== 2 || b[1] < 0xa1 || b[1] > 0xfe) return false;
  return (b[0] >= 0xb0 && b[0] <= 0xf7) || (b[0] >= 0xa1 && b[0] <= 0xa3);
}

/**
 * Share (0–1) of the non-ASCII characters of `text` that are plausible text; 1 for ASCII-only
 * text. Plausible: common Chinese text; read as UTF-8, also any CJK ideograph and the accented
 * Latin letters of names and vendors (U+00C0–U+017F). GBK read as UTF-8 comes out as Greek,
 * Cyrillic, Armenian and symbols (`Χǽ`, `У԰`, `Сѧ¥`), none of which counts.
 */
export function plausibility(text: string, as: 'UTF-8' | 'GB18030' = 'GB18030'): number {
  let nonAscii = 0;
  let good = 0;
  const cache = new Map<string, boolean>();
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) continue;
    nonAscii++;
    if ((cp >= 0x80 && cp <= 0x9f) || cp === 0xfffd) continue; // C1 controls, undecodable bytes
    if (as === 'UTF-8' && ((cp >= 0xc0 && cp <= 0x17f && cp !== 0xd7 && cp !== 0xf7) || (cp >= 0x4e00 && cp <= 0x9fff))) {
      good++;
      continue;
    }
    let ok = cache.get(ch);
    if (ok === undefined) cache.set(ch, (ok = commonChinese(ch)));
    if (ok) good++;
  }
  return nonAscii === 0 ? 1 : good / nonAscii;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function validUtf8(buf: Buffer): string | null {
  try {
    return utf8.decode(buf);
  } catch {
    return null;
  }
}

/** Decodes CSV bytes (see the module comment); throws IMPORT.UNSURE_ENCODING rather than guess. */
export function decodeText(buf: Buffer, minScore: number): Decoded {
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
    const bad = firstInvalidUtf8(buf, 3);
    if (bad >= 0) invalidBytes(buf, 'UTF-8 (BOM)', bad, 3);
    return { text: buf.toString('utf8', 3), encoding: 'UTF-8 (BOM)' };
  }
  for (const [b0, b1, le] of [
    [0xff, 0xfe, true],
    [0xfe, 0xff, false],
  ] as const) {
    if (buf[0] !== b0 || buf[1] !== b1) continue;
    const encoding = le ? 'UTF-16LE (BOM)' : 'UTF-16BE (BOM)';
    const bad = firstInvalidUtf16(buf, 2, le);
    if (bad >= 0) invalidBytes(buf, encoding, bad, 2, le ? 'LE' : 'BE');
    return { text: iconv.decode(buf.subarray(2), le ? 'utf16le' : 'utf16be'), encoding };
  }
  const asUtf8 = validUtf8(buf);
  if (asUtf8 !== null && buf.every((b) => b < 0x80)) return { text: asUtf8, encoding: 'UTF-8' };

  const sample = buf.subarray(0, SAMPLE_BYTES);
  // chardet's ranking of the encodings we read; its other guesses only explain a refusal.
  const ranked = analyse(sample);
  const rank = (name: string) => {
    const i = ranked.findIndex((r) => r.name === name || (name === 'GB18030' && /^(GBK|GB2312|GB18030)$/i.test(r.name)));
    return i < 0 ? ranked.length : i;
  };
  const sampleUtf8 = asUtf8 === null ? null : (validUtf8(sample) ?? new TextDecoder('utf-8').decode(sample)); // a sample may cut a character
  const scores = {
    'UTF-8': sampleUtf8 === null ? -1 : plausibility(sampleUtf8, 'UTF-8'),
    GB18030: plausibility(iconv.decode(sample, 'gb18030'), 'GB18030'),
  };
  const details = {
    scores: { 'UTF-8': round(scores['UTF-8']), GB18030: round(scores.GB18030) },
    detected: ranked.slice(0, 3).map((r) => `${r.name} ${r.confidence}%`),
  };
  const [first, second] = (['UTF-8', 'GB18030'] as const).slice().sort((a, b) => scores[b] - scores[a] || rank(a) - rank(b));
  if (scores[first] < minScore) throw unsure('内容不像中文文本，可能是其他编码', details);
  if (scores[first] - scores[second] < MARGIN) throw unsure('按 UTF-8 和 GBK 读都像文本', details);
  if (first === 'UTF-8') return { text: asUtf8!, encoding: 'UTF-8' };
  const bad = firstInvalidGb18030(buf);
  if (bad >= 0) invalidBytes(buf, 'GB18030', bad, 0);
  return { text: iconv.decode(buf, 'gb18030'), encoding: 'GB18030' };
}

const round = (x: number) => Math.round(x * 1000) / 1000;

import { isUtf8 } from 'node:buffer';
import * as iconv from 'iconv-lite';
import { firstInvalidGb18030, firstInvalidUtf8 } from '../../infra/text/encodings';

/**
 * The character set of MANSCDP bodies. GB/T 28181-2016 §A.1 declares GB2312 (the 2022 edition
 * allows UTF-8 too); in the field, older Hikvision/Dahua firmware sends GB2312/GBK/GB18030 bytes
 * whatever it declares, newer Dahua/Uniview firmware and lower-level platforms send UTF-8, some
 * with a byte-order mark. Decoding (iconv-lite for GB18030, Node for UTF-8):
 *
 * - pure ASCII (every keepalive): the same in all three, decoded as latin1 without further checks;
 * - a BOM (UTF-8 EF BB BF, GB18030 84 31 95 33) says which, and is stripped — when the bytes after
 *   it are valid in that charset: a BOM is a claim, and firmware that puts a UTF-8 BOM before GB2312
 *   bytes exists; a BOM the bytes contradict is ignored and the charset detected as below;
 * - a per-device override (`gb_devices.charset`: GB18030 / UTF-8) wins over everything else, unless
 *   the bytes are not valid in it and are in the other (decoding them in the override would only
 *   give U+FFFD);
 * - `auto`: the declared encoding (`<?xml … encoding="…"?>`) when the bytes are valid in it —
 *   declared UTF-8 and valid UTF-8 → UTF-8; declared GB2312/GBK/GB18030 (or nothing) and valid,
 *   plausible GB18030 → GB18030; otherwise detected: valid UTF-8 → UTF-8, else GB18030.
 *
 * "Plausible GB18030" when the bytes are valid in both: every double-byte character lies in the
 * GB2312 area actually assigned (rows A1–A9 symbols, B0–F7 hanzi; trail A1–FE) and there are no
 * four-byte sequences. UTF-8 Chinese read as GB18030 almost always puts a continuation byte
 * (80–BF) where a GB2312 trail or lead cannot be; real GB text beyond GB2312 (萳, 喆镕堃, 㐀, 𠀾)
 * is never valid UTF-8, so it never reaches this test.
 *
 * Bytes valid in neither charset (a corrupt or truncated body) are still decoded — an alarm is not
 * dropped for one bad byte of its description — in the charset that reads further before its first
 * bad byte (on a tie the claimed one: BOM, override, declaration; GB18030 by default), with U+FFFD
 * where bytes could not be read; `decodeManscdpBody` says where the
 * first one was, and the SIP server counts and logs it (never silently).
 */
export const CHARSETS = ['auto', 'GB18030', 'UTF-8'] as const;
export type Charset = (typeof CHARSETS)[number];

/** True when every byte is below 0x80 (a tight loop; no allocation). */
function isAscii(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] > 0x7f) return false;
  return true;
}

/**
 * Structural GB18030 validity (GB 18030-2005 §5: one byte 00–7F (80 and FF are not characters),
 * two bytes 81–FE + 40–7E/80–FE, four bytes 81–FE 30–39 81–FE 30–39); `plausible` is set false
 * by a four-byte sequence or a double-byte character outside GB2312's assigned rows.
 */
function gb18030Shape(b: Buffer, from: number): { valid: boolean; plausible: boolean } {
  let plausible = true;
  for (let i = from; i < b.length;) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c === 0x80 || c === 0xff || i + 1 >= b.length) return { valid: false, plausible: false };
    const d = b[i + 1];
    if (d >= 0x30 && d <= 0x39) {
      if (i + 3 >= b.length) return { valid: false, plausible: false };
      const e = b[i + 2];
      const f = b[i + 3];
      if (e < 0x81 || e > 0xfe || f < 0x30 || f > 0x39) return { valid: false, plausible: false };
      plausible = false;
      i += 4;
      continue;
    }
    if (d < 0x40 || d === 0x7f || d === 0xff) return { valid: false, plausible: false };
    if (!(((c >= 0xa1 && c <= 0xa9) || (c >= 0xb0 && c <= 0xf7)) && d >= 0xa1 && d <= 0xfe)) plausible = false;
    i += 2;
  }
  return { valid: true, plausible };
}

/** The `encoding` of the XML declaration, upper-cased ('' when there is none); reads at most the first 128 bytes. */
function declaredEncoding(b: Buffer, from: number): string {
  const head = b.toString('latin1', from, Math.min(b.length, from + 128));
  const m = /^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9_.:-]{1,32})["']/.exec(head);
  return m ? m[1].toUpperCase() : '';
}

const GB_FAMILY = new Set(['GB2312', 'GBK', 'GB18030', 'GB_2312-80', 'CP936', 'EUC-CN', 'X-GBK']);

export interface DetectedCharset {
  charset: 'ASCII' | 'GB18030' | 'UTF-8';
  bomLength: number;
  /** Offset of the first byte that is not a character in `charset` (valid in neither charset); absent when all are. */
  undecodableAt?: number;
}

/** Which charset `decodeBody` would use for these bytes (after a BOM), for tests and metrics. */
export function detectCharset(body: Buffer, override: Charset = 'auto'): DetectedCharset {
  let bom = 0;
  let byBom: 'GB18030' | 'UTF-8' | null = null;
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) {
    bom = 3;
    byBom = 'UTF-8';
  } else if (body.length >= 4 && body[0] === 0x84 && body[1] === 0x31 && body[2] === 0x95 && body[3] === 0x33) {
    bom = 4;
    byBom = 'GB18030';
  }
  if (isAscii(body, bom)) return { charset: 'ASCII', bomLength: bom };
  const utf8 = isUtf8(bom ? body.subarray(bom) : body);
  let gbBad: number | undefined;
  const gbValid = () => (gbBad ??= firstInvalidGb18030(body, bom)) < 0;
  const valid = (c: 'GB18030' | 'UTF-8') => (c === 'UTF-8' ? utf8 : gbValid());
  const other = (c: 'GB18030' | 'UTF-8') => (c === 'UTF-8' ? 'GB18030' : 'UTF-8');
  // Valid in neither: decoded in the charset that reads further before its first bad byte (the claimed one on a tie),
  // with U+FFFD for what cannot be read, and said where.
  const lossy = (claimed: 'GB18030' | 'UTF-8'): DetectedCharset => {
    const at = { 'UTF-8': firstInvalidUtf8(body, bom), GB18030: (gbBad ??= firstInvalidGb18030(body, bom)) };
    const c = at[other(claimed)] > at[claimed] ? other(claimed) : claimed;
    return { charset: c, bomLength: bom, undecodableAt: at[c] };
  };
  const claimed = override !== 'auto' ? override : byBom;
  if (claimed) {
    if (valid(claimed)) return { charset: claimed, bomLength: bom };
    if (valid(other(claimed))) return { charset: other(claimed), bomLength: bom };
    return lossy(claimed);
  }
  const declared = declaredEncoding(body, bom);
  if (declared === 'UTF-8' || declared === 'UTF8')
    return utf8 ? { charset: 'UTF-8', bomLength: bom } : gbValid() ? { charset: 'GB18030', bomLength: bom } : lossy('UTF-8');
  if (!utf8) return gbValid() ? { charset: 'GB18030', bomLength: bom } : lossy('GB18030');
  // Valid UTF-8, declared GB-something or nothing: GB18030 only when it is that too and reads as GB2312 text.
  const gb = gb18030Shape(body, bom);
  const gbDeclared = declared === '' || GB_FAMILY.has(declared);
  return { charset: gbDeclared && gb.valid && gb.plausible ? 'GB18030' : 'UTF-8', bomLength: bom };
}

/** A MANSCDP body as text, and where its first undecodable byte was (-1: none; see the module comment). */
export function decodeManscdpBody(body: Buffer, override: Charset = 'auto'): { text: string; undecodableAt: number } {
  const { charset, bomLength, undecodableAt = -1 } = detectCharset(body, override);
  if (charset === 'ASCII') return { text: body.toString('latin1', bomLength), undecodableAt };
  if (charset === 'UTF-8') return { text: body.toString('utf8', bomLength), undecodableAt };
  return { text: iconv.decode(bomLength ? body.subarray(bomLength) : body, 'gb18030'), undecodableAt };
}

/** A MANSCDP body as text (see the module comment for the rules); `override` is the device's setting. */
export function decodeBody(body: Buffer, override: Charset = 'auto'): string {
  return decodeManscdpBody(body, override).text;
}

/** What the platform sends: GB18030 (declared GB2312, GB/T 28181-2016 §A.1), which every device reads. */
export function encodeBody(xml: string): Buffer {
  return iconv.encode(xml, 'gb18030');
}

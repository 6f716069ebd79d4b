import { isUtf8 } from 'node:buffer';

/**
 * Is this byte sequence really in the encoding it is about to be decoded as? Decoders replace what
 * they cannot read — Node's UTF-8 with U+FFFD, iconv-lite's GB18030 with U+FFFD, lone surrogates or
 * code points the standard never assigned — and the text then looks read. A byte-order mark or an
 * XML declaration is a claim about the bytes, not proof: these scans check the bytes themselves and
 * name the first one that is not a character (-1 when all are), so a caller refuses (an upload) or
 * says what it could not read (a device's message) instead of storing replacement characters.
 * Shared by the CSV reader (infra/tabular/charset.ts) and the GB/T 28181 MANSCDP decoder
 * (modules/gb28181/charset.ts).
 */

/** Offset of the first byte of `b` (from `from`) that does not start or continue a well-formed UTF-8 character; -1 when valid. */
export function firstInvalidUtf8(b: Uint8Array, from = 0): number {
  if (isUtf8(b.subarray(from))) return -1;
  for (let i = from; i < b.length;) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    // RFC 3629 table 3-7: the second byte's range depends on the first (no overlongs, no surrogates, ≤ U+10FFFF).
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n >= b.length) return i; // cut short at the end
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return i;
    i += n + 1;
  }
  return -1;
}

/** GB18030 four-byte sequences → their linear index (0 = 81 30 81 30). */
const linear = (b1: number, b2: number, b3: number, b4: number) => (((b1 - 0x81) * 10 + (b2 - 0x30)) * 126 + (b3 - 0x81)) * 10 + (b4 - 0x30);
/** 81 30 81 30 … 84 31 A4 39: the rest of the BMP. */
const BMP_LAST = 39419;
/** 90 30 81 30 … E3 32 9A 35: U+10000 … U+10FFFF. */
const SUPPLEMENTARY_FIRST = 189000;
const SUPPLEMENTARY_LAST = 1237575;

/**
 * Offset of the first byte of `b` (from `from`) that does not start a GB18030 character (GB 18030-2005
 * §5: one byte 00–7F; two bytes 81–FE + 40–7E/80–FE; four bytes 81–FE 30–39 81–FE 30–39 within the
 * two assigned ranges); -1 when valid. 0x80 alone is taken as the euro sign, as Windows code page 936
 * writes it (zh-CN Excel's CSV) and iconv-lite reads it. iconv-lite would decode the unassigned
 * four-byte ranges too — as wrong code points or lone surrogates — hence the range check.
 */
export function firstInvalidGb18030(b: Uint8Array, from = 0): number {
  for (let i = from; i < b.length;) {
    const c = b[i];
    if (c <= 0x80) {
      i++;
      continue;
    }
    if (c === 0xff || i + 1 >= b.length) return i;
    const d = b[i + 1];
    if (d >= 0x30 && d <= 0x39) {
      if (i + 3 >= b.length) return i;
      const e = b[i + 2];
      const f = b[i + 3];
      if (e < 0x81 || e > 0xfe || f < 0x30 || f > 0x39) return i;
      const n = linear(c, d, e, f);
      if (n > BMP_LAST && (n < SUPPLEMENTARY_FIRST || n > SUPPLEMENTARY_LAST)) return i;
      i += 4;
      continue;
    }
    if (d < 0x40 || d === 0x7f || d === 0xff) return i;
    i += 2;
  }
  return -1;
}

/** Offset of the first byte of `b` (from `from`) that is not well-formed UTF-16 (an odd byte at the end, an unpaired surrogate); -1 when valid. */
export function firstInvalidUtf16(b: Uint8Array, from: number, littleEndian: boolean): number {
  const unit = (i: number) => (littleEndian ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]);
  for (let i = from; i < b.length; i += 2) {
    if (i + 1 >= b.length) return i;
    const u = unit(i);
    if (u >= 0xdc00 && u <= 0xdfff) return i;
    if (u >= 0xd800 && u <= 0xdbff) {
      if (i + 3 >= b.length) return i;
      const v = unit(i + 2);
      if (v < 0xdc00 || v > 0xdfff) return i;
      i += 2;
    }
  }
  return -1;
}

/** The line (1-based) byte `offset` of `b` is on: line feeds before it, plus one (`unit` 2 for UTF-16, counting 0x000A units). */
export function lineOfOffset(b: Uint8Array, offset: number, from = 0, unit: 1 | 2 = 1, littleEndian = true): number {
  let line = 1;
  if (unit === 1) {
    for (let i = from; i < offset; i++) if (b[i] === 0x0a) line++;
    return line;
  }
  for (let i = from; i + 1 < offset; i += 2) if (littleEndian ? b[i] === 0x0a && b[i + 1] === 0 : b[i] === 0 && b[i + 1] === 0x0a) line++;
  return line;
}

import { isUtf8 } from 'node:buffer';
import * as iconv from 'iconv-lite';

/**
 * The character set of MANSCDP bodies. GB/T 28181-2016 §A.1 declares GB2312 (the 2022 edition
 * allows UTF-8 too); in the field, older Hikvision/Dahua firmware sends GB2312/GBK/GB18030 bytes
 * whatever it declares, newer Dahua/Uniview firmware and lower-level platforms send UTF-8, some
 * with a byte-order mark. Decoding (iconv-lite for GB18030, Node for UTF-8):
 *
 * - pure ASCII (every keepalive): the same in all three, decoded as latin1 without further checks;
 * - a BOM (UTF-8 EF BB BF, GB18030 84 31 95 33) says which, and is stripped;
 * - a per-device override (`gb_devices.charset`: GB18030 / UTF-8) wins over everything else;
 * - `auto`: the declared encoding (`<?xml … encoding="…"?>`) when the bytes are valid in it —
 *   declared UTF-8 and valid UTF-8 → UTF-8; declared GB2312/GBK/GB18030 (or nothing) and valid,
 *   plausible GB18030 → GB18030; otherwise detected: valid UTF-8 → UTF-8, else GB18030.
 *
 * "Plausible GB18030" when the bytes are valid in both: every double-byte character lies in the
 * GB2312 area actually assigned (rows A1–A9 symbols, B0–F7 hanzi; trail A1–FE) and there are no
 * four-byte sequences. UTF-8 Chinese read as GB18030 almost always puts a continuation byte
 * (80–BF) where a GB2312 trail or lead cannot be; real GB text beyond GB2312 (萳, 喆镕堃, 㐀, 𠀾)
 * is never valid UTF-8, so it never reaches this test.
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

/** Which charset `decodeBody` would use for these bytes (after a BOM), for tests and metrics. */
export function detectCharset(body: Buffer, override: Charset = 'auto'): { charset: 'ASCII' | 'GB18030' | 'UTF-8'; bomLength: number } {
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
  if (override !== 'auto') return { charset: override, bomLength: bom };
  if (byBom) return { charset: byBom, bomLength: bom };
  const rest = bom ? body.subarray(bom) : body;
  const utf8 = isUtf8(rest);
  const declared = declaredEncoding(body, bom);
  if (declared === 'UTF-8' || declared === 'UTF8') return { charset: utf8 ? 'UTF-8' : 'GB18030', bomLength: bom };
  if (!utf8) return { charset: 'GB18030', bomLength: bom };
  // Valid UTF-8, declared GB-something or nothing: GB18030 only when it is that too and reads as GB2312 text.
  const gb = gb18030Shape(body, bom);
  const gbDeclared = declared === '' || GB_FAMILY.has(declared);
  return { charset: gbDeclared && gb.valid && gb.plausible ? 'GB18030' : 'UTF-8', bomLength: bom };
}

/** A MANSCDP body as text (see the module comment for the rules); `override` is the device's setting. */
export function decodeBody(body: Buffer, override: Charset = 'auto'): string {
  const { charset, bomLength } = detectCharset(body, override);
  if (charset === 'ASCII') return body.toString('latin1', bomLength);
  if (charset === 'UTF-8') return body.toString('utf8', bomLength);
  return iconv.decode(bomLength ? body.subarray(bomLength) : body, 'gb18030');
}

/** What the platform sends: GB18030 (declared GB2312, GB/T 28181-2016 §A.1), which every device reads. */
export function encodeBody(xml: string): Buffer {
  return iconv.encode(xml, 'gb18030');
}

import type { VideoCodec } from './elementary';

/**
 * MPEG-2 program stream (ISO/IEC 13818-1 §2.5) as GB/T 28181 cameras send it (Annex C; the
 * Hikvision / Dahua layout): every picture is a pack header followed by PES packets of at most
 * ~64 KB (a keyframe spans several), and every keyframe's pack also carries a system header and
 * a program stream map (PSM) naming the video stream type (0x1B H.264, 0x24 H.265). ffmpeg's own
 * `-f mpeg` muxer writes no PSM, which is why this fixture writes the stream itself.
 */
export const STREAM_TYPE: Record<VideoCodec, number> = { h264: 0x1b, h265: 0x24 };
const VIDEO_ID = 0xe0;
const MAX_PES_PAYLOAD = 65_000;

let CRC_TABLE: Uint32Array | null = null;
/** CRC-32/MPEG-2 (poly 0x04C11DB7, not reflected, init 0xFFFFFFFF), as in PSM and PMT. */
export function crc32mpeg(buf: Buffer): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i << 24;
      for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
      CRC_TABLE[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of buf) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]) >>> 0;
  return crc >>> 0;
}

/** 33-bit timestamp in the 5-byte PES form with the given 4-bit prefix. */
function timestamp(prefix: number, ts: number): Buffer {
  const hi = Math.floor(ts / 2 ** 30) & 0x07;
  const mid = Math.floor(ts / 2 ** 15) & 0x7fff;
  const lo = ts & 0x7fff;
  return Buffer.from([(prefix << 4) | (hi << 1) | 1, mid >> 7, ((mid & 0x7f) << 1) | 1, lo >> 7, ((lo & 0x7f) << 1) | 1]);
}

export function packHeader(scr: number, muxRateBytesPer50: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt32BE(0x000001ba, 0);
  const hi = Math.floor(scr / 2 ** 30) & 0x07;
  const mid = Math.floor(scr / 2 ** 15) & 0x7fff;
  const lo = scr & 0x7fff;
  // '01' SCR[32..30] '1' SCR[29..15] '1' SCR[14..0] '1' SCR_ext(9)=0 '1'
  b[4] = 0x40 | (hi << 3) | 0x04 | (mid >> 13);
  b[5] = (mid >> 5) & 0xff;
  b[6] = ((mid & 0x1f) << 3) | 0x04 | (lo >> 13);
  b[7] = (lo >> 5) & 0xff;
  b[8] = ((lo & 0x1f) << 3) | 0x04;
  b[9] = 0x01;
  const rate = muxRateBytesPer50 & 0x3fffff;
  b[10] = rate >> 14;
  b[11] = (rate >> 6) & 0xff;
  b[12] = ((rate & 0x3f) << 2) | 0x03;
  b[13] = 0xf8; // reserved, no stuffing
  return b;
}

export function systemHeader(rateBound: number): Buffer {
  const b = Buffer.alloc(15);
  b.writeUInt32BE(0x000001bb, 0);
  b.writeUInt16BE(9, 4);
  const r = rateBound & 0x3fffff;
  b[6] = 0x80 | (r >> 15);
  b[7] = (r >> 7) & 0xff;
  b[8] = ((r & 0x7f) << 1) | 1;
  b[9] = 0x04; // audio_bound 1, fixed 0, CSPS 0
  b[10] = 0xe1; // audio lock, video lock, marker, video_bound 1
  b[11] = 0xff; // packet_rate_restriction 1, reserved
  b[12] = VIDEO_ID;
  b[13] = 0xe0 | 0x20 | 0x00; // '11', P-STD scale 1 (×1024), size bound high bits
  b[14] = 0x80; // P-STD_buffer_size_bound = 128 × 1024 bytes
  return b;
}

export function programStreamMap(codec: VideoCodec): Buffer {
  const entries = Buffer.from([STREAM_TYPE[codec], VIDEO_ID, 0x00, 0x00]);
  const body = Buffer.concat([Buffer.from([0xe0, 0xff, 0x00, 0x00, 0x00, entries.length]), entries]);
  const head = Buffer.alloc(6);
  head.writeUInt32BE(0x000001bc, 0);
  head.writeUInt16BE(body.length + 4, 4);
  const withoutCrc = Buffer.concat([head, body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32mpeg(withoutCrc), 0);
  return Buffer.concat([withoutCrc, crc]);
}

/** PES packets carrying one access unit: the first with the PTS, the rest continuations. */
export function pesPackets(au: Buffer, pts: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < au.length || off === 0; off += MAX_PES_PAYLOAD) {
    const chunk = au.subarray(off, off + MAX_PES_PAYLOAD);
    const first = off === 0;
    const head = Buffer.alloc(9);
    head.writeUInt32BE(0x00000100 | VIDEO_ID, 0);
    const hdrData = first ? timestamp(0x2, pts) : Buffer.alloc(0);
    head.writeUInt16BE(3 + hdrData.length + chunk.length, 4);
    head[6] = first ? 0x84 : 0x80; // '10', data_alignment on the first
    head[7] = first ? 0x80 : 0x00; // PTS only (cameras send no B-frames)
    head[8] = hdrData.length;
    out.push(head, hdrData, chunk);
    if (au.length === 0) break;
  }
  return out;
}

/** One picture as program stream bytes: pack header, on keyframes system header + PSM, PES. */
export function psFrame(au: Buffer, keyframe: boolean, pts: number, codec: VideoCodec, bitrateBps = 4_000_000): Buffer {
  const scr = Math.max(0, pts - 3600);
  const parts = [packHeader(scr, Math.ceil(bitrateBps / 8 / 50))];
  if (keyframe) parts.push(systemHeader(Math.ceil(bitrateBps / 8 / 50)), programStreamMap(codec));
  parts.push(...pesPackets(au, pts));
  return Buffer.concat(parts);
}

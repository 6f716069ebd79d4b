/**
 * Just enough ISO BMFF (ISO/IEC 14496-12) to relay ffmpeg's fragmented MP4 to many viewers:
 * split the byte stream into top-level boxes, tell the init segment (ftyp + moov) from media
 * fragments (moof + mdat), whether a fragment starts with a sync sample (a keyframe, where a
 * late viewer can join), and the RFC 6381 codec string MSE's addSourceBuffer needs.
 */

export interface Box {
  type: string;
  /** Offset of the box (header included) within the buffer it was found in. */
  start: number;
  /** Offset of the payload (after size, type and any largesize). */
  body: number;
  end: number;
}

/** The boxes directly inside `buf[from, to)`; stops at a truncated or malformed box. */
export function boxes(buf: Buffer, from = 0, to = buf.length): Box[] {
  const out: Box[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > to) break;
      size = Number(buf.readBigUInt64BE(at + 8));
      body = at + 16;
    } else if (size === 0) size = to - at;
    if (size < body - at || at + size > to) break;
    out.push({ type, start: at, body, end: at + size });
    at += size;
  }
  return out;
}

export function child(buf: Buffer, parent: Box | null, type: string, skip = 0): Box | undefined {
  return boxes(buf, (parent ? parent.body : 0) + skip, parent ? parent.end : buf.length).find((b) => b.type === type);
}

/** Walks a path of container boxes (`['moov', 'trak', 'mdia']`). */
export function path(buf: Buffer, types: string[], from: Box | null = null): Box | undefined {
  let cur: Box | null = from;
  for (const t of types) {
    const next = child(buf, cur, t);
    if (!next) return undefined;
    cur = next;
  }
  return cur ?? undefined;
}

/**
 * Incremental splitter of a top-level box stream (ffmpeg's stdout). Holds at most one
 * incomplete box; refuses boxes larger than `maxBoxBytes` (a runaway stream, never a real
 * fragment) by throwing, so the caller restarts the remuxer.
 */
export class BoxSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxBoxBytes: number) {}

  push(chunk: Buffer, emit: (type: string, box: Buffer) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.pendingBytes < 8) return;
      let head = this.pending[0];
      if (head.length < 16 && this.pending.length > 1) {
        head = Buffer.concat(this.pending);
        this.pending = [head];
      }
      let size = head.readUInt32BE(0);
      if (size === 1) {
        if (head.length < 16) return;
        size = Number(head.readBigUInt64BE(8));
      }
      if (size < 8 || size > this.maxBoxBytes) throw new Error(`fMP4 box of ${size} bytes refused`);
      if (this.pendingBytes < size) return;
      const all = this.pending.length === 1 ? head : Buffer.concat(this.pending);
      const box = all.subarray(0, size);
      const rest = all.subarray(size);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      emit(box.toString('latin1', 4, 8), box);
    }
  }
}

const SAMPLE_NON_SYNC = 0x00010000;

/** Whether a moof's first sample is a sync sample (trun first-sample / per-sample flags, else tfhd default). */
export function moofStartsWithKeyframe(moof: Buffer, trexDefaultFlags = SAMPLE_NON_SYNC): boolean {
  const root: Box = { type: 'moof', start: 0, body: 8, end: moof.length };
  const traf = child(moof, root, 'traf');
  if (!traf) return false;
  const tfhd = child(moof, traf, 'tfhd');
  let defaultFlags = trexDefaultFlags;
  if (tfhd) {
    const flags = moof.readUInt32BE(tfhd.body) & 0xffffff;
    let at = tfhd.body + 8; // version/flags + track_ID
    if (flags & 0x01) at += 8; // base_data_offset
    if (flags & 0x02) at += 4; // sample_description_index
    if (flags & 0x08) at += 4; // default_sample_duration
    if (flags & 0x10) at += 4; // default_sample_size
    if (flags & 0x20 && at + 4 <= tfhd.end) defaultFlags = moof.readUInt32BE(at);
  }
  const trun = child(moof, traf, 'trun');
  if (!trun) return false;
  const flags = moof.readUInt32BE(trun.body) & 0xffffff;
  let at = trun.body + 8; // version/flags + sample_count
  if (flags & 0x01) at += 4; // data_offset
  if (flags & 0x04) return (moof.readUInt32BE(at) & SAMPLE_NON_SYNC) === 0;
  if (flags & 0x400) {
    if (flags & 0x100) at += 4;
    if (flags & 0x200) at += 4;
    return (moof.readUInt32BE(at) & SAMPLE_NON_SYNC) === 0;
  }
  return (defaultFlags & SAMPLE_NON_SYNC) === 0;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** Codec of the first video track of an init segment (ftyp + moov): `avc1.4d401f`, or `hvc1`/`hev1` (HEVC). */
export function initCodec(init: Buffer): { codec: string; hevc: boolean; width: number; height: number } | null {
  const moov = boxes(init).find((b) => b.type === 'moov');
  if (!moov) return null;
  for (const trak of boxes(init, moov.body, moov.end).filter((b) => b.type === 'trak')) {
    const stsd = path(init, ['mdia', 'minf', 'stbl', 'stsd'], trak);
    if (!stsd) continue;
    // stsd: version/flags(4) entry_count(4), then sample entries
    const entry = boxes(init, stsd.body + 8, stsd.end)[0];
    if (!entry) continue;
    // VisualSampleEntry: 6 reserved + 2 dref index + 16 predefined/reserved, width, height, … (78 bytes)
    const width = init.readUInt16BE(entry.body + 24);
    const height = init.readUInt16BE(entry.body + 26);
    const inner = boxes(init, entry.body + 78, entry.end);
    if (entry.type === 'avc1' || entry.type === 'avc3') {
      const avcC = inner.find((b) => b.type === 'avcC');
      if (!avcC || avcC.end - avcC.body < 4) return { codec: entry.type, hevc: false, width, height };
      const p = init.subarray(avcC.body + 1, avcC.body + 4);
      return { codec: `${entry.type}.${hex2(p[0])}${hex2(p[1])}${hex2(p[2])}`, hevc: false, width, height };
    }
    if (entry.type === 'hvc1' || entry.type === 'hev1') return { codec: entry.type, hevc: true, width, height };
    return { codec: entry.type, hevc: false, width, height };
  }
  return null;
}

/** Whether an avc1 init segment carries SPS and PPS in its avcC (MSE cannot start without them). */
export function initHasParameterSets(init: Buffer): boolean {
  const moov = boxes(init).find((b) => b.type === 'moov');
  if (!moov) return false;
  const stsd = path(init, ['trak', 'mdia', 'minf', 'stbl', 'stsd'], moov);
  if (!stsd) return false;
  const entry = boxes(init, stsd.body + 8, stsd.end)[0];
  if (!entry) return false;
  if (entry.type !== 'avc1') return true;
  const avcC = boxes(init, entry.body + 78, entry.end).find((b) => b.type === 'avcC');
  return !!avcC && avcC.end - avcC.body > 7 && (init[avcC.body + 5] & 0x1f) > 0;
}

/**
 * A streaming walker over an MPEG-2 program stream (ISO/IEC 13818-1 §2.5.3) that finds what the
 * media path needs without demuxing: the video stream type from the program stream map (0x1B
 * H.264, 0x24 H.265, 0x10 MPEG-4, 0x02 MPEG-2), and where keyframes start — GB/T 28181 cameras
 * put a system header and PSM in the pack of every keyframe (GB/T 28181-2016 Annex C). It jumps
 * from header to header by their length fields (cheap at 2 Mbit/s), and after a loss or garbage
 * re-synchronises on the next pack start code.
 */
export const PS_STREAM_TYPES: Record<number, 'h264' | 'h265' | 'mpeg4' | 'mpeg2' | 'svac'> = {
  0x1b: 'h264',
  0x24: 'h265',
  0x10: 'mpeg4',
  0x02: 'mpeg2',
  0x80: 'svac',
};

export interface PsChunk {
  /** Bytes of the stream, in order (the caller forwards them). */
  data: Buffer;
  /** This chunk begins with the pack header of a keyframe (one carrying a PSM or system header). */
  keyframeStart: boolean;
}

export class PsScanner {
  /** Video stream type from the last PSM seen (null before the first). */
  videoStreamType: number | null = null;
  resyncs = 0;
  private buf: Buffer = Buffer.alloc(0);
  private synced = false;

  constructor(private readonly maxPendingBytes = 1 << 20) {}

  /**
   * Feeds bytes; returns the complete units (pack headers, PSM, PES…) walked so far, in order,
   * split so that each keyframe's pack header begins a chunk with `keyframeStart`. A PES is
   * passed on as soon as it is complete (no waiting for the next pack: that would add a frame
   * of latency). `lost` says packets were lost just before `chunk`: the unit in progress is then
   * unreliable and is dropped, and the walk re-synchronises on the next pack header.
   */
  push(chunk: Buffer, lost = false): PsChunk[] {
    if (lost && this.buf.length) {
      this.buf = Buffer.alloc(0);
      this.synced = false;
      this.resyncs++;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: PsChunk[] = [];
    let from = 0;
    let at = 0;
    let key = false;
    const flush = (to: number) => {
      if (to > from) out.push({ data: this.buf.subarray(from, to), keyframeStart: key });
      from = to;
      key = false;
    };
    const b = this.buf;
    for (;;) {
      if (!this.synced) {
        const p = this.findPack(at);
        if (p < 0) {
          at = Math.max(at, b.length - 3);
          from = at;
          break;
        }
        at = from = p;
        this.synced = true;
      }
      if (at + 4 > b.length) break;
      if (b[at] !== 0 || b[at + 1] !== 0 || b[at + 2] !== 1 || b[at + 3] < 0xb9) {
        flush(at);
        this.desync();
        at += 1;
        from = at;
        continue;
      }
      const id = b[at + 3];
      let len: number;
      if (id === 0xba) {
        if (at + 14 > b.length) break;
        len = (b[at + 4] & 0xc0) === 0x40 ? 14 + (b[at + 13] & 0x07) : 12;
        // Whether this pack is a keyframe's shows in the unit after the header.
        if (at + len + 4 > b.length) break;
        const next = b[at + len + 3];
        flush(at);
        key = b[at + len] === 0 && b[at + len + 1] === 0 && b[at + len + 2] === 1 && (next === 0xbb || next === 0xbc);
      } else if (id === 0xb9) len = 4;
      else {
        if (at + 6 > b.length) break;
        len = 6 + b.readUInt16BE(at + 4);
        if (at + len > b.length) {
          if (len > this.maxPendingBytes) {
            flush(at);
            this.desync();
            at += 4;
            from = at;
            continue;
          }
          break;
        }
        if (id === 0xbc) this.readPsm(b.subarray(at, at + len));
      }
      at += len;
    }
    flush(at);
    this.buf = from < b.length ? Buffer.from(b.subarray(from)) : Buffer.alloc(0);
    return out;
  }

  private desync(): void {
    this.synced = false;
    this.resyncs++;
  }

  private findPack(from: number): number {
    const b = this.buf;
    for (let i = from; i + 3 < b.length; i++) if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1 && b[i + 3] === 0xba) return i;
    return -1;
  }

  private readPsm(psm: Buffer): void {
    if (psm.length < 16) return;
    const infoLen = psm.readUInt16BE(8);
    let at = 10 + infoLen;
    if (at + 2 > psm.length) return;
    const mapLen = psm.readUInt16BE(at);
    at += 2;
    const end = Math.min(psm.length - 4, at + mapLen);
    while (at + 4 <= end) {
      const type = psm[at];
      const id = psm[at + 1];
      const esInfo = psm.readUInt16BE(at + 2);
      if (id >= 0xe0 && id <= 0xef) {
        this.videoStreamType = type;
        return;
      }
      at += 4 + esInfo;
    }
  }

  /** Drops what is buffered (a new upstream, or a restarted remuxer wanting a clean start). */
  reset(): void {
    this.buf = Buffer.alloc(0);
    this.synced = false;
  }
}

/**
 * RTP (RFC 3550 §5.1) as GB/T 28181 devices send it: payload type 96 carrying MPEG-PS
 * (GB/T 28181-2016 Annex C), SSRC from the INVITE's `y=` line. Over TCP each packet is preceded
 * by a 2-byte length (RFC 4571).
 */
export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

/** Parses one RTP packet; null when it is not RTP version 2 or its lengths do not add up. */
export function parseRtp(buf: Buffer): RtpPacket | null {
  if (buf.length < 12 || buf[0] >> 6 !== 2) return null;
  const padding = (buf[0] & 0x20) !== 0;
  const extension = (buf[0] & 0x10) !== 0;
  const csrcCount = buf[0] & 0x0f;
  let at = 12 + csrcCount * 4;
  if (extension) {
    if (at + 4 > buf.length) return null;
    at += 4 + buf.readUInt16BE(at + 2) * 4;
  }
  let end = buf.length;
  if (padding) {
    const pad = buf[buf.length - 1];
    if (pad === 0 || pad > end - at) return null;
    end -= pad;
  }
  if (at > end) return null;
  return {
    marker: (buf[1] & 0x80) !== 0,
    payloadType: buf[1] & 0x7f,
    seq: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    payload: buf.subarray(at, end),
  };
}

/** Splits an RFC 4571 byte stream (2-byte big-endian length + packet) into packets. */
export class Rfc4571Deframer {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, emit: (packet: Buffer) => void): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      if (len > 0) emit(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
    }
    // Copy what is kept, so the socket's (possibly large) chunk is not retained.
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}

/** Sequence-number distance a → b modulo 2^16, in -32768..32767. */
export function seqDelta(a: number, b: number): number {
  return ((b - a + 0x18000) & 0xffff) - 0x8000;
}

export interface JitterStats {
  received: number;
  reordered: number;
  lost: number;
  duplicates: number;
  late: number;
}

/**
 * Puts RTP packets back in sequence order with a small bounded window. A gap is waited for until
 * `maxPackets` packets are held or the oldest has waited `maxDelayMs`; then the missing packets
 * are declared lost and delivery goes on (the PS scanner re-synchronises at the next pack).
 * Duplicates and packets older than what was delivered are dropped. Memory: at most
 * `maxPackets` payloads.
 */
export class JitterBuffer {
  private next: number | null = null;
  private readonly held = new Map<number, { p: RtpPacket; at: number }>();
  private timer: NodeJS.Timeout | null = null;
  readonly stats: JitterStats = { received: 0, reordered: 0, lost: 0, duplicates: 0, late: 0 };

  constructor(
    private readonly maxPackets: number,
    private readonly maxDelayMs: number,
    private readonly deliver: (p: RtpPacket, lostBefore: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  push(p: RtpPacket): void {
    this.stats.received++;
    if (this.next === null) this.next = p.seq;
    const d = seqDelta(this.next, p.seq);
    if (d < 0) {
      this.stats.late++;
      return;
    }
    if (this.held.has(p.seq)) {
      this.stats.duplicates++;
      return;
    }
    if (d === 0) {
      this.deliver(p, 0);
      this.next = (p.seq + 1) & 0xffff;
      this.drain();
    } else {
      this.stats.reordered++;
      this.held.set(p.seq, { p, at: this.now() });
      if (this.held.size > this.maxPackets || d > 0x4000) this.skipGap();
      else this.arm();
    }
  }

  /** Delivers consecutive held packets from `next`. */
  private drain(): void {
    while (this.next !== null && this.held.size) {
      const h = this.held.get(this.next);
      if (!h) break;
      this.held.delete(this.next);
      this.deliver(h.p, 0);
      this.next = (this.next + 1) & 0xffff;
    }
    if (!this.held.size && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Gives up on the gap before the oldest held packet. */
  private skipGap(): void {
    if (this.next === null || !this.held.size) return;
    let best: number | null = null;
    for (const seq of this.held.keys()) if (best === null || seqDelta(this.next, seq) < seqDelta(this.next, best)) best = seq;
    const lost = seqDelta(this.next, best!);
    this.stats.lost += lost;
    const h = this.held.get(best!)!;
    this.held.delete(best!);
    this.deliver(h.p, lost);
    this.next = (best! + 1) & 0xffff;
    this.drain();
    if (this.held.size) this.arm();
  }

  private arm(): void {
    if (this.timer || this.maxDelayMs <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const oldest = Math.min(...[...this.held.values()].map((h) => h.at));
      if (this.now() - oldest >= this.maxDelayMs) this.skipGap();
      else this.arm();
    }, this.maxDelayMs);
    this.timer.unref();
  }

  get holding(): number {
    return this.held.size;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.held.clear();
  }
}

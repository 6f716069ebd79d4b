import { Clip } from './elementary';
import { psFrame } from './ps-mux';

/** RTP packets (RFC 3550) of payload type 96 carrying one PS frame; the marker on the last. */
export function rtpPackets(ps: Buffer, o: { seq: number; timestamp: number; ssrc: number; mtu?: number }): { packets: Buffer[]; nextSeq: number } {
  const max = o.mtu ?? 1400;
  const packets: Buffer[] = [];
  let seq = o.seq;
  for (let off = 0; off < ps.length; off += max) {
    const payload = ps.subarray(off, off + max);
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (off + max >= ps.length ? 0x80 : 0) | 96;
    h.writeUInt16BE(seq & 0xffff, 2);
    h.writeUInt32BE(o.timestamp >>> 0, 4);
    h.writeUInt32BE(o.ssrc >>> 0, 8);
    packets.push(Buffer.concat([h, payload]));
    seq = (seq + 1) & 0xffff;
  }
  return { packets, nextSeq: seq };
}

/** RFC 4571: a 2-byte length before each packet on a TCP stream. */
export function frame4571(p: Buffer): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(p.length, 0);
  return Buffer.concat([h, p]);
}

/**
 * Plays a clip in real time as PS over RTP (frames paced at the clip's rate, looping, starting
 * at a keyframe as a camera does on a new stream) into `send`. Returns a stop function.
 */
export function playClip(clip: Clip, ssrc: number, send: (packets: Buffer[]) => void, opts: { bitrateBps?: number; reorder?: boolean } = {}): () => void {
  let i = 0;
  let seq = Math.floor(Math.random() * 65536);
  let pts = 90_000 + Math.floor(Math.random() * 1e6);
  const frameMs = 1000 / clip.fps;
  const started = performance.now();
  let n = 0;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    // Catch up if the loop fell behind (a busy machine), as a camera's encoder would not wait.
    const due = Math.floor((performance.now() - started) / frameMs) + 1;
    while (n < due && !stopped) {
      const au = clip.units[i];
      const ps = psFrame(au.data, au.keyframe, pts, clip.codec, opts.bitrateBps);
      const r = rtpPackets(ps, { seq, timestamp: pts, ssrc });
      seq = r.nextSeq;
      if (opts.reorder && r.packets.length > 2) [r.packets[0], r.packets[1]] = [r.packets[1], r.packets[0]];
      send(r.packets);
      pts += Math.round(90_000 / clip.fps);
      i = (i + 1) % clip.units.length;
      n++;
    }
    timer = setTimeout(tick, Math.max(0, started + n * frameMs - performance.now()));
  };
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

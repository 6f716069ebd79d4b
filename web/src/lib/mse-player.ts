/**
 * A Media Source Extensions player for Shouhu's live video WebSocket (fMP4 over ws; the server
 * side is src/modules/video/video-ws.ts): a text `meta` frame gives the codec, the next binary
 * frame is the init segment, then media fragments (starting at a keyframe). Keeps latency low:
 * it jumps to the live edge when more than `maxLatency` seconds are buffered ahead and trims
 * what has been played (`keepSeconds`). A new `meta` (the server restarted its remuxer) rebuilds
 * the MediaSource. An `error` frame ends play with the server's code.
 *
 * Usage: `const p = new MsePlayer(videoElement, { onState }); p.play(wsUrl); … p.stop();`
 */
export type PlayerState = 'connecting' | 'meta' | 'playing' | 'error' | 'ended' | 'closed';
export interface PlayerDetail {
  code?: string;
  message?: string;
  codec?: string;
  width?: number;
  height?: number;
}
export interface MsePlayerOptions {
  onState?: (state: PlayerState, detail?: PlayerDetail) => void;
  /** Seconds buffered ahead of the playhead before it jumps to the live edge. */
  maxLatency?: number;
  /** Seconds of played video kept in the SourceBuffer. */
  keepSeconds?: number;
  /** Fragments queued while the SourceBuffer is busy, at most (a background tab must not queue without limit). */
  maxQueue?: number;
}

interface ControlFrame {
  type: string;
  codec?: string;
  width?: number;
  height?: number;
  code?: string;
  message?: string;
}

/** The WebSocket address of a stream ticket's `url` (a path on this origin, or an absolute ws(s) URL). */
export function wsUrl(url: string, base: string = location.href): string {
  return new URL(url, base.replace(/^http/, 'ws')).href;
}

export class MsePlayer {
  private ws: WebSocket | null = null;
  private ms: MediaSource | null = null;
  private sb: SourceBuffer | null = null;
  private queue: ArrayBuffer[] = [];
  private codec: string | null = null;
  private objectUrl: string | null = null;
  private readonly onState: NonNullable<MsePlayerOptions['onState']>;
  private readonly maxLatency: number;
  private readonly keepSeconds: number;
  private readonly maxQueue: number;
  bytes = 0;
  fragments = 0;

  constructor(
    private readonly video: HTMLVideoElement,
    opts: MsePlayerOptions = {},
  ) {
    this.onState = opts.onState ?? (() => undefined);
    this.maxLatency = opts.maxLatency ?? 1.5;
    this.keepSeconds = opts.keepSeconds ?? 20;
    this.maxQueue = opts.maxQueue ?? 500;
  }

  play(url: string): void {
    this.stop();
    this.onState('connecting');
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev: MessageEvent<string | ArrayBuffer>) => {
      if (this.ws !== ws) return;
      if (typeof ev.data === 'string') {
        let msg: ControlFrame;
        try {
          msg = JSON.parse(ev.data) as ControlFrame;
        } catch {
          return;
        }
        this.control(msg);
        return;
      }
      this.bytes += ev.data.byteLength;
      this.fragments++;
      this.queue.push(ev.data);
      // Keep the init segment (first) and drop the backlog: the next keyframe fragment starts clean.
      if (this.queue.length > this.maxQueue) this.queue.splice(1, this.queue.length - 1);
      this.pump();
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onState(ev.code >= 4000 ? 'ended' : 'closed', { code: ev.reason || String(ev.code) });
    };
  }

  private control(msg: ControlFrame): void {
    if (msg.type === 'meta' && msg.codec) {
      this.codec = msg.codec;
      this.reset();
      this.onState('meta', { codec: msg.codec, width: msg.width, height: msg.height });
    } else if (msg.type === 'error') {
      this.onState('error', { code: msg.code, message: msg.message });
    }
  }

  private reset(): void {
    this.queue = [];
    this.sb = null;
    const ms = new MediaSource();
    this.ms = ms;
    this.revoke();
    this.objectUrl = URL.createObjectURL(ms);
    this.video.src = this.objectUrl;
    ms.addEventListener('sourceopen', () => {
      if (this.ms !== ms || !this.codec) return;
      const type = `video/mp4; codecs="${this.codec}"`;
      if (!MediaSource.isTypeSupported(type)) {
        this.onState('error', { code: 'PLAYER.UNSUPPORTED_CODEC', message: type });
        return;
      }
      const sb = ms.addSourceBuffer(type);
      sb.mode = 'segments';
      sb.addEventListener('updateend', () => this.pump());
      this.sb = sb;
      this.pump();
    });
  }

  private pump(): void {
    const sb = this.sb;
    if (!sb || sb.updating || this.ms?.readyState !== 'open') return;
    const v = this.video;
    const b = v.buffered;
    if (b.length) {
      const start = b.start(0);
      const end = b.end(b.length - 1);
      // A late join starts mid-stream: move to the first buffered picture, then keep near the edge.
      if (v.currentTime < start || end - v.currentTime > this.maxLatency) v.currentTime = Math.max(start, end - 0.2);
      if (v.paused) v.play().catch(() => undefined);
      if (v.currentTime - start > this.keepSeconds + 5) {
        sb.remove(start, v.currentTime - this.keepSeconds);
        return;
      }
    }
    const next = this.queue.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
      if (this.fragments > 1) this.onState('playing');
    } catch (e) {
      // QuotaExceeded: drop what we have, the next keyframe fragment starts clean.
      this.queue = [];
      this.onState('error', { code: 'PLAYER.APPEND_FAILED', message: String(e) });
    }
  }

  private revoke(): void {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  /** Closes the socket (the server lets the stream linger, then stops it) and lets the <video> go. */
  stop(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.queue = [];
    this.sb = null;
    this.ms = null;
    if (this.objectUrl) {
      this.video.removeAttribute('src');
      this.video.load();
      this.revoke();
    }
  }
}

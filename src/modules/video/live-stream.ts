import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError } from '../../infra/http/errors';
import { InitInfo, Remuxer, RemuxInput } from './media/remuxer';
import { PsScanner } from './media/ps-scan';
import { RtpPortPool, RtpReceiver } from './media/rtp-receiver';
import type { VideoConfig } from './video.config';
import { asDomainError, VideoErrors } from './video.errors';
import { hideAccount } from './camera-urls';

/** Where a camera's picture comes from. */
export type StreamSource =
  | {
      kind: 'gb';
      deviceId: string;
      channelId: string;
      transport: VideoConfig['gbTransport'];
      /** A recording played back over [start, end) (GB/T 28181 §9.8) instead of the live picture. */
      playback?: { start: Date; end: Date };
    }
  | {
      kind: 'url';
      /** What ffmpeg pulls (may carry the camera's account: never shown, see hideAccount). */
      url: string;
      /** A recorder's recording over [start, end) (its RTSP playback URL) instead of the live picture. */
      playback?: { start: Date; end: Date };
    };

/** A live dialog with a GB/T 28181 device (the gb28181 module's INVITE client behind a narrow interface). */
export interface GbDialog {
  answer: { host: string; port: number; ssrc: string | null };
  bye(): void;
  onEnded(cb: (why: string) => void): void;
}

export interface GbPlayer {
  invite(req: {
    deviceId: string;
    channelId: string;
    ssrc: string;
    media: { host: string; port: number; transport: VideoConfig['gbTransport'] };
    timeoutMs: number;
    playback?: { start: Date; end: Date };
  }): Promise<GbDialog>;
}

/** What a viewer connection must offer (a WebSocket; a test double in unit tests). */
export interface ViewerSink {
  sendText(s: string): void;
  sendBinary(b: Buffer): void;
  bufferedAmount(): number;
  close(code: number, reason: string): void;
}

interface Viewer {
  sink: ViewerSink;
  needKey: boolean;
  dropped: number;
}

export interface StreamDeps {
  cfg: VideoConfig;
  gb: GbPlayer | null;
  pool: RtpPortPool;
  rtpAdvertisedHost: string;
  nextSsrc: () => string;
  transcodes: { take: () => boolean; give: () => void };
  onClosed: (s: LiveStream) => void;
  warn: (m: string) => void;
}

export type StreamState = 'starting' | 'live' | 'stopped';

/** Close codes sent to viewers (4000–4999: application; the text is the error code). */
export const CLOSE_ERROR = 4000;
export const CLOSE_IDLE = 4001;

/**
 * One camera's upstream, shared by all its viewers: for GB/T 28181, an RTP receiver and the
 * INVITE dialog (one per channel whatever the number of viewers); for RTSP, ffmpeg's own pull.
 * The stream goes through one supervised ffmpeg (remux, or H.265 → H.264) into fragmented MP4,
 * fanned out here. The init segment and the last GOP are kept, so a late viewer starts at once
 * with a keyframe. When the last viewer (or holder) leaves, the upstream lingers, then stops
 * (BYE). Failures (device answers, no media, stalls, remuxer crashes beyond the restart budget)
 * end the stream with one error to every viewer.
 */
export class LiveStream {
  state: StreamState = 'starting';
  readonly viewers = new Set<Viewer>();
  holds = 0;
  error: DomainError | null = null;
  info: InitInfo | null = null;
  /** Fragments since the last keyframe (the first is the keyframe); empty when not cached. */
  private gop: Buffer[] = [];
  private gopBytes = 0;
  private remuxer?: Remuxer;
  private receiver?: RtpReceiver;
  private dialog?: GbDialog;
  private readonly scanner = new PsScanner();
  private gateOpen = false;
  private transcode = false;
  private holdsTranscode = false;
  private restarts: number[] = [];
  private restartTimer?: NodeJS.Timeout;
  private playbackEndTimer?: NodeJS.Timeout;
  private restarting = false;
  private lingerTimer?: NodeJS.Timeout;
  private firstMediaTimer?: NodeJS.Timeout;
  private stallTimer?: NodeJS.Timeout;
  private lastMediaAt = 0;
  private readyResolve!: () => void;
  private readyReject!: (e: DomainError) => void;
  /** Settles at the first keyframe (the stream can be shown), or with the reason it cannot. */
  readonly ready: Promise<void>;
  readonly startedAt = Date.now();
  firstKeyframeAt = 0;
  droppedInput = 0;
  remuxerStarts = 0;

  constructor(
    readonly cameraId: string,
    readonly source: StreamSource,
    private readonly d: StreamDeps,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined);
  }

  /** (A method, not a narrowed field read: the state changes across awaits.) */
  isStopped(): boolean {
    return this.state === 'stopped';
  }

  /** The picture is re-encoded (H.265 or another codec → H.264), not copied. */
  get transcoded(): boolean {
    return this.transcode;
  }

  get cfg(): VideoConfig {
    return this.d.cfg;
  }

  /** The ffmpeg process id (diagnostics and tests). */
  get remuxerPid(): number | undefined {
    return this.remuxer?.pid;
  }

  get rtpStats() {
    return this.receiver?.stats;
  }

  start(): void {
    this.firstMediaTimer = setTimeout(
      () => this.fail(VideoErrors.noMedia(this.cfg.firstMediaTimeoutMs)),
      this.cfg.firstMediaTimeoutMs + (this.source.kind === 'gb' ? this.cfg.inviteTimeoutMs : 0),
    );
    this.stallTimer = setInterval(() => this.checkStall(), Math.min(1000, this.cfg.stallTimeoutMs / 4));
    this.stallTimer.unref();
    if (this.source.kind === 'url')
      this.startRemuxer({ kind: 'url', url: this.source.url, rtspTransport: this.cfg.rtspTransport, timeoutMs: this.cfg.rtspTimeoutMs });
    else void this.startGb(this.source).catch((e) => this.fail(asDomainError(e)));
  }

  // ---------------------------------------------------------------- GB/T 28181 upstream

  private async startGb(src: Extract<StreamSource, { kind: 'gb' }>): Promise<void> {
    if (!this.d.gb) throw VideoErrors.noStreamAddress(this.cameraId, 'GB/T 28181 signalling is not running in this process');
    const ssrc = this.d.nextSsrc();
    const receiver = new RtpReceiver({
      transport: src.transport,
      host: this.cfg.rtpHost,
      pool: this.d.pool,
      ssrc: this.cfg.ssrcCheck ? Number(ssrc) : null,
      jitterPackets: this.cfg.jitterPackets,
      jitterDelayMs: this.cfg.jitterDelayMs,
      onPayload: (payload, lost) => this.onPs(payload, lost),
      onClosed: (why) => this.fail(VideoErrors.upstreamEnded(why)),
    });
    this.receiver = receiver;
    let port: number;
    try {
      port = await receiver.open();
    } catch {
      throw VideoErrors.noRtpPort();
    }
    if (this.isStopped()) return receiver.close();
    const dialog = await this.d.gb.invite({
      deviceId: src.deviceId,
      channelId: src.channelId,
      ssrc,
      media: { host: this.d.rtpAdvertisedHost, port, transport: src.transport },
      timeoutMs: this.cfg.inviteTimeoutMs,
      playback: src.playback,
    });
    if (this.isStopped()) return dialog.bye();
    this.dialog = dialog;
    // A playback the device ends after its last picture (MediaStatus 121, or its BYE) has ended, not failed.
    dialog.onEnded((why) => (src.playback && this.state === 'live' ? this.end(why) : this.fail(VideoErrors.upstreamEnded(why))));
    // Some devices use an SSRC of their own and say so in the answer's y= (accepted, as peers do).
    if (this.cfg.ssrcCheck && dialog.answer.ssrc && /^\d{1,10}$/.test(dialog.answer.ssrc)) receiver.expectSsrc(Number(dialog.answer.ssrc));
    if (src.transport === 'tcp-active') await receiver.connectTo(dialog.answer.host, dialog.answer.port, this.cfg.firstMediaTimeoutMs);
  }

  /** PS bytes in order from the RTP receiver: forwarded from a keyframe on, to the remuxer. */
  private onPs(payload: Buffer, lost: number): void {
    if (this.state === 'stopped') return;
    for (const chunk of this.scanner.push(payload, lost > 0)) {
      if (!this.gateOpen) {
        if (!chunk.keyframeStart) continue;
        if (!this.remuxer) {
          // The codec is known from the PSM: copy H.264, transcode anything else (H.265, SVAC…).
          const copy = this.scanner.videoStreamType === 0x1b;
          if (!copy && !this.takeTranscode()) return;
          this.transcode = !copy;
          this.startRemuxer({ kind: 'ps' });
        }
        this.gateOpen = true;
      }
      if (!this.remuxer?.writeInput(chunk.data)) {
        // ffmpeg is behind (or restarting): drop to the next keyframe rather than queue without bound.
        this.droppedInput++;
        this.gateOpen = false;
      }
    }
  }

  private takeTranscode(): boolean {
    if (this.holdsTranscode) return true;
    if (!this.d.transcodes.take()) {
      this.fail(VideoErrors.transcodeCapacity(this.cfg.maxTranscodes));
      return false;
    }
    this.holdsTranscode = true;
    return true;
  }

  // ---------------------------------------------------------------- remuxer

  private startRemuxer(input: RemuxInput): void {
    this.remuxerStarts++;
    const r = new Remuxer({
      ffmpegPath: this.cfg.ffmpegPath,
      input,
      transcode: this.transcode ? { bitrateKbps: this.cfg.transcodeBitrateKbps } : null,
      maxQueueBytes: this.cfg.remuxerMaxQueueBytes,
      maxBoxBytes: this.cfg.gopCacheMaxBytes,
    });
    this.remuxer = r;
    r.on('init', (info: InitInfo) => this.onInit(r, input, info));
    r.on('fragment', (buf: Buffer, key: boolean) => this.remuxer === r && this.onFragment(buf, key));
    r.on('exit', (e: { code: number | null; signal: string | null; stderr: string; requested: boolean }) => this.onRemuxerExit(r, input, e));
    r.start();
  }

  private onInit(r: Remuxer, input: RemuxInput, info: InitInfo): void {
    if (this.remuxer !== r || this.state === 'stopped') return;
    if (info.hevc && !this.transcode) {
      // An RTSP source turned out to be H.265: Chromium's MSE cannot play it; transcode instead.
      if (!this.takeTranscode()) return;
      this.transcode = true;
      this.replaceRemuxer(input);
      return;
    }
    this.info = info;
    this.gop = [];
    this.gopBytes = 0;
    const meta = this.metaMessage();
    for (const v of this.viewers) {
      v.sink.sendText(meta);
      v.sink.sendBinary(info.init);
      v.needKey = true;
    }
  }

  private metaMessage(): string {
    return JSON.stringify({
      type: 'meta',
      cameraId: this.cameraId,
      codec: this.info!.codec,
      width: this.info!.width,
      height: this.info!.height,
      transcoded: this.transcode,
    });
  }

  private onFragment(buf: Buffer, key: boolean): void {
    if (this.state === 'stopped' || !this.info) return;
    this.lastMediaAt = Date.now();
    if (key) {
      this.gop = [buf];
      this.gopBytes = buf.length;
      if (this.state === 'starting') {
        this.state = 'live';
        this.firstKeyframeAt = Date.now();
        clearTimeout(this.firstMediaTimer);
        this.armPlaybackEnd();
        this.readyResolve();
      }
    } else if (this.gop.length) {
      this.gopBytes += buf.length;
      if (this.gopBytes > this.cfg.gopCacheMaxBytes) {
        this.gop = [];
        this.gopBytes = 0;
      } else this.gop.push(buf);
    }
    for (const v of this.viewers) this.deliver(v, buf, key);
  }

  private deliver(v: Viewer, buf: Buffer, key: boolean): void {
    if (v.needKey && !key) return;
    const queued = v.sink.bufferedAmount();
    if (queued > this.cfg.viewerMaxBufferBytes) {
      if (queued > 4 * this.cfg.viewerMaxBufferBytes) {
        this.viewers.delete(v);
        v.sink.sendText(JSON.stringify({ type: 'error', code: ErrorCode.VIDEO.VIEWER_TOO_SLOW, message: 'the connection cannot keep up with the stream' }));
        v.sink.close(CLOSE_ERROR, ErrorCode.VIDEO.VIEWER_TOO_SLOW);
        this.maybeLinger();
        return;
      }
      // A slow viewer skips to the next keyframe instead of queueing without bound.
      v.needKey = true;
      v.dropped++;
      return;
    }
    v.needKey = false;
    v.sink.sendBinary(buf);
  }

  private replaceRemuxer(input: RemuxInput): void {
    const old = this.remuxer;
    this.remuxer = undefined;
    old?.stop();
    this.startRemuxer(input);
  }

  private onRemuxerExit(r: Remuxer, input: RemuxInput, e: { code: number | null; signal: string | null; stderr: string; requested: boolean }): void {
    if (this.remuxer !== r || this.state === 'stopped' || e.requested) return;
    this.remuxer = undefined;
    // ffmpeg names the URL it pulled, account included: never passed on to callers or viewers.
    const why = hideAccount(e.stderr.split('\n').filter(Boolean).pop() ?? `ffmpeg exited (${e.signal ?? e.code})`);
    // A recorder's playback that ends its stream once it has played (ffmpeg exits 0 at the end of the stream) has ended, not failed.
    if (this.source.playback && this.state === 'live' && e.code === 0) return this.end('the recording has ended');
    // Before the first picture a crash is not transient (camera refused, bad stream, no ffmpeg): say so now.
    if (this.state === 'starting') return this.fail(VideoErrors.upstreamFailed(why));
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    if (this.viewers.size + this.holds === 0 || this.restarts.length >= this.cfg.maxRestartsPerMinute) return this.fail(VideoErrors.upstreamFailed(why));
    const delay = Math.min(this.cfg.restartBackoffMaxMs, this.cfg.restartBackoffMinMs * 2 ** this.restarts.length);
    this.restarts.push(now);
    this.restarting = true;
    this.d.warn(`camera ${this.cameraId}: ffmpeg exited (${e.signal ?? e.code}: ${why}); restarting in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      this.restarting = false;
      if (this.state === 'stopped') return;
      this.lastMediaAt = Date.now();
      this.info = null;
      this.gop = [];
      this.gopBytes = 0;
      if (input.kind === 'ps') {
        // The new ffmpeg starts at the camera's next keyframe (PSM + SPS/PPS there).
        this.gateOpen = false;
        this.scanner.reset();
      }
      this.startRemuxer(input);
    }, delay);
  }

  /**
   * A playback ends by itself once its range has played (at 1×) plus video.playbackOverrunSeconds:
   * a device that never sends MediaStatus 121 (or loops) would otherwise stream on, holding a
   * playback slot and the device's stream forever.
   */
  private armPlaybackEnd(): void {
    if (!this.source.playback) return;
    const rangeMs = this.source.playback.end.getTime() - this.source.playback.start.getTime();
    this.playbackEndTimer = setTimeout(() => this.end('the range has played'), rangeMs + this.cfg.playbackOverrunSeconds * 1000);
    this.playbackEndTimer.unref();
  }

  /** When a playback's range is due to have played (ms since epoch), or null for a live stream or before its first picture. */
  get playbackDueAt(): number | null {
    if (!this.source.playback || !this.firstKeyframeAt) return null;
    return this.firstKeyframeAt + this.source.playback.end.getTime() - this.source.playback.start.getTime();
  }

  private checkStall(): void {
    if (this.state !== 'live' || this.restarting) return;
    if (Date.now() - this.lastMediaAt > this.cfg.stallTimeoutMs) this.fail(VideoErrors.stalled(this.cfg.stallTimeoutMs));
  }

  // ---------------------------------------------------------------- viewers

  /** Adds a viewer: sent the init segment and the cached GOP at once when there is one. */
  addViewer(sink: ViewerSink): Viewer {
    if (this.state === 'stopped') throw this.error ?? VideoErrors.stopped();
    if (this.viewers.size >= this.cfg.maxViewersPerStream) throw VideoErrors.viewerCapacity(this.cfg.maxViewersPerStream);
    const v: Viewer = { sink, needKey: true, dropped: 0 };
    this.viewers.add(v);
    this.cancelLinger();
    if (this.info) {
      sink.sendText(this.metaMessage());
      sink.sendBinary(this.info.init);
      for (const f of this.gop) sink.sendBinary(f);
      v.needKey = this.gop.length === 0;
    }
    return v;
  }

  removeViewer(v: Viewer): void {
    if (this.viewers.delete(v)) this.maybeLinger();
  }

  /** Internal users (a snapshot being taken, a play request waiting for the first frame). */
  hold(): () => void {
    this.holds++;
    this.cancelLinger();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.maybeLinger();
    };
  }

  /** The init segment and the last keyframe's fragment (snapshots), or null. */
  keyframe(): { init: Buffer; fragment: Buffer; width: number; height: number } | null {
    if (!this.info || !this.gop.length) return null;
    return { init: this.info.init, fragment: this.gop[0], width: this.info.width, height: this.info.height };
  }

  private cancelLinger(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  private maybeLinger(): void {
    if (this.state === 'stopped' || this.viewers.size + this.holds > 0 || this.lingerTimer) return;
    this.lingerTimer = setTimeout(() => this.stop(), this.cfg.lingerMs);
    this.lingerTimer.unref();
  }

  // ---------------------------------------------------------------- end

  /** Ends the stream with an error every viewer is told. */
  fail(err: DomainError): void {
    if (this.state === 'stopped') return;
    this.error = err;
    const msg = JSON.stringify({ type: 'error', code: err.code, message: err.message });
    for (const v of this.viewers) {
      v.sink.sendText(msg);
      v.sink.close(CLOSE_ERROR, err.code);
    }
    this.teardown();
    this.readyReject(err);
  }

  /** A playback played to its end: viewers are told (`{type:'ended'}`) and closed normally. */
  end(why: string): void {
    if (this.state === 'stopped') return;
    const msg = JSON.stringify({ type: 'ended', message: why });
    for (const v of this.viewers) {
      v.sink.sendText(msg);
      v.sink.close(CLOSE_IDLE, 'ended');
    }
    this.teardown();
    this.readyReject(VideoErrors.stopped());
  }

  /** Stops the stream (idle, or shutdown): viewers are closed, the device gets its BYE. */
  stop(reason = 'idle'): void {
    if (this.state === 'stopped') return;
    for (const v of this.viewers) v.sink.close(CLOSE_IDLE, reason);
    this.teardown();
    this.readyReject(VideoErrors.stopped());
  }

  private teardown(): void {
    this.state = 'stopped';
    this.viewers.clear();
    this.cancelLinger();
    clearTimeout(this.firstMediaTimer);
    clearTimeout(this.restartTimer);
    clearTimeout(this.playbackEndTimer);
    clearInterval(this.stallTimer);
    this.remuxer?.stop();
    this.remuxer = undefined;
    this.receiver?.close();
    this.dialog?.bye();
    this.dialog = undefined;
    this.gop = [];
    if (this.holdsTranscode) {
      this.holdsTranscode = false;
      this.d.transcodes.give();
    }
    this.d.onClosed(this);
  }
}

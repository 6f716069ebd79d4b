import { BeforeApplicationShutdown, HttpStatus, Inject, Injectable, Logger, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Gauge, Counter } from 'prom-client';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError, Errors } from '../../infra/http/errors';
import { metrics } from '../../infra/observability/metrics';
import type { AuthUser } from '../../infra/access/roles';
import { assertRecordInScope } from '../../infra/access/scope';
import { InviteError, SipServer } from '../gb28181';
import { AuditService } from '../audit-log';
import { RegistryService } from '../registry';
import { CameraMediaService, CameraPullSettings } from './camera-media.service';
import { fillPlaybackTemplate, withAccount } from './camera-urls';
import { GbPlayer, LiveStream, StreamSource, ViewerSink } from './live-stream';
import { JpegEncoders } from './media/jpeg';
import { fetchSnapshotUri, SnapshotSource } from './snapshot-uri';
import { CameraAuthMemory } from './http-digest';
import { RtpPortPool } from './media/rtp-receiver';
import { StreamClaims, StreamTokens } from './stream-token';
import { VideoConfig, videoConfig } from './video.config';
import { asDomainError, VideoErrors } from './video.errors';

const streamsGauge = new Gauge({ name: 'shouhu_video_streams', help: 'Live upstreams (cameras being played) in this process', registers: [metrics] });
const viewersGauge = new Gauge({ name: 'shouhu_video_viewers', help: 'Video viewers (WebSocket players) in this process', registers: [metrics] });
const streamEvents = new Counter({
  name: 'shouhu_video_events_total',
  help: 'Video stream events (started, failed by code, snapshots…)',
  labelNames: ['event'],
  registers: [metrics],
});

const snapshotSources = new Counter({
  name: 'shouhu_video_snapshot_sources_total',
  help: "Camera pictures taken, by where they came from: the camera's ONVIF snapshot URI, or a stream pull (ffmpeg decode / INVITE); and snapshot URI failures by code",
  labelNames: ['source', 'result'],
  registers: [metrics],
});

export const WS_PATH = '/api/v1/video/ws';

/** A camera's picture and where it came from; `snapshotUriError`: the code of a failed snapshot URI GET the stream pull stood in for. */
export interface Shot {
  jpeg: Buffer;
  source: SnapshotSource;
  snapshotUriError?: string;
}

export interface CameraRef {
  id: string;
  schoolId: string;
  deviceId: string;
  channelId: string;
  streamUrl: string;
  /** The ONVIF account (added to RTSP pulls only) and the recorder's playback URL template; absent: none. */
  pull?: CameraPullSettings;
}

/** How the console can show a camera (VideoService.liveSource). */
export interface CameraLiveSource {
  cameraId: string;
  /** A stream can be asked for (POST /cameras/:id/stream); false: there is none to play. */
  live: boolean;
  /** The camera keeps an ONVIF snapshot URI: GET /cameras/:id/snapshot gives its own JPEG. */
  snapshotUri: boolean;
}

export interface PlayTicket {
  cameraId: string;
  token: string;
  expiresAt: Date;
  /** Where the player connects: a path on this origin (ws: / wss: as the page), or an absolute ws(s) URL when video.publicWsBase is set. */
  url: string;
  codec: string;
  width: number;
  height: number;
  transcoded: boolean;
}

/**
 * Failures never remembered against a camera: this server's limits (not the camera's), and what is
 * decided before any pull starts (not registered, no address) — cheap to ask again, and a camera that
 * registers a moment later must not be answered "offline" from memory (the video bench's cold snapshots were).
 */
const NOT_REMEMBERED = new Set<string>([
  ErrorCode.VIDEO.DEVICE_OFFLINE,
  ErrorCode.VIDEO.NO_STREAM_ADDRESS,
  ErrorCode.VIDEO.CAPACITY,
  ErrorCode.VIDEO.VIEWER_CAPACITY,
  ErrorCode.VIDEO.TRANSCODE_CAPACITY,
  ErrorCode.VIDEO.NO_RTP_PORT,
  ErrorCode.VIDEO.DISABLED,
  ErrorCode.VIDEO.SHUTTING_DOWN,
]);

/** A remembered snapshot failure, answered again: the same status and code, saying when it happened and when the next pull may be. */
function rememberedFailure(f: { at: number; error: DomainError }, now: number, memoMs: number): DomainError {
  const retryAfterSeconds = Math.max(1, Math.ceil((memoMs - (now - f.at)) / 1000));
  return new DomainError(
    f.error.status,
    f.error.code,
    `${f.error.message} (last try ${Math.round((now - f.at) / 1000)} s ago; next try in ${retryAfterSeconds} s)`,
    {
      ...f.error.details,
      remembered: true,
      failedAt: new Date(f.at).toISOString(),
      retryAfterSeconds, // also the HTTP Retry-After header (exception.filter)
    },
  );
}

/**
 * Live video: one upstream per camera (GB/T 28181 INVITE or RTSP pull) shared by its viewers,
 * stream tokens for the players, and snapshots (from the running stream's last keyframe, else
 * a short pull). Streams live in the process that serves them; GB/T 28181 cameras need the
 * process that runs the SIP server (gb28181.enabled).
 */
@Injectable()
export class VideoService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Video');
  readonly cfg: VideoConfig;
  readonly tokens: StreamTokens;
  private readonly streams = new Map<string, LiveStream>();
  /** Playbacks of recordings, by session id: each its own INVITE (a range of one viewer), never shared. */
  private readonly playbacks = new Map<string, LiveStream>();
  /** Each playback's slot (who, which camera) from its request until its stream closes: the caps count these. */
  private readonly playbackSlots = new Map<string, { userId: string; cameraId: string }>();
  private readonly pool: RtpPortPool;
  private transcodes = 0;
  private ssrcSeq = Math.floor(Math.random() * 10000);
  private readonly snapshots = new Map<string, ({ at: number } & Shot) | Promise<Shot>>();
  /** The last failed snapshot per camera, answered again for video.snapshotFailureMemoMs (see `snapshot`). */
  private readonly snapshotFailures = new Map<string, { at: number; error: DomainError }>();
  /** What each camera's snapshot URI asked last (Digest nonce, Basic): its next picture is one request (video.snapshotUriAuthCameras). */
  readonly snapshotAuth: CameraAuthMemory;
  private lastWarnAt = 0;
  private closing = false;
  viewerCount = 0;
  private jpeg?: JpegEncoders;
  /** The JPEG of each stream's current keyframe (weakly held: gone with the stream). */
  private readonly keyframeJpegs = new WeakMap<LiveStream, { fragment: Buffer; jpeg: Promise<Buffer> }>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
    @InjectDataSource() private readonly db: DataSource,
    private readonly media: CameraMediaService,
    @Optional() private readonly gb?: SipServer,
  ) {
    this.cfg = videoConfig(config);
    this.pool = new RtpPortPool(this.cfg.rtpPortMin, this.cfg.rtpPortMax);
    this.tokens = new StreamTokens(this.cfg.tokenSecret || config.auth.jwtSecret, this.cfg.tokenTtlSeconds);
    this.snapshotAuth = new CameraAuthMemory(this.cfg.snapshotUriAuthCameras);
  }

  /** Says at boot (not at the first click) when ffmpeg is missing; the rest of the service runs on. Not awaited: boot does not wait for it. */
  onApplicationBootstrap(): void {
    if (!this.cfg.enabled || this.config.role === 'worker') return;
    execFile(this.cfg.ffmpegPath, ['-hide_banner', '-version'], { timeout: 10_000 }, (err) => {
      if (err)
        this.logger.error(
          `video.ffmpegPath: ${this.cfg.ffmpegPath} cannot be run (${err.message}); live video and snapshots will fail (apt-get install ffmpeg)`,
        );
      else if (!this.closing) this.encoders().fill();
    });
  }

  private encoders(): JpegEncoders {
    this.jpeg ??= new JpegEncoders(this.cfg.ffmpegPath, this.cfg.snapshotWarmEncoders);
    return this.jpeg;
  }

  // ---------------------------------------------------------------- cameras

  /** A camera the user may see (404 unknown, and 404 for another school's: no existence oracle, attack note A10). */
  async camera(user: AuthUser | null, id: string): Promise<CameraRef> {
    const [c] = await this.registry.cameras({ ids: [id] });
    if (!c) throw Errors.notFound(ErrorCode.CAMERA.NOT_FOUND, id);
    if (user) assertRecordInScope(user, c.schoolId, () => Errors.notFound(ErrorCode.CAMERA.NOT_FOUND, id));
    const pull = await this.media.pullSettings(c.id);
    return { id: c.id, schoolId: c.schoolId, deviceId: c.deviceId, channelId: c.channelId, streamUrl: c.streamUrl, pull };
  }

  /**
   * How a camera is played: its `streamUrl` when it is rtsp/rtmp/http(s) (ffmpeg pulls it, with the
   * camera's ONVIF account for RTSP digest auth when one is kept and the address has none), else
   * GB/T 28181 live play of device + channel through the SIP server of this process.
   */
  sourceOf(c: CameraRef): StreamSource {
    const url = c.streamUrl.trim();
    if (/^(rtsp|rtsps|rtmp|https?):\/\//i.test(url)) return { kind: 'url', url: withAccount(url, c.pull?.account ?? null) };
    if (url) throw VideoErrors.noStreamAddress(c.id, `unsupported stream address scheme (${url.split(':')[0]})`);
    if (!this.gb?.running) throw VideoErrors.noStreamAddress(c.id, 'no rtsp:// address, and GB/T 28181 is not enabled in this process');
    const live = this.gb.live(c.deviceId);
    if (!live?.registered) throw VideoErrors.deviceOffline(c.deviceId);
    return { kind: 'gb', deviceId: c.deviceId, channelId: c.channelId, transport: this.cfg.gbTransport };
  }

  /**
   * How the console can show a camera, before it asks for a stream: `live` false when it has no
   * stream to play — no stream address the server can use (what POST /cameras/:id/stream answers
   * with 409 VIDEO.NO_STREAM_ADDRESS), or, keeping an ONVIF snapshot URI, no stream address and no
   * registered GB/T 28181 device (a snapshot-only camera: its URI is not a stream) — and
   * `snapshotUri` true when it keeps a snapshot URI (GET /cameras/:id/snapshot then gives the
   * camera's own JPEG). A camera that may play but is offline or busy is `live`: the stream answer
   * says why. Errors: 404 camera (or another school's).
   */
  async liveSource(user: AuthUser, cameraId: string): Promise<CameraLiveSource> {
    const c = await this.camera(user, cameraId);
    const snapshotUri = !!c.pull?.snapshotUrl;
    let live = true;
    try {
      this.sourceOf(c);
    } catch (e) {
      const code = e instanceof DomainError ? e.code : null;
      if (code === ErrorCode.VIDEO.NO_STREAM_ADDRESS || (snapshotUri && code === ErrorCode.VIDEO.DEVICE_OFFLINE)) live = false;
    }
    return { cameraId: c.id, live, snapshotUri };
  }

  private gbPlayer(): GbPlayer | null {
    const gb = this.gb;
    if (!gb?.running) return null;
    return {
      invite: async (req) => {
        try {
          return await gb.invite(req);
        } catch (e) {
          if (!(e instanceof InviteError)) throw e;
          if (e.reason === 'offline') throw VideoErrors.deviceOffline(req.deviceId);
          if (e.reason === 'busy') throw VideoErrors.deviceBusy(req.deviceId);
          if (e.reason === 'timeout') throw VideoErrors.inviteTimeout(req.deviceId, req.timeoutMs);
          if (e.reason === 'rejected') throw VideoErrors.deviceRejected(req.deviceId, e.status ?? 0);
          throw new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.BAD_ANSWER, e.message);
        }
      },
    };
  }

  /** GB/T 28181-2016 Annex F: 0 (real time) or 1 (history: playback) + digits 4–8 of the SIP domain + a 4-digit sequence. */
  private nextSsrc(history = false): string {
    this.ssrcSeq = (this.ssrcSeq + 1) % 10000;
    const domain = (this.config.gb28181 as { platformId: string }).platformId.slice(0, 10);
    return `${history ? 1 : 0}${domain.slice(3, 8)}${String(this.ssrcSeq).padStart(4, '0')}`;
  }

  private advertisedHost(): string {
    if (this.cfg.rtpAdvertisedHost) return this.cfg.rtpAdvertisedHost;
    const gbHost = (this.config.gb28181 as { advertisedHost: string }).advertisedHost;
    if (gbHost) return gbHost;
    const h = this.cfg.rtpHost;
    return h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h;
  }

  // ---------------------------------------------------------------- streams

  /** The camera's running stream, or a new one (503 past video.maxStreams). */
  acquire(c: CameraRef): LiveStream {
    if (!this.cfg.enabled) throw VideoErrors.disabled();
    if (this.closing) throw VideoErrors.stopped();
    const running = this.streams.get(c.id);
    if (running && !running.isStopped()) return running;
    const source = this.sourceOf(c);
    const s = this.newStream(c.id, source, (x) => {
      if (this.streams.get(x.cameraId) === x) this.streams.delete(x.cameraId);
    });
    this.streams.set(c.id, s);
    streamsGauge.set(this.streams.size + this.playbacks.size);
    s.start();
    return s;
  }

  /** A stream of this process (a live one: 503 past video.maxStreams; playbacks are counted by `playback`); `forget` removes it from its map when it closes. */
  private newStream(cameraId: string, source: StreamSource, forget: (s: LiveStream) => void): LiveStream {
    const history = !!source.playback;
    if (!history && this.streams.size >= this.cfg.maxStreams) throw VideoErrors.capacity(this.cfg.maxStreams);
    const s = new LiveStream(cameraId, source, {
      cfg: this.cfg,
      gb: this.gbPlayer(),
      pool: this.pool,
      rtpAdvertisedHost: this.advertisedHost(),
      nextSsrc: () => this.nextSsrc(history),
      transcodes: {
        take: () => (this.transcodes < this.cfg.maxTranscodes ? (this.transcodes++, true) : false),
        give: () => (this.transcodes = Math.max(0, this.transcodes - 1)),
      },
      onClosed: (x) => {
        forget(x);
        streamsGauge.set(this.streams.size + this.playbacks.size);
        streamEvents.inc({ event: x.error ? `failed:${x.error.code}` : 'stopped' });
      },
      warn: (m) => this.warn(m),
    });
    streamEvents.inc({ event: history ? 'playback_started' : 'started' });
    return s;
  }

  stream(cameraId: string): LiveStream | undefined {
    return this.streams.get(cameraId);
  }

  /** Playbacks asked for or running (tests, diagnostics). */
  get playbackCount(): number {
    return this.playbackSlots.size;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  get transcodesRunning(): number {
    return this.transcodes;
  }

  /**
   * `POST /cameras/:id/stream`: starts (or joins) the camera's stream, waits for its first
   * keyframe — so a failure is an HTTP error the console can show (offline, busy, timeout) — and
   * mints the token its player shows on the WebSocket. The stream then lingers for the player.
   */
  async play(user: AuthUser, cameraId: string): Promise<PlayTicket> {
    const c = await this.camera(user, cameraId);
    const s = this.acquire(c);
    const release = s.hold();
    try {
      await s.ready;
    } finally {
      release();
    }
    this.snapshotFailures.delete(c.id); // it plays: a snapshot may pull again
    return this.ticket(user, c, s);
  }

  /** The player's ticket for a stream that has its first picture: a signed token (bound to the playback session, if one) and its WebSocket URL. */
  private ticket(user: AuthUser, c: CameraRef, s: LiveStream, playbackId?: string): PlayTicket {
    const { token, expiresAt } = this.tokens.mint(user.id, c.id, c.schoolId, playbackId);
    const q = `camera=${encodeURIComponent(c.id)}&token=${encodeURIComponent(token)}`;
    const info = s.info!;
    return {
      cameraId: c.id,
      token,
      expiresAt,
      url: `${this.cfg.publicWsBase.replace(/\/$/, '')}${WS_PATH}?${q}`,
      codec: info.codec,
      width: info.width,
      height: info.height,
      transcoded: s.transcoded,
    };
  }

  /**
   * `POST /cameras/:id/playback`: plays the camera's recording over [start, end) from its GB/T 28181
   * device (§9.8 INVITE Playback) or, for an RTSP camera, from the recorder URL its playback URL
   * template gives (Hikvision / Dahua NVRs; see fillPlaybackTemplate for the time zone); `end` after
   * now is cut to now; longer than video.playbackMaxSeconds: 400 on the DTO. Each request is a
   * session of its own (one INVITE, SSRC 1…, or one RTSP pull), with the same budget and audit for
   * both kinds; ended by the device's MediaStatus 121 / the recorder's end of stream at the
   * recording's end (viewers get `{type:'ended'}`), once the range has played, or after
   * video.lingerMs without a viewer (BYE / teardown). Errors as for `play`, and 409
   * VIDEO.PLAYBACK_UNSUPPORTED for a camera that is neither a GB/T 28181 channel nor has a template.
   */
  async playback(
    user: AuthUser,
    cameraId: string,
    range: { start: Date; end: Date },
  ): Promise<PlayTicket & { playbackId: string; start: string; end: string }> {
    const c = await this.camera(user, cameraId);
    if (!this.cfg.enabled) throw VideoErrors.disabled();
    if (this.closing) throw VideoErrors.stopped();
    const live = this.sourceOf(c);
    if (live.kind !== 'gb' && !c.pull?.playbackUrlTemplate) throw VideoErrors.playbackUnsupported(c.id);
    const { start, end } = this.playbackRange(range);
    // GB/T 28181: INVITE s=Playback. RTSP: the recorder's playback URL (its template filled with the range, in the time
    // zone it expects), pulled like a live camera with the same account; the range also bounds how long it plays.
    let source: StreamSource;
    if (live.kind === 'gb') source = { ...live, playback: { start, end } };
    else
      source = {
        kind: 'url',
        url: withAccount(fillPlaybackTemplate(c.pull!.playbackUrlTemplate, { start, end }, this.cfg.recorderTimeZone), c.pull!.account),
        playback: { start, end },
      };
    // Their own budget (video.maxPlaybacks, per user, per camera), apart from live and evidence: see the config.
    // Checked and reserved in one synchronous step (requests at once cannot all pass), released if the audit fails.
    const slots = [...this.playbackSlots.values()];
    if (slots.length >= this.cfg.maxPlaybacks) throw VideoErrors.playbackCapacity('process', this.cfg.maxPlaybacks);
    if (slots.filter((x) => x.userId === user.id).length >= this.cfg.maxPlaybacksPerUser)
      throw VideoErrors.playbackCapacity('user', this.cfg.maxPlaybacksPerUser);
    if (slots.filter((x) => x.cameraId === c.id).length >= this.cfg.maxPlaybacksPerCamera)
      throw VideoErrors.playbackCapacity('camera', this.cfg.maxPlaybacksPerCamera);
    const playbackId = randomUUID();
    this.playbackSlots.set(playbackId, { userId: user.id, cameraId: c.id });
    let s: LiveStream;
    try {
      // Audited before the device is asked: who watched which camera's recording of which range (a request that cannot be audited is not made).
      await this.audit.record(this.db.manager, {
        action: 'video_playback',
        entity: 'camera',
        entityId: c.id,
        schoolId: c.schoolId,
        after: { start: start.toISOString(), end: end.toISOString(), playbackId },
      });
      if (this.closing) throw VideoErrors.stopped();
      s = this.newStream(c.id, source, () => {
        this.playbacks.delete(playbackId);
        this.playbackSlots.delete(playbackId);
      });
    } catch (e) {
      this.playbackSlots.delete(playbackId);
      throw e;
    }
    this.playbacks.set(playbackId, s);
    streamsGauge.set(this.streams.size + this.playbacks.size);
    s.start();
    const release = s.hold();
    try {
      await s.ready;
    } finally {
      release();
    }
    return { ...this.ticket(user, c, s, playbackId), playbackId, start: start.toISOString(), end: end.toISOString() };
  }

  /**
   * The range a playback asks of the device, in whole seconds (SDP `t=` is in seconds): start cut
   * down and end up to the second, end cut to now. 400 (field-level): start older than
   * video.playbackMaxAgeDays (no recorder keeps it; and `t=0` would mean "unbounded", RFC 4566) or
   * in the future; end not at least a second after start; longer than video.playbackMaxSeconds.
   */
  private playbackRange(range: { start: Date; end: Date }, now = Date.now()): { start: Date; end: Date } {
    const start = Math.floor(range.start.getTime() / 1000) * 1000;
    const end = Math.min(Math.ceil(range.end.getTime() / 1000) * 1000, Math.floor(now / 1000) * 1000);
    const fields: { field: string; reason: string }[] = [];
    if (start > now) fields.push({ field: 'start', reason: 'must not be in the future: there is no recording yet' });
    else if (start < now - this.cfg.playbackMaxAgeDays * 86_400_000)
      fields.push({
        field: 'start',
        reason: `must be within the last ${this.cfg.playbackMaxAgeDays} days (video.playbackMaxAgeDays): recorders keep no older video`,
      });
    if (range.end.getTime() <= range.start.getTime() || end - start < 1000)
      fields.push({ field: 'end', reason: 'must be at least a second after start (and not after now)' });
    else if (end - start > this.cfg.playbackMaxSeconds * 1000)
      fields.push({ field: 'end', reason: `at most ${this.cfg.playbackMaxSeconds} s after start (video.playbackMaxSeconds)` });
    if (fields.length) throw Errors.validation(fields);
    return { start: new Date(start), end: new Date(end) };
  }

  /** A WebSocket viewer with a verified token: attached to the camera's stream (started again if it lingered out), or to its playback session (410 when it has ended). */
  async attach(claims: StreamClaims, sink: ViewerSink): Promise<() => void> {
    const c = await this.camera(null, claims.c);
    const s = claims.p ? this.playbacks.get(claims.p) : this.acquire(c);
    if (!s || s.isStopped() || s.cameraId !== c.id) throw VideoErrors.playbackEnded();
    const v = s.addViewer(sink);
    this.viewerCount++;
    viewersGauge.set(this.viewerCount);
    let gone = false;
    return () => {
      if (gone) return;
      gone = true;
      this.viewerCount--;
      viewersGauge.set(this.viewerCount);
      s.removeViewer(v);
    };
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * A JPEG of the camera now: from the running stream's last keyframe, else the stream is started
   * for it (and lingers, so a patrol wall's next look is instant). Reused for video.snapshotCacheMs;
   * concurrent requests for one camera share one grab. 504 past video.snapshotTimeoutMs.
   * A failed grab is answered again (same code, `details.remembered`, `retryAfterSeconds` and a Retry-After header) for
   * video.snapshotFailureMemoMs instead of starting another pull (see the config's comment).
   * A camera with an ONVIF snapshot URI is asked for its own JPEG first (no stream, no ffmpeg:
   * `source` 'snapshot_uri'), the stream pull standing in when that fails (video.snapshotUriFallback).
   */
  async snapshot(
    user: AuthUser | null,
    cameraId: string,
  ): Promise<{ jpeg: Buffer; takenAt: Date; cameraId: string; schoolId: string; source: SnapshotSource; snapshotUriError?: string }> {
    const c = await this.camera(user, cameraId);
    const cached = this.snapshots.get(c.id);
    const now = Date.now();
    const failed = this.snapshotFailures.get(c.id);
    if (failed && now - failed.at < this.cfg.snapshotFailureMemoMs && !(cached instanceof Promise))
      throw rememberedFailure(failed, now, this.cfg.snapshotFailureMemoMs);
    if (cached && !(cached instanceof Promise) && now - cached.at < this.cfg.snapshotCacheMs) {
      const { at, ...shot } = cached;
      return { ...shot, takenAt: new Date(at), cameraId: c.id, schoolId: c.schoolId };
    }
    if (cached instanceof Promise) return { ...(await cached), takenAt: new Date(), cameraId: c.id, schoolId: c.schoolId };
    const p = this.grab(c);
    this.snapshots.set(c.id, p);
    try {
      const shot = await p;
      this.snapshots.set(c.id, { at: Date.now(), ...shot });
      this.snapshotFailures.delete(c.id);
      const t = setTimeout(() => {
        const e = this.snapshots.get(c.id);
        if (e && !(e instanceof Promise) && Date.now() - e.at >= this.cfg.snapshotCacheMs) this.snapshots.delete(c.id);
      }, this.cfg.snapshotCacheMs + 10);
      t.unref();
      streamEvents.inc({ event: 'snapshot' });
      return { ...shot, takenAt: new Date(), cameraId: c.id, schoolId: c.schoolId };
    } catch (e) {
      this.snapshots.delete(c.id);
      const error = asDomainError(e);
      // Only the camera's own failures: this server's limits (streams, transcodes, ports, shutdown) say nothing about the camera.
      if (this.cfg.snapshotFailureMemoMs > 0 && !NOT_REMEMBERED.has(error.code)) {
        // From when the pull began, not when it failed: a pull that timed out is not held back longer than one that was refused.
        this.snapshotFailures.set(c.id, { at: now, error });
        const t = setTimeout(() => {
          const f = this.snapshotFailures.get(c.id);
          if (f && Date.now() - f.at >= this.cfg.snapshotFailureMemoMs) this.snapshotFailures.delete(c.id);
        }, this.cfg.snapshotFailureMemoMs + 10);
        t.unref();
      }
      throw e;
    }
  }

  /**
   * One picture of the camera within video.snapshotTimeoutMs: its snapshot URI first when it has one
   * (at most video.snapshotUriTimeoutMs of it), else — or when that fails and
   * video.snapshotUriFallback — a pull of its stream in the time left. A camera whose stream
   * cannot be pulled at all (no address) answers the snapshot URI's error, the more telling one.
   */
  private async grab(c: CameraRef): Promise<Shot> {
    if (!this.cfg.enabled) throw VideoErrors.disabled();
    if (this.closing) throw VideoErrors.stopped();
    const deadline = Date.now() + this.cfg.snapshotTimeoutMs;
    let uriError: DomainError | undefined;
    if (c.pull?.snapshotUrl) {
      try {
        const got = await fetchSnapshotUri({
          url: c.pull.snapshotUrl,
          onvifHost: c.pull.onvifHost,
          allowHosts: this.cfg.snapshotUriAllowHosts,
          account: c.pull.account,
          timeoutMs: Math.min(this.cfg.snapshotUriTimeoutMs, this.cfg.snapshotTimeoutMs),
          maxBytes: this.cfg.snapshotUriMaxBytes,
          auth: { memory: this.snapshotAuth, camera: c.id },
        });
        snapshotSources.inc({ source: 'snapshot_uri', result: 'ok' });
        return { jpeg: got.jpeg, source: 'snapshot_uri' };
      } catch (e) {
        uriError = asDomainError(e);
        snapshotSources.inc({ source: 'snapshot_uri', result: uriError.code });
        // The message names scheme, host and path only (never the account, never the query).
        this.warn(
          `camera ${c.id}: snapshot URI failed (${uriError.code}: ${uriError.message})${this.cfg.snapshotUriFallback ? '; pulling its stream instead' : ''}`,
        );
        if (!this.cfg.snapshotUriFallback) throw uriError;
      }
    }
    try {
      const jpeg = await this.grabFromStream(c, deadline);
      snapshotSources.inc({ source: 'stream', result: 'ok' });
      return { jpeg, source: 'stream', ...(uriError ? { snapshotUriError: uriError.code } : {}) };
    } catch (e) {
      if (uriError && e instanceof DomainError && e.code === ErrorCode.VIDEO.NO_STREAM_ADDRESS) throw uriError;
      throw e;
    }
  }

  /** A picture from the camera's stream (running, else started for it): its keyframe through a warm ffmpeg JPEG encoder, by `deadline`. */
  private async grabFromStream(c: CameraRef, deadline: number): Promise<Buffer> {
    const s = this.acquire(c);
    const release = s.hold();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(VideoErrors.snapshotTimeout(this.cfg.snapshotTimeoutMs)), Math.max(0, deadline - Date.now()));
      });
      await Promise.race([s.ready, timeout]);
      const k = s.keyframe();
      if (!k) throw VideoErrors.snapshotTimeout(this.cfg.snapshotTimeoutMs);
      // The picture of a keyframe is decoded once, however many ask before the next keyframe.
      const memo = this.keyframeJpegs.get(s);
      if (memo?.fragment === k.fragment) return await Promise.race([memo.jpeg, timeout]);
      const jpeg = this.encoders().encode(k.init, k.fragment, Math.max(500, deadline - Date.now()));
      this.keyframeJpegs.set(s, { fragment: k.fragment, jpeg });
      jpeg.catch(() => this.keyframeJpegs.delete(s));
      return await Promise.race([jpeg, timeout]);
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  private warn(m: string): void {
    const now = Date.now();
    if (now - this.lastWarnAt < 5000) return;
    this.lastWarnAt = now;
    this.logger.warn(m);
  }

  /** Streams stop (ffmpeg killed, BYE sent) while the SIP server can still send the BYEs. */
  beforeApplicationShutdown(): void {
    this.closing = true;
    this.jpeg?.close();
    for (const s of [...this.streams.values(), ...this.playbacks.values()]) s.stop('shutdown');
  }
}

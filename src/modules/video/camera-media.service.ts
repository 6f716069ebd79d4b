import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError, Errors } from '../../infra/http/errors';
import { HttpStatus } from '@nestjs/common';
import { AuditService } from '../audit-log';
import { RegistryService } from '../registry';
import { CredentialBox } from './credential-box';
import { onHost, OnvifErrors, OnvifProbeFailed, OnvifProbeResult, probeOnvif } from './onvif-probe';
import { VideoConfig, videoConfig } from './video.config';
import { CameraAccount, hideAccount, templateProblem } from './camera-urls';

/** A camera's media settings as the API shows them: never the password, only whether one is kept. */
export interface CameraMediaView {
  cameraId: string;
  onvifHost: string | null;
  onvifPort: number | null;
  onvifUsername: string | null;
  onvifPwKept: boolean;
  onvifProfileToken: string | null;
  snapshotUrl: string;
  playbackUrlTemplate: string;
  lastProbe: (OnvifProbeResult & { at: string }) | null;
  probedAt: Date | null;
}

/** What the video service needs to pull a camera: its account (RTSP digest auth, snapshot URI), its recorder's playback URL template, its snapshot URI and the ONVIF host that URI must be on. */
export interface CameraPullSettings {
  account: CameraAccount;
  playbackUrlTemplate: string;
  /** The ONVIF snapshot URI the last probe kept ('' when none). */
  snapshotUrl: string;
  onvifHost: string | null;
}

export interface MediaSettingsChange {
  onvifHost?: string | null;
  onvifPort?: number | null;
  onvifUsername?: string | null;
  /** null forgets the kept password. */
  onvifPassword?: string | null;
  onvifProfileToken?: string | null;
  playbackUrlTemplate?: string;
}

interface Row {
  cameraId: string;
  onvifHost: string | null;
  onvifPort: number | null;
  onvifUsername: string | null;
  onvifPasswordEnc: string | null;
  onvifProfileToken: string | null;
  snapshotUrl: string;
  playbackUrlTemplate: string;
  lastProbe: (OnvifProbeResult & { at: string }) | null;
  probedAt: Date | null;
}

const COLS = `camera_id AS "cameraId", onvif_host AS "onvifHost", onvif_port AS "onvifPort", onvif_username AS "onvifUsername",
  onvif_password_enc AS "onvifPasswordEnc", onvif_profile_token AS "onvifProfileToken", snapshot_url AS "snapshotUrl",
  playback_url_template AS "playbackUrlTemplate", last_probe AS "lastProbe", probed_at AS "probedAt"`;

/** ONVIF's default port when none is set: HTTP (ONVIF Core §5.1: the device service is at http://host/onvif/device_service). */
export const ONVIF_DEFAULT_PORT = 80;

/**
 * Per-camera media settings (issue 15): the ONVIF account and the "probe camera" admin action,
 * which asks the camera (through the `onvif` package) for its profiles, RTSP stream URI and
 * snapshot URI and fills the camera's stream address; and the RTSP playback URL template of its
 * recorder. The password is kept encrypted (CredentialBox), handled like the GB/T 28181 device
 * passwords: written by admins only, never returned, audited as 'set' / null.
 */
@Injectable()
export class CameraMediaService {
  private readonly logger = new Logger('CameraMedia');
  private readonly cfg: VideoConfig;
  private readonly box: CredentialBox;
  /** ONVIF probes running in this process (at most video.onvifProbeConcurrency). */
  private probesRunning = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
    @InjectDataSource() private readonly db: DataSource,
  ) {
    this.cfg = videoConfig(config);
    this.box = new CredentialBox(this.cfg.credentialKey || `jwt:${config.auth.jwtSecret}`);
  }

  private async row(cameraId: string, m: EntityManager | DataSource = this.db, lock = false): Promise<Row | null> {
    const [r] = (await m.query(`SELECT ${COLS} FROM camera_media_settings WHERE camera_id = $1${lock ? ' FOR UPDATE' : ''}`, [cameraId])) as Row[];
    return r ?? null;
  }

  private view(cameraId: string, r: Row | null): CameraMediaView {
    return {
      cameraId,
      onvifHost: r?.onvifHost ?? null,
      onvifPort: r?.onvifPort ?? null,
      onvifUsername: r?.onvifUsername ?? null,
      onvifPwKept: !!r?.onvifPasswordEnc,
      onvifProfileToken: r?.onvifProfileToken ?? null,
      snapshotUrl: r?.snapshotUrl ?? '',
      playbackUrlTemplate: r?.playbackUrlTemplate ?? '',
      lastProbe: r?.lastProbe ?? null,
      probedAt: r?.probedAt ?? null,
    };
  }

  private async cameraOrThrow(cameraId: string) {
    const [c] = await this.registry.cameras({ ids: [cameraId] });
    if (!c) throw Errors.notFound(ErrorCode.CAMERA.NOT_FOUND, cameraId);
    return c;
  }

  async get(cameraId: string): Promise<CameraMediaView> {
    await this.cameraOrThrow(cameraId);
    return this.view(cameraId, await this.row(cameraId));
  }

  /**
   * For pulls: the account (null when none, or when its password cannot be read; bound to the ONVIF
   * host when one is set: withAccount adds it to RTSP addresses on that host only), the playback
   * template and the snapshot URI with its ONVIF host.
   */
  async pullSettings(cameraId: string): Promise<CameraPullSettings> {
    const r = await this.row(cameraId);
    const password = r?.onvifPasswordEnc ? this.box.open(r.onvifPasswordEnc) : '';
    return {
      account: r?.onvifUsername && password !== null ? { username: r.onvifUsername, password, ...(r.onvifHost ? { host: r.onvifHost } : {}) } : null,
      playbackUrlTemplate: r?.playbackUrlTemplate ?? '',
      snapshotUrl: r?.snapshotUrl ?? '',
      onvifHost: r?.onvifHost ?? null,
    };
  }

  /** Sets some of a camera's media settings (admin); audited with the password as 'set' / null. */
  async update(cameraId: string, change: MediaSettingsChange): Promise<CameraMediaView> {
    const c = await this.cameraOrThrow(cameraId);
    if (change.playbackUrlTemplate !== undefined) {
      const problem = templateProblem(change.playbackUrlTemplate);
      if (problem) throw Errors.validation([{ field: 'playbackUrlTemplate', reason: problem }]);
    }
    const after = await this.db.transaction(async (m) => {
      await m.query(`INSERT INTO camera_media_settings (camera_id) VALUES ($1) ON CONFLICT DO NOTHING`, [cameraId]);
      const before = (await this.row(cameraId, m, true))!;
      const sets: string[] = [];
      const params: unknown[] = [cameraId];
      const set = (col: string, v: unknown) => {
        params.push(v);
        sets.push(`${col} = $${params.length}`);
      };
      if (change.onvifHost !== undefined) set('onvif_host', change.onvifHost || null);
      if (change.onvifPort !== undefined) set('onvif_port', change.onvifPort);
      if (change.onvifUsername !== undefined) set('onvif_username', change.onvifUsername || null);
      if (change.onvifPassword !== undefined) set('onvif_password_enc', change.onvifPassword === null ? null : this.box.seal(change.onvifPassword));
      if (change.onvifProfileToken !== undefined) set('onvif_profile_token', change.onvifProfileToken || null);
      if (change.playbackUrlTemplate !== undefined) set('playback_url_template', change.playbackUrlTemplate);
      if (sets.length) await m.query(`UPDATE camera_media_settings SET ${sets.join(', ')}, updated_at = now() WHERE camera_id = $1`, params);
      const row = (await this.row(cameraId, m))!;
      await this.audit.record(m, {
        action: 'update',
        entity: 'camera_media_settings',
        entityId: cameraId,
        schoolId: c.schoolId,
        before: this.audited(before),
        after: { ...this.audited(row), ...(change.onvifPassword !== undefined ? { onvifPwChange: change.onvifPassword === null ? 'cleared' : 'set' } : {}) },
      });
      return row;
    });
    return this.view(cameraId, after);
  }

  /**
   * A failed probe is logged and audited (`onvif_probe_failed`: our code, the ONVIF request that
   * failed, and what the device said — its SOAP fault text, a URI it named — which the answer never
   * carries: OnvifProbeFailed), then rethrown. An audit that cannot be written does not hide the
   * probe's own error.
   */
  private async probeFailed(c: { id: string; schoolId: string }, onvifHost: string, e: unknown): Promise<never> {
    if (!(e instanceof DomainError)) throw e;
    const deviceSaid = e instanceof OnvifProbeFailed ? e.deviceSaid : null;
    const step = e instanceof OnvifProbeFailed ? e.step : null;
    this.logger.warn(
      `ONVIF probe of camera ${c.id} at ${onvifHost} failed: ${e.code}${step ? ` at ${step}` : ''}${deviceSaid ? `; the device said: ${JSON.stringify(deviceSaid)}` : ''}`,
    );
    await this.db
      .transaction((m) =>
        this.audit.record(m, {
          action: 'onvif_probe_failed',
          entity: 'camera',
          entityId: c.id,
          schoolId: c.schoolId,
          after: { code: e.code, onvifHost, step, deviceSaid },
        }),
      )
      .catch((err: Error) => this.logger.warn(`audit entry of a failed ONVIF probe not written: ${err.message}`));
    throw e;
  }

  /** Keys chosen to pass the audit log's secret scrubber ('password', 'token' keys are redacted whole): the password itself is never in it. */
  private audited(r: Row) {
    return {
      onvifHost: r.onvifHost,
      onvifPort: r.onvifPort,
      onvifUsername: r.onvifUsername,
      onvifPwKept: !!r.onvifPasswordEnc,
      onvifProfile: r.onvifProfileToken,
      playbackUrlTemplate: r.playbackUrlTemplate,
    };
  }

  /**
   * "Probe camera" (admin): settings given are kept first (so a probe with a new password keeps
   * it), then the camera is asked over ONVIF; on success its stream address becomes the RTSP
   * stream URI found (without the account: that is added only for ffmpeg), its snapshot URI is
   * kept, and vendor / model are filled when empty. Both URIs are put on the configured onvifHost
   * (onHost: a device naming another host does not get the account sent there; the host it named is
   * in the audit entry). Errors: 409 VIDEO.ONVIF_NOT_CONFIGURED, 400 VIDEO.ONVIF_ADDRESS_REFUSED, 504
   * VIDEO.ONVIF_UNREACHABLE, 502 VIDEO.ONVIF_AUTH_FAILED / VIDEO.ONVIF_NOT_ONVIF /
   * VIDEO.ONVIF_ANSWER_TOO_LARGE — a failed probe changes nothing but the settings given; 503
   * VIDEO.ONVIF_PROBE_BUSY (Retry-After) when video.onvifProbeConcurrency probes run already — each
   * holds a worker thread with up to 64 MB for up to onvifProbeMaxMs — and then nothing is kept or asked.
   */
  async probe(cameraId: string, change: MediaSettingsChange = {}): Promise<{ streamUrl: string; settings: CameraMediaView; result: OnvifProbeResult }> {
    // The slot is taken before anything is awaited, so probes asked for at once cannot all pass the check.
    if (this.probesRunning >= this.cfg.onvifProbeConcurrency) throw OnvifErrors.busy(this.cfg.onvifProbeConcurrency);
    this.probesRunning++;
    try {
      return await this.probeNow(cameraId, change);
    } finally {
      this.probesRunning--;
    }
  }

  private async probeNow(cameraId: string, change: MediaSettingsChange) {
    const c = await this.cameraOrThrow(cameraId);
    if (Object.values(change).some((v) => v !== undefined)) await this.update(cameraId, change);
    const r = await this.row(cameraId);
    if (!r?.onvifHost)
      throw new DomainError(HttpStatus.CONFLICT, ErrorCode.VIDEO.ONVIF_NOT_CONFIGURED, `camera ${cameraId} has no ONVIF address: set onvifHost`);
    const password = r.onvifPasswordEnc ? this.box.open(r.onvifPasswordEnc) : '';
    if (password === null)
      throw new DomainError(
        HttpStatus.CONFLICT,
        ErrorCode.VIDEO.ONVIF_NOT_CONFIGURED,
        `the kept ONVIF password of camera ${cameraId} cannot be read (video.credentialKey or auth.jwtSecret changed): enter it again`,
      );
    const result = await probeOnvif({
      host: r.onvifHost,
      port: r.onvifPort ?? ONVIF_DEFAULT_PORT,
      username: r.onvifUsername ?? '',
      password,
      profileToken: r.onvifProfileToken,
      timeoutMs: this.cfg.onvifTimeoutMs,
      maxMs: this.cfg.onvifProbeMaxMs,
      maxAnswerBytes: this.cfg.onvifMaxAnswerBytes,
      allowedNetworks: this.cfg.onvifAllowedNetworks,
    }).catch((e: unknown) => this.probeFailed(c, r.onvifHost!, e));
    // The device does not choose where the account goes: its URIs are put on the configured host (onHost).
    const stream = onHost(result.streamUri, r.onvifHost);
    const snapshot = onHost(result.snapshotUri, r.onvifHost);
    // The camera's address as stored and shown: never with an account in it (camera rows go to consoles and events).
    const streamUrl = hideAccount(stream.uri);
    const snapshotUrl = hideAccount(snapshot.uri);
    const moved = {
      ...(stream.movedFrom ? { streamHostNamed: stream.movedFrom } : {}),
      ...(snapshot.movedFrom ? { snapshotHostNamed: snapshot.movedFrom } : {}),
    };
    const settings = await this.db.transaction(async (m) => {
      await m.query(
        `UPDATE cameras SET stream_url = $2,
                vendor = CASE WHEN vendor = '' THEN $3 ELSE vendor END,
                model = CASE WHEN model = '' THEN $4 ELSE model END,
                updated_at = now()
          WHERE id = $1`,
        [cameraId, streamUrl, result.device.manufacturer.slice(0, 100), result.device.model.slice(0, 100)],
      );
      await m.query(
        `UPDATE camera_media_settings SET snapshot_url = $2, onvif_profile_token = $3, last_probe = $4, probed_at = now(), updated_at = now() WHERE camera_id = $1`,
        [
          cameraId,
          snapshotUrl,
          result.profileToken,
          JSON.stringify({ ...result, streamUri: streamUrl, snapshotUri: snapshotUrl, at: new Date().toISOString() }),
        ],
      );
      await this.audit.record(m, {
        action: 'onvif_probe',
        entity: 'camera',
        entityId: cameraId,
        schoolId: c.schoolId,
        before: { streamUrl: c.streamUrl },
        after: { streamUrl, snapshotUrl, profile: result.profileToken, device: result.device, ...moved },
      });
      return (await this.row(cameraId, m))!;
    });
    return { streamUrl, settings: this.view(cameraId, settings), result: { ...result, streamUri: streamUrl, snapshotUri: snapshotUrl } };
  }
}

import {
  applyDecorators,
  Body,
  CallHandler,
  Controller,
  Delete,
  ExecutionContext,
  Get,
  Headers,
  HttpCode,
  Inject,
  Injectable,
  NestInterceptor,
  Patch,
  Post,
  Req,
  Res,
  UseInterceptors,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import multer from 'multer';
import { Observable } from 'rxjs';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { TASK_CLOSE_ROLES } from '../patrols';
import { IncidentPhotosService } from './incident-photos.service';
import { photoTooLarge } from './photo-uploads.service';
import { RectificationPhotosService } from './rectification-photos.service';
import { videoConfig } from './video.config';
import { isUUID, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { CameraMediaService } from './camera-media.service';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotBefore, IsStrictDateTime } from '../../infra/http/dates';
import { UuidParam } from '../../infra/http/params';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import { ALL_ROLES, AuthUser } from '../../infra/access/roles';
import { EvidenceService } from './evidence.service';
import { VideoService } from './video.service';

export class CaptureEvidenceDto {
  @ApiPropertyOptional({ description: 'what the picture is for (default manual)' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9_.+-]{0,39}$/)
  purpose?: string;

  @ApiPropertyOptional({ description: 'the record it belongs to (incident id…)' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  refId?: string;
}

export class PlaybackDto {
  @ApiProperty({ description: 'start of the recording to play, an ISO 8601 instant with offset (e.g. 2026-11-30T03:00:00+08:00); not in the future' })
  @IsStrictDateTime()
  start!: string;

  @ApiProperty({ description: 'end of the range (after start, at most video.playbackMaxSeconds later); a time after now is cut to now' })
  @IsStrictDateTime()
  @IsNotBefore('start')
  end!: string;
}

/**
 * A camera's ONVIF account and recorder playback template (admin). Every field optional; null
 * clears. The password is kept encrypted and never returned (`onvifPwKept` says whether one is kept).
 */
export class CameraMediaDto {
  @ApiPropertyOptional({
    type: String,
    description: "the camera's ONVIF address: host name or IP (the device service is http://host:port/onvif/device_service)",
    nullable: true,
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @Matches(/^[A-Za-z0-9.:-]{1,253}$/, { message: 'onvifHost: a host name or IP address' })
  onvifHost?: string | null;

  @ApiPropertyOptional({ type: Number, description: 'ONVIF HTTP port (null = 80)', nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsInt()
  @Min(1)
  @Max(65535)
  onvifPort?: number | null;

  @ApiPropertyOptional({ type: String, description: "the camera's account (ONVIF, and RTSP digest auth for its streams)", nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @Matches(/^[\x21-\x7e]{1,64}$/, { message: 'onvifUsername: 1–64 visible ASCII characters' })
  onvifUsername?: string | null;

  @ApiPropertyOptional({ type: String, description: 'its password (kept encrypted, never returned); null forgets it', nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @Matches(/^[\x20-\x7e]{1,128}$/, { message: 'onvifPassword: 1–128 printable ASCII characters' })
  onvifPassword?: string | null;

  @ApiPropertyOptional({ type: String, description: 'the media profile to play (null = the first H.264 profile the probe finds)', nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @Matches(/^[\x21-\x7e]{1,64}$/, { message: 'onvifProfileToken: 1–64 visible ASCII characters' })
  onvifProfileToken?: string | null;

  @ApiPropertyOptional({
    type: String,
    description:
      "RTSP playback URL of the camera's recorder ('' = none), with {start:FMT} {end:FMT} (recorder local time, video.recorderTimeZone) or " +
      '{startUtc:FMT} {endUtc:FMT} (UTC); FMT tokens YYYY MM DD HH mm ss. Hikvision: rtsp://nvr:554/Streaming/tracks/101?starttime={startUtc:YYYYMMDDTHHmmssZ}&endtime={endUtc:YYYYMMDDTHHmmssZ}; ' +
      'Dahua: rtsp://nvr:554/cam/playback?channel=1&subtype=0&starttime={start:YYYY_MM_DD_HH_mm_ss}&endtime={end:YYYY_MM_DD_HH_mm_ss}',
  })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  playbackUrlTemplate?: string;
}

const PHOTO_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Reads a photo (an alarm's, a rectification task's; multipart, field `file`) into memory, refusing it past video.photoMaxBytes
 * (413) before it is all read. Runs after the auth guard: anonymous uploads are never read.
 */
@Injectable()
export class PhotoUploadInterceptor implements NestInterceptor {
  private readonly limit: number;
  private readonly upload: ReturnType<ReturnType<typeof multer>['single']>;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.limit = videoConfig(config).photoMaxBytes;
    this.upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: this.limit, files: 1, fields: 5, parts: 10 } }).single('file');
  }

  async intercept(ctx: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const req = ctx.switchToHttp().getRequest<Request>();
    const res = ctx.switchToHttp().getResponse<Response>();
    // The record's id first (as UuidParam would answer it), so a wrong address is never read as an upload.
    if (!isUUID(String(req.params?.id ?? ''))) throw Errors.validation([{ field: 'id', reason: 'must be a UUID' }]);
    if (!req.is('multipart/form-data')) throw Errors.badRequest(ErrorCode.EVIDENCE.PHOTO_MISSING, '请以 multipart/form-data 上传照片，字段名为 file');
    await new Promise<void>((resolve, reject) =>
      this.upload(req, res, (err?: unknown) => {
        if (!err) return resolve();
        const code = (err as { code?: string }).code;
        if (code === 'LIMIT_FILE_SIZE') reject(Errors.payloadTooLarge(photoTooLarge(this.limit)));
        else reject(Errors.badRequest(ErrorCode.EVIDENCE.PHOTO_MISSING, '只能上传一张照片，字段名为 file'));
      }),
    );
    if (!req.file) throw Errors.badRequest(ErrorCode.EVIDENCE.PHOTO_MISSING, '缺少照片：请在字段 file 中上传 JPEG 图片');
    return next.handle();
  }
}

/** A photo upload route: multipart `file` (a JPEG) read by PhotoUploadInterceptor, and its optional Idempotency-Key (photoKey). */
const PhotoUpload = () =>
  applyDecorators(
    UseInterceptors(PhotoUploadInterceptor),
    ApiConsumes('multipart/form-data'),
    ApiBody({ schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary', description: 'JPEG' } } } }),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: '1–128 of A-Za-z0-9_.:- — a retry with the same key and file stores nothing twice; another file under a used key is 409',
    }),
  );

/** The Idempotency-Key of a photo upload, checked: 400 naming the header when it is not 1–128 of A-Za-z0-9_.:-. */
function photoKey(key: string | undefined): string | undefined {
  if (key !== undefined && !PHOTO_KEY.test(key)) throw Errors.validation([{ field: 'Idempotency-Key', reason: '1–128 letters, digits or _.:-' }]);
  return key;
}

/** 201 with the stored photo, or 200 with the one a retry under the same key stored before. */
function photoAnswer<R extends object>(res: Response, { record, created }: { record: R; created: boolean }): R & { created: boolean } {
  res.status(created ? 201 : 200);
  return { ...record, created };
}

/** A stored or taken picture: a JPEG shown in the page, never sniffed into something else (an upload is re-encoded, still). */
function pictureHeaders(res: Response, filename: string): void {
  res.setHeader('Content-Type', 'image/jpeg');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Disposition', `inline; filename="${filename}"`);
}

/**
 * Live video and snapshots. Who may play or grab a camera: whoever may read it (every role, a
 * school's security staff only their school's cameras).
 */
/** A picture route's answer: the JPEG bytes themselves. */
const JPEG_ANSWER = { description: 'the picture', content: { 'image/jpeg': { schema: { type: 'string' as const, format: 'binary' } } } };

@ApiTags('video')
@ApiBearerAuth()
@Controller()
export class VideoController {
  constructor(
    private readonly video: VideoService,
    private readonly evidence: EvidenceService,
    private readonly photos: IncidentPhotosService,
    private readonly taskPhotos: RectificationPhotosService,
    private readonly media: CameraMediaService,
  ) {}

  /** A camera's media settings (admin): ONVIF address and account (never the password), last probe, snapshot URI, playback URL template. */
  @Roles('admin')
  @Get('cameras/:id/media')
  mediaSettings(@UuidParam() id: string) {
    return this.media.get(id);
  }

  /** Changes a camera's media settings (admin; audited, the password as 'set' / null). 400 on a playback URL template without start/end placeholders. */
  @Roles('admin')
  @Patch('cameras/:id/media')
  updateMediaSettings(@UuidParam() id: string, @Body() dto: CameraMediaDto) {
    return this.media.update(id, dto);
  }

  /**
   * "Probe camera" (admin): keeps the settings given, asks the camera over ONVIF (device
   * information, profiles, RTSP stream URI, snapshot URI) and fills its stream address. Errors: 409
   * VIDEO.ONVIF_NOT_CONFIGURED (no host, or the kept password cannot be read), 504
   * VIDEO.ONVIF_UNREACHABLE (no answer within video.onvifTimeoutMs, or the whole probe past
   * video.onvifProbeMaxMs), 502 VIDEO.ONVIF_AUTH_FAILED, 502 VIDEO.ONVIF_NOT_ONVIF, 502
   * VIDEO.ONVIF_ANSWER_TOO_LARGE (an answer past video.onvifMaxAnswerBytes), 400
   * VIDEO.ONVIF_ADDRESS_REFUSED (loopback, link-local…, or outside video.onvifAllowedNetworks), 503
   * VIDEO.ONVIF_PROBE_BUSY (video.onvifProbeConcurrency; Retry-After). A failure's message and
   * details are ours (`details.step`: the ONVIF request that failed); what the device said is in the
   * `onvif_probe_failed` audit entry, never in the answer.
   */
  @Roles('admin')
  @Post('cameras/:id/onvif-probe')
  @HttpCode(200)
  probeOnvif(@UuidParam() id: string, @Body() dto: CameraMediaDto) {
    return this.media.probe(id, dto);
  }

  /**
   * Attaches a photo to an alarm (the guard's phone; whoever may see the incident and raise alarms):
   * multipart field `file`, a JPEG of at most video.photoMaxBytes and video.photoMaxPixels, at most
   * video.photosPerIncident per incident. Kept as evidence as long as the incident; shown on its
   * timeline (`photo`, `data.evidenceId` → GET /video/evidence/:id). With `Idempotency-Key` a retry
   * answers the first upload (200) instead of storing it again; the same key with another file is 409
   * EVIDENCE.PHOTO_KEY_REUSED (`details.evidenceId`). Errors: 404 incident (another school's too), 413
   * too large, 415 not a JPEG, 409 EVIDENCE.PHOTO_LIMIT.
   */
  @Roles('admin', 'operator', 'supervisor', 'school_security')
  @Post('incidents/:id/photos')
  @PhotoUpload()
  async attachPhoto(
    @UuidParam() id: string,
    @Req() req: Request,
    @Headers('idempotency-key') key: string | undefined,
    @CurrentUser() user: AuthUser,
    @Res({ passthrough: true }) res: Response,
  ) {
    return photoAnswer(res, await this.photos.attach(user, id, req.file!.buffer, photoKey(key)));
  }

  /**
   * Uploads a photo of a rectification task's fix (the school's phone, before closing it): multipart field `file`, a
   * JPEG checked and stored as for alarm photos (re-encoded: no EXIF/GPS), at most video.photosPerTask per task. The
   * answer's `id` goes in POST /rectification-tasks/{id}/close `photoIds`; the picture is GET /video/evidence/{id}
   * (the task's school and the district; kept as long as the task). Whoever may close the task (its school's staff,
   * operators, supervisors, admins); `Idempotency-Key` as for alarm photos. Errors: 404 task (another school's too),
   * 409 RECTIFICATION_TASK.ALREADY_CLOSED, 413 too large, 415 not a JPEG, 409 EVIDENCE.PHOTO_LIMIT.
   */
  @Roles(...TASK_CLOSE_ROLES)
  @Post('rectification-tasks/:id/photos')
  @PhotoUpload()
  async attachTaskPhoto(
    @UuidParam() id: string,
    @Req() req: Request,
    @Headers('idempotency-key') key: string | undefined,
    @CurrentUser() user: AuthUser,
    @Res({ passthrough: true }) res: Response,
  ) {
    return photoAnswer(res, await this.taskPhotos.attach(user, id, req.file!.buffer, photoKey(key)));
  }

  /**
   * The photos of the task's current closing round (since it was created, or last sent back), oldest first: what a
   * closing may name (`photoIds`), shown on the phone after a reload; `limit` is video.photosPerTask for the round.
   * Whoever may see the task (404 for another school's).
   */
  @Roles(...ALL_ROLES)
  @Get('rectification-tasks/:id/photos')
  taskPhotoList(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    return this.taskPhotos.list(user, id);
  }

  /**
   * Withdraws a photo the caller uploaded in the task's current round (the task open): it goes, and no longer counts
   * toward video.photosPerTask. 204; 404 EVIDENCE.NOT_FOUND for anything else (another person's, an earlier round's,
   * another task's photo); 409 RECTIFICATION_TASK.ALREADY_CLOSED. Audited.
   */
  @Roles(...TASK_CLOSE_ROLES)
  @Delete('rectification-tasks/:id/photos/:photoId')
  @HttpCode(204)
  async removeTaskPhoto(@UuidParam() id: string, @UuidParam('photoId') photoId: string, @CurrentUser() user: AuthUser): Promise<void> {
    await this.taskPhotos.remove(user, id, photoId);
  }

  /**
   * Starts (or joins) the camera's live stream and answers once its first keyframe is there:
   * `{ token, expiresAt, url, codec, width, height }` — the player opens `url` (a WebSocket) within
   * the token's life (video.tokenTtlSeconds). Errors: 404 camera, 403 other school, 409 no stream
   * address, 503 device offline / busy / capacity, 502 device refused, 504 no answer / no picture.
   */
  @Roles(...ALL_ROLES)
  @Post('cameras/:id/stream')
  @HttpCode(200)
  play(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    return this.video.play(user, id);
  }

  /**
   * Plays the camera's recording over [start, end) (GB/T 28181 §9.8 INVITE Playback): a ticket as
   * for `stream` (its WebSocket carries this playback only) with `playbackId` and the range played.
   * Audited (who watched which camera's recording, which range). 400 on the range (see
   * VideoService.playback), 503 VIDEO.PLAYBACK_CAPACITY past the playback caps, 409
   * VIDEO.PLAYBACK_UNSUPPORTED for a camera that is not a GB/T 28181 channel; otherwise as `stream`.
   */
  @Roles(...ALL_ROLES)
  @Post('cameras/:id/playback')
  @HttpCode(200)
  async playback(@UuidParam() id: string, @Body() dto: PlaybackDto, @CurrentUser() user: AuthUser) {
    return this.video.playback(user, id, { start: new Date(dto.start), end: new Date(dto.end) });
  }

  /**
   * How the console can show the camera before it asks for a stream: `{ cameraId, live, snapshotUri }` — `live` false when
   * there is no stream to play (no usable stream address; or a snapshot URI, no stream address and no registered GB/T 28181
   * device), so the player shows the latest snapshot instead of asking for a stream it cannot have. Errors: 404 camera (another school's too).
   */
  @Roles(...ALL_ROLES)
  @Get('cameras/:id/live-source')
  liveSource(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    return this.video.liveSource(user, id);
  }

  /**
   * A JPEG of the camera now: from its ONVIF snapshot URI when it has one, else (or when that fails) from the running stream
   * or a short pull; cached video.snapshotCacheMs; X-Snapshot-Source says which. Errors as for stream, and VIDEO.SNAPSHOT_URI_*
   * when the snapshot URI failed and the stream cannot stand in (no address, or video.snapshotUriFallback false).
   */
  @Roles(...ALL_ROLES)
  @Get('cameras/:id/snapshot')
  @ApiProduces('image/jpeg')
  @ApiOkResponse(JPEG_ANSWER)
  async snapshot(@UuidParam() id: string, @CurrentUser() user: AuthUser, @Res() res: Response): Promise<void> {
    const shot = await this.video.snapshot(user, id);
    pictureHeaders(res, `snapshot-${id}.jpg`);
    res.setHeader('Cache-Control', `private, max-age=${Math.floor(this.video.cfg.snapshotCacheMs / 1000)}`);
    res.setHeader('X-Snapshot-Taken-At', shot.takenAt.toISOString());
    res.setHeader('X-Snapshot-Source', shot.source); // snapshot_uri (the camera's own JPEG) or stream
    res.end(shot.jpeg);
  }

  /**
   * Keeps a snapshot of the camera as evidence (SHA-256 recorded; retention video.evidenceRetentionDays). The record says
   * where the picture came from (`source`: snapshot_uri or stream) and, when the stream stood in for a failed snapshot URI,
   * that failure's code (`snapshotUriError`).
   */
  @Roles('admin', 'operator', 'supervisor', 'school_security')
  @Post('cameras/:id/evidence')
  capture(@UuidParam() id: string, @Body() body: CaptureEvidenceDto, @CurrentUser() user: AuthUser) {
    return this.evidence.capture(user, id, body.purpose ?? 'manual', body.refId ?? null);
  }

  /** An evidence picture, checked against its recorded SHA-256 (409 when altered, 410 when gone); X-Evidence-Source says where it came from. */
  @Roles(...ALL_ROLES)
  @Get('video/evidence/:id')
  @ApiProduces('image/jpeg')
  @ApiOkResponse(JPEG_ANSWER)
  async evidencePicture(@UuidParam() id: string, @CurrentUser() user: AuthUser, @Res() res: Response): Promise<void> {
    const { record, jpeg } = await this.evidence.read(user, id);
    pictureHeaders(res, `evidence-${record.id}.jpg`);
    res.setHeader('Cache-Control', 'private, max-age=3600, immutable');
    res.setHeader('X-Content-SHA256', record.sha256);
    res.setHeader('X-Evidence-Source', record.source); // snapshot_uri, stream, upload or unknown (kept before sources were)
    res.end(jpeg);
  }
}

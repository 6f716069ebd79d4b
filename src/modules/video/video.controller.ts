import { Body, Controller, Get, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { ApiPropertyOptional } from '@nestjs/swagger';
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

/**
 * Live video and snapshots. Who may play or grab a camera: whoever may read it (every role, a
 * school's security staff only their school's cameras).
 */
@ApiTags('video')
@ApiBearerAuth()
@Controller()
export class VideoController {
  constructor(
    private readonly video: VideoService,
    private readonly evidence: EvidenceService,
  ) {}

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

  /** A JPEG of the camera now (from the running stream, else a short pull); cached video.snapshotCacheMs. Errors as for stream. */
  @Roles(...ALL_ROLES)
  @Get('cameras/:id/snapshot')
  @ApiProduces('image/jpeg')
  @ApiOkResponse({ description: 'image/jpeg' })
  async snapshot(@UuidParam() id: string, @CurrentUser() user: AuthUser, @Res() res: Response): Promise<void> {
    const shot = await this.video.snapshot(user, id);
    res.setHeader('Content-Type', 'image/jpeg');
    res.setHeader('Cache-Control', `private, max-age=${Math.floor(this.video.cfg.snapshotCacheMs / 1000)}`);
    res.setHeader('X-Snapshot-Taken-At', shot.takenAt.toISOString());
    res.end(shot.jpeg);
  }

  /** Keeps a snapshot of the camera as evidence (SHA-256 recorded; retention video.evidenceRetentionDays). */
  @Roles('admin', 'operator', 'supervisor', 'school_security')
  @Post('cameras/:id/evidence')
  capture(@UuidParam() id: string, @Body() body: CaptureEvidenceDto, @CurrentUser() user: AuthUser) {
    return this.evidence.capture(user, id, body.purpose ?? 'manual', body.refId ?? null);
  }

  /** An evidence picture, checked against its recorded SHA-256 (409 when altered, 410 when gone). */
  @Roles(...ALL_ROLES)
  @Get('video/evidence/:id')
  @ApiProduces('image/jpeg')
  async evidencePicture(@UuidParam() id: string, @CurrentUser() user: AuthUser, @Res() res: Response): Promise<void> {
    const { record, jpeg } = await this.evidence.read(user, id);
    res.setHeader('Content-Type', 'image/jpeg');
    res.setHeader('Cache-Control', 'private, max-age=3600, immutable');
    res.setHeader('X-Content-SHA256', record.sha256);
    res.end(jpeg);
  }
}

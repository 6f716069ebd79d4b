import { Inject, Module, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { Gb28181Module } from '../gb28181';
import { AlarmsModule } from '../alarms';
import { PatrolsModule } from '../patrols';
import { RegistryModule } from '../registry';
import { CameraMediaService } from './camera-media.service';
import { CheckinEvidenceService } from './checkin-evidence.service';
import { EVIDENCE_PURGE_SCHEDULER, EvidenceService } from './evidence.service';
import { IncidentEvidenceService } from './incident-evidence.service';
import { IncidentPhotosService } from './incident-photos.service';
import { PhotoUploadsService } from './photo-uploads.service';
import { RectificationPhotosService } from './rectification-photos.service';
import { videoConfig } from './video.config';
import { VideoController } from './video.controller';
import { VideoService } from './video.service';
import { VideoWebSocket } from './video-ws';

/**
 * Live video (issue 15, phase 1): GB/T 28181 live play and RTSP pulls remuxed to fMP4 over a
 * WebSocket, snapshots, and evidence pictures. Streams run in api processes (the one with the
 * SIP server for GB/T 28181 cameras); the evidence purge runs wherever jobs run.
 */
@Module({
  imports: [RegistryModule, Gb28181Module, AlarmsModule, PatrolsModule],
  controllers: [VideoController],
  providers: [
    VideoService,
    CameraMediaService,
    EvidenceService,
    PhotoUploadsService,
    IncidentPhotosService,
    RectificationPhotosService,
    IncidentEvidenceService,
    CheckinEvidenceService,
    VideoWebSocket,
  ],
  exports: [VideoService, EvidenceService],
})
export class VideoModule implements OnModuleInit {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(QueueService) private readonly queue: QueueService,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.queue.upsertScheduler(EVIDENCE_PURGE_SCHEDULER, JobName.VideoEvidencePurge, { pattern: videoConfig(this.config).evidencePurgeCron }, {});
  }
}

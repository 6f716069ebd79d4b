/** The public surface of the video module: other modules and the app import only from here (checked by npm run lint). */
export { VideoModule } from './video.module';
export { VideoService } from './video.service';
export type { PlayTicket } from './video.service';
export { EvidenceService } from './evidence.service';
export type { EvidenceRecord } from './evidence.service';

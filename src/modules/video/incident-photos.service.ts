import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode } from '../../infra/http/error-codes';
import { Errors } from '../../infra/http/errors';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { assertRecordInScope } from '../../infra/access/scope';
import { AuditService } from '../audit-log';
import { IncidentNoticesService, OPEN_STATUSES } from '../alarms';
import { ConsoleEventsService } from '../console-events';
import { ALARM_PHOTO_PURPOSE, type EvidenceRecord } from './evidence.service';
import { PhotoUploadsService } from './photo-uploads.service';
import { videoConfig } from './video.config';

/** What an alarm photo's timeline entry (`photo`) carries. */
export interface AlarmPhotoEntry {
  evidenceId: string;
  sha256: string;
  bytes: number;
  width: number;
  height: number;
  capturedAt: string;
  /** Always 'upload' (a person's photo, not a camera's picture): said as the cameras' `evidence` entries say theirs. */
  source: 'upload';
}

/** A resolved or cancelled incident is part of the record: no photos are added to it. */
function refuseClosed(status: string, incidentId: string): void {
  if (!(OPEN_STATUSES as string[]).includes(status))
    throw Errors.conflict(ErrorCode.EVIDENCE.INCIDENT_CLOSED, '报警已结束，不能再添加照片', { incidentId, status });
}

/**
 * Photos attached to an alarm (the guard's phone: taken with the phone camera, re-encoded to JPEG
 * by the console). Stored like the cameras' evidence pictures (EvidenceStore, SHA-256 recorded,
 * read back through GET /video/evidence/:id) with purpose `alarm.photo` and the incident as ref,
 * so they are kept as long as the incident. Each is a `photo` timeline entry by its sender, an
 * audit entry and an `incident.updated` console event (change `photo`), in one transaction.
 * At most video.photosPerIncident per incident, open incidents only (409 EVIDENCE.INCIDENT_CLOSED).
 * The upload itself — JPEG checks, re-encoding without EXIF/GPS, size caps, Idempotency-Key retries —
 * is PhotoUploadsService's, shared with the rectification tasks' photos.
 */
@Injectable()
export class IncidentPhotosService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly uploads: PhotoUploadsService,
    private readonly notices: IncidentNoticesService,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
  ) {}

  async attach(user: AuthUser, incidentId: string, jpeg: Buffer, clientKey?: string): Promise<{ record: EvidenceRecord; created: boolean }> {
    const cfg = videoConfig(this.config);
    const inc = (await this.notices.summaries([incidentId])).get(incidentId);
    if (!inc) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, incidentId);
    assertRecordInScope(user, inc.schoolId, () => Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, incidentId));
    // An unplaced device alarm (no school) is the district's: nobody on site takes its photos.
    if (!inc.schoolId) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, incidentId);
    refuseClosed(inc.status, incidentId);
    const schoolId = inc.schoolId;
    return this.uploads.store(
      user,
      {
        purpose: ALARM_PHOTO_PURPOSE,
        refId: incidentId,
        schoolId,
        limit: cfg.photosPerIncident,
        limitMessage: `每条报警最多附 ${cfg.photosPerIncident} 张照片`,
        // Closed while the photo was decoded: refused the same way (the row is locked until commit).
        recheck: async (m) => {
          const locked = (await this.notices.summaries([incidentId], m, { lock: true })).get(incidentId);
          refuseClosed(locked?.status ?? inc.status, incidentId);
        },
        recorded: async (m, record, at) => {
          const data: AlarmPhotoEntry = {
            evidenceId: record.id,
            sha256: record.sha256,
            bytes: record.bytes,
            width: record.width,
            height: record.height,
            capturedAt: at.toISOString(),
            source: 'upload',
          };
          await this.notices.appendByUser(m, { id: user.id, name: shownName(user) }, { incidentId, action: 'photo', note: '现场照片', data });
          await this.audit.record(m, { action: 'attach_photo', entity: 'incident', entityId: incidentId, schoolId, after: data });
          const now = (await this.notices.summaries([incidentId], m, { lock: true })).get(incidentId) ?? inc;
          await this.events.append(m, { type: 'incident.updated', schoolId: now.schoolId, payload: { ...now, change: 'photo' } });
        },
      },
      jpeg,
      clientKey,
    );
  }
}

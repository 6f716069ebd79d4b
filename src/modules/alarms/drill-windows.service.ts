import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AuthUser } from '../../infra/access/roles';
import { assertSchoolScope, effectiveSchoolFilter } from '../../infra/access/scope';
import { Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { RegistryService } from '../registry';
import { assertRole, RAISE_ROLES, READ_ROLES } from './alarms.access';

/** Drill windows (演练): alarms raised at the school inside one are marked as drills at intake. */
@Injectable()
export class DrillWindowsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
  ) {}

  async createDrillWindow(user: AuthUser, dto: { schoolId: string; startsAt: string; endsAt: string; note?: string }) {
    assertRole(user, RAISE_ROLES);
    assertSchoolScope(user, dto.schoolId);
    if (new Date(dto.endsAt) <= new Date(dto.startsAt)) throw Errors.validation([{ field: 'endsAt', reason: 'must be after startsAt' }]);
    await this.registry.school(dto.schoolId);
    return this.db.transaction(async (m) => {
      const [row] = await m.query(
        `INSERT INTO drill_windows (school_id, starts_at, ends_at, note, created_by_name) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, school_id AS "schoolId", starts_at AS "startsAt", ends_at AS "endsAt", note, created_by_name AS "createdBy"`,
        [dto.schoolId, dto.startsAt, dto.endsAt, dto.note ?? '', user.username],
      );
      await this.audit.record(m, { action: 'create', entity: 'drill_window', entityId: row.id, schoolId: dto.schoolId, after: row });
      return row;
    });
  }

  async listDrillWindows(user: AuthUser, q: { schoolId?: string }) {
    assertRole(user, READ_ROLES);
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    return this.db.query(
      `SELECT id, school_id AS "schoolId", starts_at AS "startsAt", ends_at AS "endsAt", note, created_by_name AS "createdBy"
       FROM drill_windows WHERE ($1::uuid IS NULL OR school_id = $1) ORDER BY starts_at DESC LIMIT 500`,
      [schoolId ?? null],
    );
  }
}

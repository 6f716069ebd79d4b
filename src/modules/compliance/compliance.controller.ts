import { Body, Controller, Get, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Inject } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser, UserRole } from '../../infra/access/roles';
import { effectiveSchoolFilter } from '../../infra/access/scope';
import { HeavyReads } from '../../infra/http/heavy-reads';
import { ParsePool } from '../../infra/tabular/tabular';
import { addDays, shanghaiDate } from '../school-day';
import { ComplianceService, exportRows } from './compliance.service';
import { ComplianceDayQuery, ComplianceExportQuery, ComplianceRangeQuery, SnapshotDto } from './dto';

const READ: UserRole[] = ['admin', 'supervisor', 'operator', 'auditor'];
/** GET /compliance/schools: also school security staff, for their own school only (the guard phone shows why it fails a target). */
const SCHOOL_READ: UserRole[] = [...READ, 'school_security'];
const MANAGE: UserRole[] = ['admin', 'supervisor'];

@ApiTags('compliance')
@ApiBearerAuth()
@Controller('compliance')
export class ComplianceController {
  constructor(
    private readonly compliance: ComplianceService,
    private readonly tabular: ParsePool,
    private readonly heavy: HeavyReads,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private page(q: { limit?: number; offset?: number }): [number, number] {
    return [Math.min(q.limit ?? this.config.registry.defaultPageSize, this.config.registry.maxPageSize), q.offset ?? 0];
  }

  private range(q: ComplianceRangeQuery): [string, string] {
    const to = q.to ?? shanghaiDate(new Date());
    return [q.from ?? addDays(to, -29), to];
  }

  /**
   * Per school for one day, with reasons (worst first): `{ items: SchoolCompliance[], total, limit, offset }`.
   * School security staff get their own school only (zone/group filters ignored; another school's id: 403 AUTH.OUT_OF_SCOPE).
   * Compliance reads are heavy reads (infra/http/heavy-reads.ts): 429 HEAVY_READ.TOO_MANY / 503 HEAVY_READ.BUSY past their limits.
   */
  @Roles(...SCHOOL_READ)
  @Get('schools')
  async schools(@CurrentUser() user: AuthUser, @Query() q: ComplianceDayQuery) {
    const date = q.date ?? shanghaiDate(new Date());
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    const filter = user.role === 'school_security' ? { schoolId } : { ...q, schoolId };
    const r = await this.heavy.run(user.id, () => this.compliance.district(date, filter, ...this.page(q)));
    return r.worst;
  }

  /**
   * One day of the district (or a zone, group or school): the share of schools meeting each target, the same per zone, and the
   * schools worst first with their reasons (paged). A heavy read.
   */
  @Roles(...READ)
  @Get('district')
  district(@CurrentUser() user: AuthUser, @Query() q: ComplianceDayQuery) {
    return this.heavy.run(user.id, () => this.compliance.district(q.date ?? shanghaiDate(new Date()), q, ...this.page(q)));
  }

  /** The four targets' trend: share of schools meeting each target per day over a range (default the last 30 days), for the district or a zone or group. */
  @Roles(...READ)
  @Get('trend')
  trend(@CurrentUser() user: AuthUser, @Query() q: ComplianceRangeQuery) {
    return this.heavy.run(user.id, () => this.compliance.trend(...this.range(q), q));
  }

  /** CSV (UTF-8 with BOM) or XLSX, one line per school and day, filtered by zone, group and dates. */
  @Roles(...READ)
  @Get('export')
  async export(@CurrentUser() user: AuthUser, @Query() q: ComplianceExportQuery, @Res({ passthrough: true }) res: Response) {
    const [from, to] = this.range(q);
    const format = q.format ?? 'xlsx';
    // Bounded per process and per user (ParsePool.exclusive) and built in a worker thread: never on the loop that takes presses.
    const body = await this.tabular.exclusive(user.id, 'export', async () => {
      const rows = (await this.compliance.range(from, to, q)).sort((a, b) => a.date.localeCompare(b.date) || a.schoolCode.localeCompare(b.schoolCode));
      const table = exportRows(rows);
      return this.tabular.write(format, '四个100%', table.header, table.rows);
    });
    const filename = `四个100%达标_${from}_${to}.${format}`;
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    res.setHeader('Content-Disposition', `attachment; filename="compliance_${from}_${to}.${format}"; filename*=UTF-8''${encodeURIComponent(filename)}`);
    return new StreamableFile(body);
  }

  /** Takes (or retakes) a day's snapshot now; the daily job does the same. */
  @Roles(...MANAGE)
  @Post('snapshots')
  snapshot(@Body() dto: SnapshotDto) {
    return this.compliance.snapshot(dto.date ?? shanghaiDate(new Date()));
  }
}

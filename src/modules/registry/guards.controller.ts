import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { UuidParam } from '../../infra/http/params';
import { pick } from '../../infra/http/views';
import { AuditService } from '../audit-log';
import { RegistryService } from './registry.service';
import { BUREAU_WRITE } from './resource';
import { GUARDS } from './resources';

/** The bureau's verification of the guards schools declare (attack F8e; resources.ts stampGuardVerification). */
@ApiTags('guards')
@ApiBearerAuth()
@Controller('guards')
export class GuardVerificationController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
  ) {}

  /**
   * Verifies a declared guard: they count for the full-time-guards target from now on (200 with
   * the guard's view; already verified: unchanged). Bureau roles only (school staff: 403 — they
   * cannot vouch for their own declaration); 404 GUARD.NOT_FOUND.
   */
  @Roles(...BUREAU_WRITE)
  @Post(':id/verify')
  @HttpCode(200)
  async verify(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    const after = await this.db.transaction(async (m) => {
      const r = await this.registry.verifyGuard(m, id, shownName(user));
      if (!r) throw Errors.notFound(ErrorCode.GUARD.NOT_FOUND, id);
      if (r.after !== r.before)
        await this.audit.record(m, { action: 'verify', entity: 'guard', entityId: id, schoolId: r.after.schoolId, before: r.before, after: r.after });
      return r.after;
    });
    return pick(after, GUARDS.view);
  }
}

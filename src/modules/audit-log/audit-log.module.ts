import { Controller, Get, Global, Inject, Module, Optional, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { Roles } from '../../infra/access/decorators';
import { ACTOR_NAMES, type ActorNames } from './actor-names';
import { AuditEntry } from './audit-entry.entity';
import { AuditService } from './audit.service';
import { viewOf } from '../../infra/http/views';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class AuditQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() entity?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() entityId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() actorId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ description: 'keyset pagination: entries with a smaller id' }) @IsOptional() @Matches(/^\d{1,18}$/) beforeId?: string;
  @ApiPropertyOptional() @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(1000) limit?: number;
}

/** What an audit reader sees of an entry (an allow-list: a column added later stays out until listed). before/after are scrubbed when written. */
const auditEntryView = viewOf<AuditEntry>()([
  'id',
  'at',
  'actorType',
  'actorId',
  'actorName',
  'ip',
  'requestId',
  'action',
  'entity',
  'entityId',
  'schoolId',
  'before',
  'after',
]);

@ApiTags('audit-log')
@ApiBearerAuth()
@Controller('audit-log')
class AuditLogController {
  constructor(
    private readonly audit: AuditService,
    // Provided by the auth module (global); absent only where no auth module is loaded: usernames alone then.
    @Optional() @Inject(ACTOR_NAMES) private readonly actorNames?: ActorNames,
  ) {}

  /**
   * The audit log, newest first (keyset: `beforeId`), filtered by entity, record, actor and school: `{ items, nextBeforeId }`.
   * `actorName` is what was recorded (a user's username, a device's key id); `actorDisplayName` is the user's display
   * name now (null: not a user, or none set), which the console shows first. `entityName` is the display name now of
   * the record acted on where one is read cheaply (entity `user`; null otherwise: the console shows the id).
   */
  @Roles('admin', 'auditor', 'supervisor')
  @Get()
  async list(@Query() q: AuditQuery) {
    const rows = await this.audit.list({ ...q, limit: q.limit ?? 100 });
    // One read names the actors and the users acted on (entity 'user'): the console shows names, not ids.
    const userIds = [
      ...new Set([
        ...rows.filter((r) => r.actorType === 'user' && r.actorId).map((r) => r.actorId!),
        ...rows.filter((r) => r.entity === 'user' && r.entityId && UUID.test(r.entityId)).map((r) => r.entityId!),
      ]),
    ];
    const names = userIds.length && this.actorNames ? await this.actorNames.displayNames(userIds) : new Map<string, string>();
    const items = rows.map((r) => ({
      ...auditEntryView(r),
      actorDisplayName: (r.actorType === 'user' && r.actorId ? names.get(r.actorId) : undefined) ?? null,
      entityName: (r.entity === 'user' && r.entityId ? names.get(r.entityId) : undefined) ?? null,
    }));
    return { items, nextBeforeId: items.length ? items[items.length - 1].id : null };
  }
}

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEntry])],
  controllers: [AuditLogController],
  providers: [AuditService],
  exports: [AuditService],
})
export class AuditLogModule {}

import { Controller, Get, Global, Module, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { Roles } from '../../infra/access/decorators';
import { AuditEntry } from './audit-entry.entity';
import { AuditService } from './audit.service';
import { viewOf } from '../../infra/http/views';

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
  constructor(private readonly audit: AuditService) {}

  /** The audit log, newest first (keyset: `beforeId`), filtered by entity, record, actor and school: `{ items, nextBeforeId }`. */
  @Roles('admin', 'auditor', 'supervisor')
  @Get()
  async list(@Query() q: AuditQuery) {
    const items = (await this.audit.list({ ...q, limit: q.limit ?? 100 })).map(auditEntryView);
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

import { Controller, Get, Global, Module, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { Roles } from '../../infra/access/decorators';
import { AuditEntry } from './audit-entry.entity';
import { AuditService } from './audit.service';

class AuditQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() entity?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() entityId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() actorId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ description: 'keyset pagination: entries with a smaller id' }) @IsOptional() @Matches(/^\d{1,18}$/) beforeId?: string;
  @ApiPropertyOptional() @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(1000) limit?: number;
}

@ApiTags('audit-log')
@ApiBearerAuth()
@Controller('audit-log')
class AuditLogController {
  constructor(private readonly audit: AuditService) {}

  @Roles('admin', 'auditor', 'supervisor')
  @Get()
  async list(@Query() q: AuditQuery) {
    const items = await this.audit.list({ ...q, limit: q.limit ?? 100 });
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

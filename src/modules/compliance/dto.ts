import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { IsStrictDate, IsNotBefore } from '../../infra/http/dates';
import { PageQuery } from '../../infra/http/pagination';

export class ComplianceFilterQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() groupId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

export class ComplianceDayQuery extends ComplianceFilterQuery {
  @ApiPropertyOptional({ description: 'YYYY-MM-DD (Asia/Shanghai); default today' }) @IsOptional() @IsStrictDate() date?: string;
}

export class ComplianceRangeQuery extends ComplianceFilterQuery {
  @ApiPropertyOptional({ description: 'YYYY-MM-DD; default 29 days before `to`' }) @IsOptional() @IsStrictDate() from?: string;
  @ApiPropertyOptional({ description: 'YYYY-MM-DD; default today' }) @IsOptional() @IsStrictDate() @IsNotBefore('from') to?: string;
}

export class ComplianceExportQuery extends ComplianceRangeQuery {
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'] }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

export class SnapshotDto {
  @ApiPropertyOptional({ description: 'YYYY-MM-DD; default today' }) @IsOptional() @IsStrictDate() date?: string;
}

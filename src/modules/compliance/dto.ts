import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID, Matches } from 'class-validator';
import { PageQuery } from '../../infra/http/pagination';
import { DATE_PATTERN } from '../registry';

const DATE = { message: 'must be a date YYYY-MM-DD' };

export class ComplianceFilterQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() groupId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

export class ComplianceDayQuery extends ComplianceFilterQuery {
  @ApiPropertyOptional({ description: 'YYYY-MM-DD (Asia/Shanghai); default today' }) @IsOptional() @Matches(DATE_PATTERN, DATE) date?: string;
}

export class ComplianceRangeQuery extends ComplianceFilterQuery {
  @ApiPropertyOptional({ description: 'YYYY-MM-DD; default 29 days before `to`' }) @IsOptional() @Matches(DATE_PATTERN, DATE) from?: string;
  @ApiPropertyOptional({ description: 'YYYY-MM-DD; default today' }) @IsOptional() @Matches(DATE_PATTERN, DATE) to?: string;
}

export class ComplianceExportQuery extends ComplianceRangeQuery {
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'] }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

export class SnapshotDto {
  @ApiPropertyOptional({ description: 'YYYY-MM-DD; default today' }) @IsOptional() @Matches(DATE_PATTERN, DATE) date?: string;
}

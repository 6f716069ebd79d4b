import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

/** `?limit=&offset=&sort=name,-createdAt`; limits are capped by registry.maxPageSize. */
export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 10000 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(10000) limit?: number;
  @ApiPropertyOptional({ minimum: 0 }) @IsOptional() @Type(() => Number) @IsInt() @Min(0) @Max(10_000_000) offset?: number;
  @ApiPropertyOptional({ description: 'comma-separated fields, "-" for descending', example: '-createdAt,name' })
  @IsOptional()
  @IsString()
  @Matches(/^-?[A-Za-z]+(,-?[A-Za-z]+)*$/, { message: 'sort: comma-separated field names, each optionally prefixed with -' })
  sort?: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

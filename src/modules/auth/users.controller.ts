import { Body, Controller, Get, Inject, Patch, Post, Query } from '@nestjs/common';
import { UuidParam } from '../../infra/http/params';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { PageQuery } from '../../infra/http/pagination';
import { Roles } from '../../infra/access/decorators';
import { CreateUserDto, UpdateUserDto } from './dto';
import { ROLE_NAMES } from '../../infra/access/roles';
import { UsersService } from './users.service';

class UserQuery extends PageQuery {
  @ApiPropertyOptional({ enum: ROLE_NAMES }) @IsOptional() @IsIn(ROLE_NAMES) role?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class UsersController {
  constructor(
    private readonly users: UsersService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Roles('admin')
  @Get()
  async list(@Query() q: UserQuery) {
    const limit = Math.min(q.limit ?? this.config.registry.defaultPageSize, this.config.registry.maxPageSize);
    const offset = q.offset ?? 0;
    const page = await this.users.list({ role: q.role, schoolId: q.schoolId, limit, offset });
    return { ...page, limit, offset };
  }

  @Roles('admin')
  @Get(':id')
  get(@UuidParam() id: string) {
    return this.users.get(id);
  }

  @Roles('admin')
  @Post()
  create(@Body() dto: CreateUserDto) {
    return this.users.create(dto);
  }

  @Roles('admin')
  @Patch(':id')
  update(@UuidParam() id: string, @Body() dto: UpdateUserDto) {
    return this.users.update(id, dto);
  }
}

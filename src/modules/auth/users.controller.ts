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
import type { User } from './entities/user.entity';
import { viewOf } from '../../infra/http/views';

/** What a user record shows (never its password hash): the response allow-list of /users. */
const userView = viewOf<User>()(['id', 'username', 'displayName', 'role', 'schoolId', 'phone', 'disabled', 'lastLoginAt', 'createdAt', 'updatedAt']);

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

  /** Lists users (filter by role and school), paged: `{ items, total, limit, offset }`; never a password hash. */
  @Roles('admin')
  @Get()
  async list(@Query() q: UserQuery) {
    const limit = Math.min(q.limit ?? this.config.registry.defaultPageSize, this.config.registry.maxPageSize);
    const offset = q.offset ?? 0;
    const page = await this.users.list({ role: q.role, schoolId: q.schoolId, limit, offset });
    return { items: page.items.map(userView), total: page.total, limit, offset };
  }

  /** One user by id. */
  @Roles('admin')
  @Get(':id')
  async get(@UuidParam() id: string) {
    return userView(await this.users.get(id));
  }

  /** Creates a user (admin): role, display name, school for school staff; the password is checked against auth.minPasswordLength. Audited. */
  @Roles('admin')
  @Post()
  async create(@Body() dto: CreateUserDto) {
    return userView(await this.users.create(dto));
  }

  /** Changes a user (admin): display name, role, school, phone, password, disabled; a password, role or disabled change revokes their sessions. Audited. */
  @Roles('admin')
  @Patch(':id')
  async update(@UuidParam() id: string, @Body() dto: UpdateUserDto) {
    return userView(await this.users.update(id, dto));
  }
}

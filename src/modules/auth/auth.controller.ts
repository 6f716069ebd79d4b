import { Body, Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ALL_ROLES, AuthUser } from '../../infra/access/roles';
import { AuthService } from './auth.service';
import { CurrentUser, Public, Roles } from '../../infra/access/decorators';
import { ChangePasswordDto, LoginDto, LogoutDto, RefreshDto } from './dto';
import { UsersService } from './users.service';
import { visibleName } from '../../infra/text/person-name';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UsersService,
  ) {}

  /** Logs in with username and password: an access token and a refresh token. Attempts are limited per account and address (auth.login*): 429 with Retry-After past them. */
  @Public()
  @Post('login')
  @HttpCode(200)
  login(@Body() dto: LoginDto, @Req() req: Request) {
    return this.auth.login(dto.username, dto.password, req.ip ?? null);
  }

  /** Exchanges a refresh token for a new pair (the old refresh token is spent; a reused one revokes the family). */
  @Public()
  @Post('refresh')
  @HttpCode(200)
  refresh(@Body() dto: RefreshDto, @Req() req: Request) {
    return this.auth.refresh(dto.refreshToken, req.ip ?? null);
  }

  /**
   * Logs out: the session of the access token ends at once — its access and refresh tokens, its console sockets,
   * its queue dashboard cookie — with or without `refreshToken` in the body (never a 400 for the body).
   */
  @ApiBearerAuth()
  @Roles(...ALL_ROLES)
  @Post('logout')
  @HttpCode(204)
  @ApiBody({ type: LogoutDto, required: false })
  async logout(@CurrentUser() user: AuthUser & { exp: number }, @Body() body: unknown): Promise<void> {
    // Read by hand, not validated: no field of the body may keep the session alive (LogoutDto).
    const rt = body && typeof body === 'object' ? (body as LogoutDto).refreshToken : undefined;
    await this.auth.logout(user, typeof rt === 'string' && rt.length <= 256 ? rt : undefined);
  }

  /** The logged-in user: id, username, display name, role and school. */
  @ApiBearerAuth()
  @Roles(...ALL_ROLES)
  @Get('me')
  async me(@CurrentUser() user: AuthUser) {
    const u = await this.users.get(user.id);
    return { id: u.id, username: u.username, displayName: visibleName(u.displayName), role: u.role, schoolId: u.schoolId };
  }

  /** Changes one's own password (the current one is required). */
  @ApiBearerAuth()
  @Roles(...ALL_ROLES)
  @Post('password')
  @HttpCode(204)
  async changePassword(@CurrentUser() user: AuthUser, @Body() dto: ChangePasswordDto): Promise<void> {
    await this.users.changeOwnPassword(user.id, dto.currentPassword, dto.newPassword);
  }
}

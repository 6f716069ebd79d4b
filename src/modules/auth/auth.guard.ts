import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { currentContext } from '../../infra/http/request-context';
import { Access, ACCESS_KEY } from '../../infra/access/decorators';
import { DeviceCredentialsService } from './device-credentials.service';
import { TokenService } from './token.service';

/**
 * The global guard. A route without an access declaration is refused (403) — secure by default;
 * test/e2e/api-surface.e2e.spec.ts (route access) lists every route to make sure none is left undeclared.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenService,
    private readonly devices: DeviceCredentialsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true; // the socket gateway authenticates its own handshake
    const access = this.reflector.getAllAndOverride<Access | undefined>(ACCESS_KEY, [context.getHandler(), context.getClass()]);
    const req = context.switchToHttp().getRequest<Request & { user?: unknown; device?: unknown }>();
    if (!access) throw Errors.forbidden(ErrorCode.AUTH.ROUTE_UNDECLARED, 'Route declares no access rule');
    if (access.kind === 'public') return true;
    const header = req.headers.authorization;
    if (access.kind === 'device') {
      const device = await this.devices.verify(header);
      if (!access.kinds.includes(device.kind)) throw Errors.forbidden(ErrorCode.AUTH.WRONG_DEVICE_KIND, `This route is for ${access.kinds.join('/')} devices`);
      req.device = device;
      const ctx = currentContext();
      if (ctx) ctx.actor = { type: 'device', id: device.subjectId, name: device.keyId };
      return true;
    }
    const bearer = header && /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (!bearer) throw Errors.unauthorized(ErrorCode.AUTH.UNAUTHENTICATED, 'Bearer access token required');
    const user = await this.tokens.verifyAccess(bearer);
    // As at the console's handshake: school staff act only within a school (issue 12 §8).
    if (user.role === 'school_security' && !user.schoolId) throw Errors.forbidden(ErrorCode.AUTH.FORBIDDEN, 'school staff without a school');
    req.user = user;
    const ctx = currentContext();
    if (ctx) ctx.actor = { type: 'user', id: user.id, name: user.username };
    if (!access.roles.includes(user.role)) throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, `Role ${user.role} may not do this`);
    return true;
  }
}

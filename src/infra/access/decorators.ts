import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { AuthDevice, AuthUser, DeviceKind, UserRole } from './roles';

export const ACCESS_KEY = 'shouhu:access';

/**
 * Every route declares who may call it, exactly once: `@Public()`, `@Roles(...)` or
 * `@DeviceRoute(...)`. A route with none is refused (and a test lists every route to check).
 * This is the access contract only (metadata and types, importable from every layer); the
 * global guard that enforces it is AuthGuard, in the auth module.
 */
export type Access = { kind: 'public' } | { kind: 'roles'; roles: UserRole[] } | { kind: 'device'; kinds: DeviceKind[] };

export const Public = () => SetMetadata(ACCESS_KEY, { kind: 'public' } satisfies Access);
export const Roles = (...roles: UserRole[]) => SetMetadata(ACCESS_KEY, { kind: 'roles', roles } satisfies Access);
export const DeviceRoute = (...kinds: DeviceKind[]) => SetMetadata(ACCESS_KEY, { kind: 'device', kinds } satisfies Access);

export const CurrentUser = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthUser => ctx.switchToHttp().getRequest().user);
export const CurrentDevice = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthDevice => ctx.switchToHttp().getRequest().device);

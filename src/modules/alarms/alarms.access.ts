import { type AuthUser, type UserRole, shownName } from '../../infra/access/roles';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Actor } from '../../infra/http/request-context';

/** Roles that act on incidents at the control center. */
export const ACT_ROLES: UserRole[] = ['operator', 'supervisor', 'admin'];
export const RAISE_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security'];
export const CANCEL_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security'];
export const READ_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security', 'auditor'];

/** The acting user as recorded on timelines and audit entries. */
export const userActor = (u: AuthUser): Actor => ({ type: 'user', id: u.id, name: shownName(u) });

/**
 * The services check roles themselves (as well as the routes' @Roles), so the console socket
 * gateway gets the same answers as REST.
 */
export function assertRole(user: AuthUser, roles: UserRole[]): void {
  if (!roles.includes(user.role)) throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, `Role ${user.role} may not do this`);
}

import { type AuthUser, type UserRole, shownName } from '../../infra/access/roles';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Actor } from '../../infra/http/request-context';

/** Roles that act on incidents at the control center. */
export const ACT_ROLES: UserRole[] = ['operator', 'supervisor', 'admin'];
export const RAISE_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security'];
export const CANCEL_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security'];
/**
 * Roles that may cancel only what they raised themselves: a guard withdraws their own mis-press
 * from the phone, but an alarm from a button, a camera or the control center latches until duty
 * staff release it (GB 50394-2007 §5.2: an emergency alarm is latched and released only by
 * authorised staff). Otherwise cancelling stops the escalation of someone else's alarm.
 */
export const CANCEL_OWN_ONLY_ROLES: UserRole[] = ['school_security'];
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

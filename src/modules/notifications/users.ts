import type { UsersService } from '../auth';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { UserRole } from '../../infra/access/roles';

/** A user as the notifications need them (read through the auth module's service, never its table). */
export interface Person {
  id: string;
  name: string;
  role: UserRole;
  phone: string;
  disabled: boolean;
}

/** Users by id (missing ids are absent). Few distinct people per call: one read each, in parallel. */
export async function people(users: UsersService, ids: string[]): Promise<Map<string, Person>> {
  const out = new Map<string, Person>();
  await Promise.all(
    [...new Set(ids)].map(async (id) => {
      try {
        const u = await users.get(id);
        out.set(id, { id, name: u.displayName || u.username, role: u.role, phone: u.phone, disabled: u.disabled });
      } catch (e) {
        if ((e as { code?: string }).code !== ErrorCode.USER.NOT_FOUND) throw e;
      }
    }),
  );
  return out;
}

/** Roles that may hold a duty or be named in a policy: the control center's, never school staff. */
export const DUTY_USER_ROLES: UserRole[] = ['operator', 'supervisor', 'admin'];

export async function assertDutyPerson(users: UsersService, id: string, field: string): Promise<Person> {
  const p = (await people(users, [id])).get(id);
  if (!p) throw Errors.validation([{ field, reason: 'no such user' }]);
  if (p.disabled) throw Errors.validation([{ field, reason: 'the user is disabled' }]);
  if (!DUTY_USER_ROLES.includes(p.role)) throw Errors.validation([{ field, reason: `must be a control-center user (${DUTY_USER_ROLES.join(', ')})` }]);
  return p;
}

/** '138****5678': enough to recognise a number on screen, not to harvest it. */
export function maskPhone(phone: string | null): string | null {
  if (!phone) return null;
  return phone.length >= 7 ? `${phone.slice(0, 3)}****${phone.slice(-4)}` : '****';
}

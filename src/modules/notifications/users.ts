import type { UsersService } from '../auth';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { UserRole } from '../../infra/access/roles';
import { visibleName } from '../../infra/text/person-name';

/** A user as the notifications need them (read through the auth module's service, never its table). */
export interface Person {
  id: string;
  name: string;
  role: UserRole;
  phone: string;
  disabled: boolean;
}

/** How the roster names a person: the display name (invisible characters dropped), else the username. */
export function personName(u: { displayName: string; username: string }): string {
  return visibleName(u.displayName) || u.username;
}

/** Users by id (missing ids are absent). Few distinct people per call: one read each, in parallel. */
export async function people(users: UsersService, ids: string[]): Promise<Map<string, Person>> {
  const out = new Map<string, Person>();
  await Promise.all(
    [...new Set(ids)].map(async (id) => {
      try {
        const u = await users.get(id);
        out.set(id, { id, name: personName(u), role: u.role, phone: u.phone, disabled: u.disabled });
      } catch (e) {
        if ((e as { code?: string }).code !== ErrorCode.USER.NOT_FOUND) throw e;
      }
    }),
  );
  return out;
}

/** Roles that may hold a duty or be named in a policy: the control center's, never school staff. */
export const DUTY_USER_ROLES: UserRole[] = ['operator', 'supervisor', 'admin'];

/** Why a person may not hold a duty: deleted, disabled, or no longer (or never) in a control-center role. */
export const DUTY_REFUSALS = ['user_deleted', 'user_disabled', 'user_role'] as const;
export type DutyRefusal = (typeof DUTY_REFUSALS)[number];

const REFUSAL_REASON: Record<DutyRefusal, string> = {
  user_deleted: 'no such user',
  user_disabled: 'the user is disabled',
  user_role: `must be a control-center user (${DUTY_USER_ROLES.join(', ')})`,
};

/**
 * The one rule of who may hold a duty, null when this person may. It decides who can be put on a shift
 * (assertDutyPerson), whom the roster's pickers offer, and whether a shift counts as cover at all: a
 * shift whose person was disabled or demoted after it was planned covers nothing — not on duty now, a
 * gap, no escalation recipient (attack finding F4: a disabled or demoted user stayed on duty).
 */
export function dutyRefusal(p: Pick<Person, 'role' | 'disabled'> | undefined): DutyRefusal | null {
  if (!p) return 'user_deleted';
  if (p.disabled) return 'user_disabled';
  if (!DUTY_USER_ROLES.includes(p.role)) return 'user_role';
  return null;
}

export async function assertDutyPerson(users: UsersService, id: string, field: string): Promise<Person> {
  const p = (await people(users, [id])).get(id);
  const why = dutyRefusal(p);
  if (why || !p) throw Errors.validation([{ field, reason: REFUSAL_REASON[why ?? 'user_deleted'] }]);
  return p;
}

/** '138****5678': enough to recognise a number on screen, not to harvest it. */
export function maskPhone(phone: string | null): string | null {
  if (!phone) return null;
  return phone.length >= 7 ? `${phone.slice(0, 3)}****${phone.slice(-4)}` : '****';
}

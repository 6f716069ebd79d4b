import { Errors } from '../http/errors';
import type { AuthUser } from './roles';

/** The school a user is confined to, or null for district-wide roles. */
export function scopedSchoolId(user: AuthUser): string | null {
  return user.role === 'school_security' ? user.schoolId : null;
}

/** Throws 403 unless the user may act on `schoolId`. */
export function assertSchoolScope(user: AuthUser, schoolId: string | null | undefined): void {
  const own = scopedSchoolId(user);
  if (own !== null && own !== schoolId) throw Errors.outOfScope();
}

/**
 * For list queries: the school filter to apply. A scoped user gets their school; asking for
 * another school is a 403, not an empty page.
 */
export function effectiveSchoolFilter(user: AuthUser, requested?: string): string | undefined {
  const own = scopedSchoolId(user);
  if (own === null) return requested;
  if (requested !== undefined && requested !== own) throw Errors.outOfScope();
  return own;
}

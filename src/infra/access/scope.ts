import { DomainError, Errors } from '../http/errors';
import type { AuthUser } from './roles';

/** The school a user is confined to, or null for district-wide roles. */
export function scopedSchoolId(user: AuthUser): string | null {
  return user.role === 'school_security' ? user.schoolId : null;
}

/**
 * For a record fetched by its id: one of another school answers exactly like a missing one
 * (`notFound`, the record's 404), so a school's staff cannot tell which ids exist elsewhere.
 * Use this wherever a route reads or changes a record by id; assertSchoolScope is for a school
 * the caller names (a filter, or the school of a record they create).
 */
export function assertRecordInScope(user: AuthUser, schoolId: string | null | undefined, notFound: () => DomainError): void {
  const own = scopedSchoolId(user);
  if (own !== null && own !== schoolId) throw notFound();
}

/** Throws 403 unless the user may act on `schoolId` (a school they name, not a record they fetched by id). */
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

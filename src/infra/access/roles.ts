/** Stored in users.role: never rename one without a migration. */
export const ROLE_NAMES = ['admin', 'operator', 'supervisor', 'school_security', 'auditor'] as const;
export type UserRole = (typeof ROLE_NAMES)[number];

/** Roles that work district-wide at the control center. */
export const CENTER_ROLES: UserRole[] = ['admin', 'operator', 'supervisor', 'auditor'];
export const ALL_ROLES: UserRole[] = [...ROLE_NAMES];

/** The caller of a user route, as carried by the access token. */
export interface AuthUser {
  id: string;
  username: string;
  role: UserRole;
  /** Set for school_security: the one school they may see and change. */
  schoolId: string | null;
  jti: string;
  /**
   * The login session the access token belongs to: its refresh-token family id. A logout ends the
   * session — every access token and refresh token of it — whether or not the client sends its refresh
   * token (attack pass 7: a logout with only the Bearer left the console's silent refresh alive).
   * Absent on tokens issued before it was carried.
   */
  session?: string;
  /** The name people know them by (users.display_name); empty or absent: shown by username. */
  displayName?: string;
}

/** The name shown for a user in records others read (timelines, resolved-by, drill windows): display name, else username. */
export const shownName = (u: Pick<AuthUser, 'username' | 'displayName'>): string => u.displayName?.trim() || u.username;

export const DEVICE_KINDS = ['camera', 'alarm_device', 'gateway'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/** The caller of a device route, as established by its device credential. */
export interface AuthDevice {
  credentialId: string;
  keyId: string;
  kind: DeviceKind;
  /** The camera / alarm device id; null for a gateway (it reports for many devices). */
  subjectId: string | null;
  /** A gateway bound to one school may report only for that school's devices. */
  schoolId: string | null;
}

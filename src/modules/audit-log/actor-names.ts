/**
 * Who the users named in the audit log are now: their display names. Audit rows record the actor's
 * username as it was (`actor_name`, the stable login name); people reading the log know colleagues by
 * their display names. The users live in the auth module, a layer above this one: it provides this
 * token (AuthModule, global), so the audit log reads users through auth's service, never its table.
 */
export const ACTOR_NAMES = Symbol('ACTOR_NAMES');

export interface ActorNames {
  /** The display name of each of these users that has one (missing: no such user, or no display name). */
  displayNames(userIds: readonly string[]): Promise<Map<string, string>>;
}

import type { EntityManager } from 'typeorm';
import type { Actor } from '../../infra/http/request-context';

/** A timeline entry as GET /incidents/{id} answers it. */
export interface TimelineEntryView {
  at: Date;
  actorType: Actor['type'];
  actorId: string | null;
  /** The actor's display name when recorded. */
  actorName: string;
  action: string;
  note: string;
  data: Record<string, unknown> | null;
}

/** One entry on an incident's timeline (who did what, with a note and data), in the caller's transaction. */
export async function appendTimeline(
  m: EntityManager,
  incidentId: string,
  actor: Actor,
  action: string,
  note: string,
  data: object | null = null,
): Promise<void> {
  await m.query(`INSERT INTO incident_timeline (incident_id, actor_type, actor_id, actor_name, action, note, data) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    incidentId,
    actor.type,
    actor.type === 'system' ? null : actor.id,
    actor.name,
    action,
    note,
    data ? JSON.stringify(data) : null,
  ]);
}

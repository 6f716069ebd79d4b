import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Idempotent staff and operator alarms (issue 11 §4): the client event id a person's app sends
 * with `POST /incidents` (body `clientEventId` or header `Idempotency-Key`), unique per user. A
 * retry finds its row and gets the same incident; the request hash tells a retry from a
 * different alarm sent under a reused id (409). Rows live as long as their incident.
 */
export class IncidentClientEvents1764311400000 implements MigrationInterface {
  name = 'IncidentClientEvents1764311400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE incident_client_events (
        user_id uuid NOT NULL,
        client_event_id text NOT NULL,
        incident_id uuid NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        request_hash char(64) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT incident_client_events_uq PRIMARY KEY (user_id, client_event_id)
      )`);
    await q.query(`CREATE INDEX incident_client_events_incident_idx ON incident_client_events (incident_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE incident_client_events`);
  }
}

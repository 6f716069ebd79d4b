import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cascade to higher-level platforms (issue 16 §7). `gb_cascade_nodes`: the stable serial of each
 * organisation node we report upward (a zone or a school becomes a GB/T 28181 virtual organisation,
 * type 216, whose 20-digit id ends in this serial), given once and never reused, so the superior's
 * tree keeps its ids when schools are added. `gb_cascade_alarms`: one row per incident and superior
 * forwarded as Alarm Notify (§9.4) — the key makes forwarding idempotent; attempts and state bound
 * the retries.
 */
export class GbCascade1764322000000 implements MigrationInterface {
  name = 'GbCascade1764322000000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gb_cascade_nodes (
        ref_id uuid PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('zone','school')),
        serial integer GENERATED ALWAYS AS IDENTITY (MAXVALUE 999999) UNIQUE
      )`);
    await q.query(`
      CREATE TABLE gb_cascade_alarms (
        incident_id uuid NOT NULL,
        superior_id char(20) NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','sent','acknowledged','failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_at timestamptz NOT NULL DEFAULT now(),
        last_status integer,
        sn integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        acknowledged_at timestamptz,
        PRIMARY KEY (incident_id, superior_id)
      )`);
    await q.query(`CREATE INDEX gb_cascade_alarms_pending_idx ON gb_cascade_alarms (next_at) WHERE state = 'pending'`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE gb_cascade_alarms`);
    await q.query(`DROP TABLE gb_cascade_nodes`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Compliance (issue 6): the four "100%" targets per school per day, as snapshotted by the daily
 * job (one row per date and school; a re-run replaces the row). Zone and group are copied in so
 * district views and exports filter without reaching into the registry.
 */
export class Compliance1764300800000 implements MigrationInterface {
  name = 'Compliance1764300800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE compliance_daily (
        date date NOT NULL,
        school_id uuid NOT NULL,
        zone_id uuid,
        group_id uuid,
        school_day boolean NOT NULL,
        closed_campus boolean NOT NULL,
        guards boolean NOT NULL,
        networked boolean NOT NULL,
        posts boolean NOT NULL,
        all_met boolean NOT NULL,
        failed_count integer NOT NULL,
        reasons jsonb NOT NULL,
        computed_at timestamptz NOT NULL,
        PRIMARY KEY (date, school_id)
      )`);
    await q.query(`CREATE INDEX compliance_daily_zone_idx ON compliance_daily (zone_id, date)`);
    await q.query(`CREATE INDEX compliance_daily_group_idx ON compliance_daily (group_id, date)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS compliance_daily`);
  }
}

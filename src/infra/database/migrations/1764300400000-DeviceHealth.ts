import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Device liveness: transitions (one row per status change, never per heartbeat), one open
 * outage per school with the faults (device offline episodes) it groups, flapping flags and
 * declared maintenance windows. Device ids refer to cameras / alarm_devices rows but carry no
 * foreign key: history outlives a device removed from the registry.
 */
export class DeviceHealth1764300400000 implements MigrationInterface {
  name = 'DeviceHealth1764300400000';

  async up(q: QueryRunner): Promise<void> {
    const kind = `kind text NOT NULL CHECK (kind IN ('camera','alarm_device'))`;
    await q.query(`
      CREATE TABLE device_transitions (
        id bigserial PRIMARY KEY,
        device_id uuid NOT NULL,
        ${kind},
        school_id uuid NOT NULL,
        from_status text NOT NULL CHECK (from_status IN ('unknown','online','offline','fault')),
        to_status text NOT NULL CHECK (to_status IN ('unknown','online','offline','fault')),
        at timestamptz NOT NULL,
        CHECK (from_status <> to_status)
      )`);
    await q.query(`CREATE INDEX device_transitions_device_idx ON device_transitions (device_id, at)`);
    await q.query(`CREATE INDEX device_transitions_school_idx ON device_transitions (school_id, at)`);
    await q.query(`CREATE INDEX device_transitions_at_idx ON device_transitions (at)`);
    await q.query(`
      CREATE TABLE device_outages (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL,
        opened_at timestamptz NOT NULL,
        closed_at timestamptz,
        offline_count integer NOT NULL DEFAULT 0 CHECK (offline_count >= 0),
        peak_count integer NOT NULL DEFAULT 0 CHECK (peak_count >= 0),
        affected_count integer NOT NULL DEFAULT 0 CHECK (affected_count >= 0),
        overdue_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK (closed_at IS NULL OR closed_at >= opened_at)
      )`);
    // At most one open outage per school: concurrent sweeps collapse into it.
    await q.query(`CREATE UNIQUE INDEX device_outages_open_uq ON device_outages (school_id) WHERE closed_at IS NULL`);
    await q.query(`CREATE INDEX device_outages_school_idx ON device_outages (school_id, opened_at DESC)`);
    await q.query(`
      CREATE TABLE device_faults (
        id bigserial PRIMARY KEY,
        outage_id uuid NOT NULL REFERENCES device_outages(id) ON DELETE CASCADE,
        device_id uuid NOT NULL,
        ${kind},
        school_id uuid NOT NULL,
        since timestamptz NOT NULL,
        recovered_at timestamptz,
        overdue_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX device_faults_open_uq ON device_faults (device_id) WHERE recovered_at IS NULL`);
    await q.query(`CREATE INDEX device_faults_outage_idx ON device_faults (outage_id)`);
    await q.query(`CREATE INDEX device_faults_open_since_idx ON device_faults (since) WHERE recovered_at IS NULL`);
    await q.query(`
      CREATE TABLE device_flapping (
        device_id uuid PRIMARY KEY,
        ${kind},
        school_id uuid NOT NULL,
        since timestamptz NOT NULL,
        last_bounce_at timestamptz NOT NULL,
        bounces integer NOT NULL
      )`);
    await q.query(`
      CREATE TABLE maintenance_windows (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        reason text NOT NULL CHECK (length(btrim(reason)) > 0),
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (ends_at > starts_at)
      )`);
    await q.query(`CREATE INDEX maintenance_windows_school_idx ON maintenance_windows (school_id, starts_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['maintenance_windows', 'device_flapping', 'device_faults', 'device_outages', 'device_transitions'])
      await q.query(`DROP TABLE IF EXISTS ${t}`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 11 §2–§3. Drill windows are governed: a window requested by school staff is `pending`
 * until a control-center user approves it; only `approved` windows mark alarms as drills; a
 * window can be ended early (`ended_at`, `ends_at` moved to that instant). Windows that existed
 * before are kept as `approved` (they were in force). Alarm buttons record their self-tests
 * (alarm_button_tests, one row per test press, idempotent per device event id), can be put in
 * a test mode for a few minutes, and remember the last police relay that succeeded for them
 * (the measure of "networked with the police").
 */
export class DrillsAndButtonTests1764311611000 implements MigrationInterface {
  name = 'DrillsAndButtonTests1764311611000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE drill_windows
        ADD COLUMN status text NOT NULL DEFAULT 'approved' CHECK (status IN ('pending','approved')),
        ADD COLUMN created_by_id uuid,
        ADD COLUMN approved_by_id uuid,
        ADD COLUMN approved_by_name text,
        ADD COLUMN approved_at timestamptz,
        ADD COLUMN ended_by_name text,
        ADD COLUMN ended_at timestamptz`);
    await q.query(`ALTER TABLE drill_windows ALTER COLUMN status DROP DEFAULT`);
    await q.query(`DROP INDEX drill_windows_school_idx`);
    await q.query(`CREATE INDEX drill_windows_school_idx ON drill_windows (school_id, starts_at) WHERE status = 'approved'`);
    await q.query(`CREATE INDEX drill_windows_ends_idx ON drill_windows (ends_at)`);

    await q.query(`
      ALTER TABLE alarm_devices
        ADD COLUMN last_test_by_name text,
        ADD COLUMN test_mode_until timestamptz,
        ADD COLUMN test_mode_by_name text,
        ADD COLUMN last_police_relay_at timestamptz`);
    await q.query(`CREATE INDEX alarm_devices_test_mode_idx ON alarm_devices (test_mode_until) WHERE test_mode_until IS NOT NULL`);
    await q.query(`
      CREATE TABLE alarm_button_tests (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        alarm_device_id uuid NOT NULL,
        school_id uuid NOT NULL,
        at timestamptz NOT NULL,
        -- device_flag: the press said test; test_mode: the button was in test mode; outcome: an incident resolved with outcome 'test'
        kind text NOT NULL CHECK (kind IN ('device_flag','test_mode','outcome')),
        device_event_id text,
        incident_id uuid,
        by_type text NOT NULL,
        by_id uuid,
        by_name text NOT NULL,
        police_linked boolean NOT NULL,
        relay_required boolean NOT NULL DEFAULT false,
        relay_delivered_at timestamptz,
        relay_attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT alarm_button_tests_event_uq UNIQUE (alarm_device_id, device_event_id),
        CONSTRAINT alarm_button_tests_incident_uq UNIQUE (incident_id)
      )`);
    await q.query(`CREATE INDEX alarm_button_tests_device_idx ON alarm_button_tests (alarm_device_id, at DESC)`);
    await q.query(`CREATE INDEX alarm_button_tests_school_idx ON alarm_button_tests (school_id, at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alarm_button_tests`);
    await q.query(
      `ALTER TABLE alarm_devices DROP COLUMN last_test_by_name, DROP COLUMN test_mode_until, DROP COLUMN test_mode_by_name, DROP COLUMN last_police_relay_at`,
    );
    await q.query(`DROP INDEX drill_windows_ends_idx`);
    await q.query(`DROP INDEX drill_windows_school_idx`);
    await q.query(`CREATE INDEX drill_windows_school_idx ON drill_windows (school_id, starts_at)`);
    await q.query(
      `ALTER TABLE drill_windows DROP COLUMN status, DROP COLUMN created_by_id, DROP COLUMN approved_by_id, DROP COLUMN approved_by_name, DROP COLUMN approved_at, DROP COLUMN ended_by_name, DROP COLUMN ended_at`,
    );
  }
}

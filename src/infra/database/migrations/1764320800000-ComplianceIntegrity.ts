import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Compliance evidence a guard could fake (attack notes F8, F9, F17).
 *
 * - guards.verified_at / verified_by_name (F8e): a guard entered or imported by school staff is
 *   "declared" until the bureau verifies it; only verified, active, full-time guards count for
 *   the full-time-guards target. Guards already on file are taken as verified (they were counted
 *   before; the bureau can review them with `?verified=` and re-verify), so the target does not
 *   flip for every school on the day this ships.
 * - alarm_button_test_modes (F9): one row per test mode started, for the daily cap
 *   (alarms.buttonTests.maxTestModesPerDay, per Asia/Shanghai day).
 * - incidents_staff_open (F17): finds the open alarm a user's repeated press folds into.
 */
export class ComplianceIntegrity1764320800000 implements MigrationInterface {
  name = 'ComplianceIntegrity1764320800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE guards ADD COLUMN verified_at timestamptz, ADD COLUMN verified_by_name text`);
    await q.query(`UPDATE guards SET verified_at = created_at, verified_by_name = ''`);
    await q.query(`
      CREATE TABLE alarm_button_test_modes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        alarm_device_id uuid NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        until timestamptz NOT NULL,
        by_id uuid,
        by_name text NOT NULL DEFAULT ''
      )`);
    await q.query(`CREATE INDEX alarm_button_test_modes_device ON alarm_button_test_modes (alarm_device_id, started_at)`);
    await q.query(
      `CREATE INDEX incidents_staff_open ON incidents (raised_by_id, school_id, type) WHERE source = 'staff' AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX incidents_staff_open`);
    await q.query(`DROP TABLE alarm_button_test_modes`);
    await q.query(`ALTER TABLE guards DROP COLUMN verified_by_name, DROP COLUMN verified_at`);
  }
}

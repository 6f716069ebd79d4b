import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Maintenance windows for one device too (a camera being replaced), editable and ended early
 * (who, when), and the devices that went offline inside a window: `device_maintenance_offline`
 * holds them instead of an outage fault; once no window covers such a device and it is still
 * offline, the liveness housekeeping opens its fault from then on.
 */
export class MaintenanceWindowsDevices1764321900100 implements MigrationInterface {
  name = 'MaintenanceWindowsDevices1764321900100';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE maintenance_windows
        ADD COLUMN device_id uuid,
        ADD COLUMN device_kind text CHECK (device_kind IN ('camera', 'alarm_device')),
        ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
        ADD COLUMN ended_early_at timestamptz,
        ADD COLUMN ended_by uuid,
        ADD CONSTRAINT maintenance_windows_device_ck CHECK ((device_id IS NULL) = (device_kind IS NULL) AND (device_id IS NULL OR school_id IS NOT NULL))`);
    await q.query(`CREATE INDEX maintenance_windows_device_idx ON maintenance_windows (device_id, starts_at) WHERE device_id IS NOT NULL`);
    await q.query(`CREATE INDEX maintenance_windows_ends_idx ON maintenance_windows (ends_at)`);
    await q.query(`
      CREATE TABLE device_maintenance_offline (
        device_id uuid PRIMARY KEY,
        kind text NOT NULL,
        school_id uuid NOT NULL,
        since timestamptz NOT NULL,
        window_id uuid NOT NULL
      )`);
    await q.query(`CREATE INDEX device_maintenance_offline_school_idx ON device_maintenance_offline (school_id)`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE device_maintenance_offline`);
    await q.query(`DROP INDEX maintenance_windows_ends_idx`);
    await q.query(`DROP INDEX maintenance_windows_device_idx`);
    await q.query(`DELETE FROM maintenance_windows WHERE device_id IS NOT NULL`);
    await q.query(
      `ALTER TABLE maintenance_windows DROP CONSTRAINT maintenance_windows_device_ck, DROP COLUMN device_id, DROP COLUMN device_kind, DROP COLUMN updated_at, DROP COLUMN ended_early_at, DROP COLUMN ended_by`,
    );
  }
}

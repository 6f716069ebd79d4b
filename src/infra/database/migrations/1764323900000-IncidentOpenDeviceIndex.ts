import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A button's open incidents by device and type, for the fold check every press makes
 * (alarm-intake.service.ts `openOf`). The unique index incidents_open_device_uq cannot serve it:
 * it also requires `made_real_at IS NULL` (a drill made real may stand beside a new real incident),
 * which the check rightly does not ask — so Postgres read every open incident of the school
 * instead (a BitmapAnd of the school and status indexes): O(open incidents of the school) per press,
 * 1.4 ms at 1,700 open and growing through a burst (found profiling the 300/s bench burst).
 */
export class IncidentOpenDeviceIndex1764323900000 implements MigrationInterface {
  name = 'IncidentOpenDeviceIndex1764323900000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX IF NOT EXISTS incidents_open_device_idx ON incidents (alarm_device_id, type)
       WHERE source = 'device' AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS incidents_open_device_idx`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A drill made real stands as its own real incident (attack A5): `make-real` failed with 409
 * CONFLICT.DUPLICATE on incidents_open_device_uq when the same button already had an open real
 * incident (a press after the drill window), so the drill stayed a drill — its presses never
 * relayed as real nor escalated. The unique index guards what the intake itself opens (one open
 * incident per button, type, drill flag and place); an incident an operator turned real
 * (`made_real_at`, new) is outside it. Two open real incidents of one button are then visible on
 * the console (the operator closes one as a duplicate); folding the drill into the other was not
 * chosen because it would move presses, evidence and timeline between incidents the police
 * already hold under their own keys.
 */
export class MadeRealOutsideOpenDeviceIndex1764321020000 implements MigrationInterface {
  name = 'MadeRealOutsideOpenDeviceIndex1764321020000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incidents ADD COLUMN made_real_at timestamptz`);
    await q.query(`DROP INDEX incidents_open_device_uq`);
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type, drill, school_id, location) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND made_real_at IS NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX incidents_open_device_uq`);
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type, drill, school_id, location) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
    await q.query(`ALTER TABLE incidents DROP COLUMN made_real_at`);
  }
}

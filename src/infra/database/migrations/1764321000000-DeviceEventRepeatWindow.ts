import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A device event id is the same press only within alarms.deviceEventRepeatWindowSeconds (attack
 * A8): a button whose event counter restarts after a reboot reused ids of old, resolved alarms and
 * every new alarm was answered 200 with the old incident. The id stays unique per device together
 * with `repeat_no` (0 for its first use, +1 each time it comes back after the window), so exactly
 * one row can take each (device, id, repeat) — the guarantee the old UNIQUE (device_id,
 * device_event_id) gave, kept for concurrent retries on several processes.
 */
export class DeviceEventRepeatWindow1764321000000 implements MigrationInterface {
  name = 'DeviceEventRepeatWindow1764321000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incident_presses ADD COLUMN repeat_no integer NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE incident_presses DROP CONSTRAINT incident_presses_event_uq`);
    await q.query(`ALTER TABLE incident_presses ADD CONSTRAINT incident_presses_event_uq UNIQUE (device_id, device_event_id, repeat_no)`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Repeats keep their row under a distinct id (the old constraint allows one row per id).
    await q.query(`UPDATE incident_presses SET device_event_id = device_event_id || '#' || repeat_no WHERE repeat_no > 0`);
    await q.query(`ALTER TABLE incident_presses DROP CONSTRAINT incident_presses_event_uq`);
    await q.query(`ALTER TABLE incident_presses ADD CONSTRAINT incident_presses_event_uq UNIQUE (device_id, device_event_id)`);
    await q.query(`ALTER TABLE incident_presses DROP COLUMN repeat_no`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A GB/T 28181 device's own keepalive settings (issue 16 §6), learned from its ConfigDownload
 * BasicParam (GB/T 28181-2016 §A.2.4.7 / §A.2.6.8): HeartBeatInterval and HeartBeatCount as it
 * reported them, when, and the silence after which its cameras are offline —
 * interval × count, capped by gb28181.heartbeatMaxOfflineSeconds. A device configured for a
 * longer interval than the district default flapped offline between its keepalives. Null: never
 * learned (the liveness default applies).
 */
export class GbHeartbeatParams1764321260000 implements MigrationInterface {
  name = 'GbHeartbeatParams1764321260000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gb_devices
      ADD COLUMN heartbeat_interval integer CHECK (heartbeat_interval IS NULL OR heartbeat_interval BETWEEN 1 AND 86400),
      ADD COLUMN heartbeat_count integer CHECK (heartbeat_count IS NULL OR heartbeat_count BETWEEN 1 AND 1000),
      ADD COLUMN offline_after_seconds integer CHECK (offline_after_seconds IS NULL OR offline_after_seconds BETWEEN 1 AND 604800),
      ADD COLUMN basic_param_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE gb_devices DROP COLUMN heartbeat_interval, DROP COLUMN heartbeat_count, DROP COLUMN offline_after_seconds, DROP COLUMN basic_param_at`,
    );
  }
}

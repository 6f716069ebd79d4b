import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The digest username a device authenticates with, when it is not its device id (issue 16 §5: some
 * firmware and lower platforms register with a configured user name). NULL = the device id, as
 * GB/T 28181-2016 §9.1.2.1 expects. Its HA1 (password_ha1) is computed with this name.
 */
export class GbAuthUsername1764320700000 implements MigrationInterface {
  name = 'GbAuthUsername1764320700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gb_devices ADD COLUMN auth_username text CHECK (auth_username IS NULL OR length(auth_username) BETWEEN 1 AND 64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gb_devices DROP COLUMN auth_username`);
  }
}

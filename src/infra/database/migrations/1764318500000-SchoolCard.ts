import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The school card shown on each alarm (issue 13): the security chief's and the principal's names
 * and phones, and the area's police station (辖区派出所) with its phone. Empty until entered.
 */
export class SchoolCard1764318500000 implements MigrationInterface {
  name = 'SchoolCard1764318500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE schools
        ADD COLUMN security_chief_name text NOT NULL DEFAULT '',
        ADD COLUMN security_chief_phone text NOT NULL DEFAULT '',
        ADD COLUMN principal_name text NOT NULL DEFAULT '',
        ADD COLUMN principal_phone text NOT NULL DEFAULT '',
        ADD COLUMN police_station_name text NOT NULL DEFAULT '',
        ADD COLUMN police_station_phone text NOT NULL DEFAULT ''`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE schools
        DROP COLUMN police_station_phone, DROP COLUMN police_station_name, DROP COLUMN principal_phone,
        DROP COLUMN principal_name, DROP COLUMN security_chief_phone, DROP COLUMN security_chief_name`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A GB/T 28181 device's MANSCDP charset (issue 16 §1): `auto` (the declared encoding when the
 * bytes are valid in it, else detected), or always `GB18030` / `UTF-8` for firmware that declares
 * one and sends another. See src/modules/gb28181/charset.ts.
 */
export class GbDeviceCharset1764318100000 implements MigrationInterface {
  name = 'GbDeviceCharset1764318100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gb_devices ADD COLUMN charset text NOT NULL DEFAULT 'auto' CHECK (charset IN ('auto', 'GB18030', 'UTF-8'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gb_devices DROP COLUMN charset`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Catalog semantics (issue 16 §4). gb_channels holds every Catalog item (GB/T 28181-2016 §A.2.6.3):
 * channels, alarm inputs/outputs (type codes 134/135) and organisation nodes — civil codes of 2, 4, 6
 * or 8 digits (GB/T 2260), systems 200, business groups 215, virtual organisations 216 — so the
 * organisation tree can be rebuilt; `kind` says which. A later complete Catalog replaces the set:
 * items it no longer lists get `removed_at`.
 */
export class GbCatalogSemantics1764320500000 implements MigrationInterface {
  name = 'GbCatalogSemantics1764320500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gb_channels DROP CONSTRAINT IF EXISTS gb_channels_channel_id_check`);
    await q.query(`ALTER TABLE gb_channels ALTER COLUMN channel_id TYPE text`);
    await q.query(
      `ALTER TABLE gb_channels ADD CONSTRAINT gb_channels_channel_id_check CHECK (channel_id ~ '^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{8}|[0-9]{20})$')`,
    );
    await q.query(`
      ALTER TABLE gb_channels
        ADD COLUMN kind text NOT NULL DEFAULT 'camera' CHECK (kind IN ('camera', 'alarm_input', 'alarm_output', 'organisation')),
        ADD COLUMN business_group_id text NOT NULL DEFAULT '',
        ADD COLUMN removed_at timestamptz`);
    await q.query(`
      UPDATE gb_channels SET kind = CASE
        WHEN substr(channel_id, 11, 1) = '2' THEN 'organisation'
        WHEN substr(channel_id, 11, 3) = '134' THEN 'alarm_input'
        WHEN substr(channel_id, 11, 3) = '135' THEN 'alarm_output'
        ELSE 'camera' END`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM gb_channels WHERE length(channel_id) <> 20`);
    await q.query(`ALTER TABLE gb_channels DROP COLUMN removed_at, DROP COLUMN business_group_id, DROP COLUMN kind`);
    await q.query(`ALTER TABLE gb_channels DROP CONSTRAINT gb_channels_channel_id_check`);
    await q.query(`ALTER TABLE gb_channels ALTER COLUMN channel_id TYPE char(20)`);
    await q.query(`ALTER TABLE gb_channels ADD CONSTRAINT gb_channels_channel_id_check CHECK (channel_id ~ '^[0-9]{20}$')`);
  }
}

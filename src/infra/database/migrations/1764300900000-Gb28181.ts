import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * GB/T 28181 devices (cameras, NVRs) as the SIP front end knows them: credentials (HA1, never
 * the password), registration state, what DeviceInfo reported, and the channels each device's
 * Catalog listed — provisioned as registry cameras (camera_id) or waiting for an admin to place
 * them (camera_id NULL). Keepalive times live in device health (Redis), not here.
 */
export class Gb281811764300900000 implements MigrationInterface {
  name = 'Gb281811764300900000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gb_devices (
        device_id char(20) PRIMARY KEY CHECK (device_id ~ '^[0-9]{20}$'),
        password_ha1 text CHECK (password_ha1 IS NULL OR password_ha1 ~ '^[0-9a-f]{32}$'),
        ha1_realm text,
        school_id uuid REFERENCES schools(id) ON DELETE SET NULL,
        registered boolean NOT NULL DEFAULT false,
        call_id text,
        transport text CHECK (transport IS NULL OR transport IN ('UDP','TCP')),
        contact_address text,
        contact_port integer,
        registered_at timestamptz,
        expires_at timestamptz,
        last_keepalive_at timestamptz,
        name text NOT NULL DEFAULT '',
        manufacturer text NOT NULL DEFAULT '',
        model text NOT NULL DEFAULT '',
        firmware text NOT NULL DEFAULT '',
        channel_count integer,
        catalog_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX gb_devices_school_idx ON gb_devices (school_id)`);
    await q.query(`CREATE INDEX gb_devices_registered_idx ON gb_devices (expires_at) WHERE registered`);
    await q.query(`
      CREATE TABLE gb_channels (
        device_id char(20) NOT NULL REFERENCES gb_devices(device_id) ON DELETE CASCADE,
        channel_id char(20) NOT NULL CHECK (channel_id ~ '^[0-9]{20}$'),
        name text NOT NULL DEFAULT '',
        manufacturer text NOT NULL DEFAULT '',
        model text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT '',
        parent_id text NOT NULL DEFAULT '',
        longitude double precision,
        latitude double precision,
        camera_id uuid,
        reported_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (device_id, channel_id)
      )`);
    await q.query(`CREATE INDEX gb_channels_unassigned_idx ON gb_channels (device_id) WHERE camera_id IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE gb_channels`);
    await q.query(`DROP TABLE gb_devices`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The spine: district registry, users and credentials, audit log.
 * Constraints make bad data impossible rather than merely unlikely.
 */
export class Registry1764300000000 implements MigrationInterface {
  name = 'Registry1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);
    await q.query(`
      CREATE TABLE districts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        timezone text NOT NULL DEFAULT 'Asia/Shanghai',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE school_zones (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        district_id uuid NOT NULL REFERENCES districts(id) ON DELETE RESTRICT,
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        level text NOT NULL CHECK (level IN ('primary','middle','mixed')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE education_groups (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        district_id uuid NOT NULL REFERENCES districts(id) ON DELETE RESTRICT,
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE schools (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        district_id uuid NOT NULL REFERENCES districts(id) ON DELETE RESTRICT,
        zone_id uuid REFERENCES school_zones(id) ON DELETE RESTRICT,
        group_id uuid REFERENCES education_groups(id) ON DELETE SET NULL,
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        type text NOT NULL CHECK (type IN ('kindergarten','primary','middle','high','vocational','nine_year')),
        address text NOT NULL DEFAULT '',
        lat double precision CHECK (lat BETWEEN -90 AND 90),
        lng double precision CHECK (lng BETWEEN -180 AND 180),
        student_count integer NOT NULL DEFAULT 0 CHECK (student_count >= 0),
        staff_count integer NOT NULL DEFAULT 0 CHECK (staff_count >= 0),
        boarding boolean NOT NULL DEFAULT false,
        timetable jsonb NOT NULL CHECK (jsonb_typeof(timetable) = 'object'),
        calendar jsonb NOT NULL DEFAULT '{"terms":[],"holidays":[]}' CHECK (jsonb_typeof(calendar) = 'object'),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((lat IS NULL) = (lng IS NULL))
      )`);
    await q.query(`CREATE UNIQUE INDEX schools_name_uq ON schools (district_id, name)`);
    await q.query(`CREATE INDEX schools_zone_idx ON schools (zone_id)`);
    await q.query(`CREATE INDEX schools_group_idx ON schools (group_id)`);

    const deviceColumns = `
        status text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown','online','offline','fault')),
        last_seen_at timestamptz,
        keepalive_seconds integer CHECK (keepalive_seconds BETWEEN 1 AND 86400),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()`;
    const areaKinds = `'main_gate','side_gate','gatehouse','perimeter','stairwell','dormitory','canteen','playground','classroom_corridor','teaching_building','parking','other'`;
    await q.query(`
      CREATE TABLE cameras (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL REFERENCES schools(id) ON DELETE RESTRICT,
        device_id char(20) NOT NULL CHECK (device_id ~ '^[0-9]{20}$'),
        channel_id char(20) NOT NULL CHECK (channel_id ~ '^[0-9]{20}$'),
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        location text NOT NULL DEFAULT '',
        area_kind text NOT NULL CHECK (area_kind IN (${areaKinds})),
        vendor text NOT NULL DEFAULT '',
        model text NOT NULL DEFAULT '',
        stream_url text NOT NULL DEFAULT '',
        ${deviceColumns},
        UNIQUE (device_id, channel_id)
      )`);
    await q.query(`CREATE INDEX cameras_school_idx ON cameras (school_id, area_kind)`);
    await q.query(`CREATE INDEX cameras_status_idx ON cameras (status)`);
    await q.query(`
      CREATE TABLE alarm_devices (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
        school_id uuid NOT NULL REFERENCES schools(id) ON DELETE RESTRICT,
        location text NOT NULL DEFAULT '',
        area_kind text NOT NULL CHECK (area_kind IN (${areaKinds})),
        police_linked boolean NOT NULL DEFAULT false,
        linked_camera_ids uuid[] NOT NULL DEFAULT '{}',
        last_test_at timestamptz,
        ${deviceColumns}
      )`);
    await q.query(`CREATE INDEX alarm_devices_school_idx ON alarm_devices (school_id)`);
    await q.query(`
      CREATE TABLE guards (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL REFERENCES schools(id) ON DELETE RESTRICT,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        licence_no text NOT NULL UNIQUE CHECK (licence_no ~ '^[A-Za-z0-9-]{4,32}$'),
        full_time boolean NOT NULL DEFAULT true,
        phone text NOT NULL DEFAULT '' CHECK (phone = '' OR phone ~ '^\\+?[0-9-]{5,20}$'),
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX guards_school_idx ON guards (school_id)`);
    await q.query(`
      CREATE TABLE protection_posts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
        school_id uuid NOT NULL REFERENCES schools(id) ON DELETE RESTRICT,
        gate text NOT NULL CHECK (length(btrim(gate)) > 0),
        windows jsonb NOT NULL CHECK (jsonb_typeof(windows) = 'array' AND jsonb_array_length(windows) > 0),
        required_headcount integer NOT NULL DEFAULT 2 CHECK (required_headcount BETWEEN 1 AND 50),
        qr_token text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX protection_posts_school_idx ON protection_posts (school_id)`);

    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.@-]{3,64}$'),
        display_name text NOT NULL DEFAULT '',
        password_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin','operator','supervisor','school_security','auditor')),
        school_id uuid REFERENCES schools(id) ON DELETE RESTRICT,
        phone text NOT NULL DEFAULT '',
        disabled boolean NOT NULL DEFAULT false,
        last_login_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((role = 'school_security') = (school_id IS NOT NULL))
      )`);
    await q.query(`CREATE UNIQUE INDEX users_username_uq ON users (lower(username))`);
    await q.query(`
      CREATE TABLE refresh_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        family_id uuid NOT NULL,
        token_hash text NOT NULL UNIQUE,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        created_ip text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id)`);
    await q.query(`CREATE INDEX refresh_tokens_expiry_idx ON refresh_tokens (expires_at)`);
    await q.query(`
      CREATE TABLE device_credentials (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        key_id text NOT NULL UNIQUE,
        secret_hash text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('camera','alarm_device','gateway')),
        subject_id uuid,
        school_id uuid REFERENCES schools(id) ON DELETE CASCADE,
        label text NOT NULL DEFAULT '',
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((kind = 'gateway') = (subject_id IS NULL))
      )`);
    await q.query(`CREATE INDEX device_credentials_subject_idx ON device_credentials (subject_id)`);
    await q.query(`
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor_type text NOT NULL CHECK (actor_type IN ('user','device','system')),
        actor_id uuid,
        actor_name text NOT NULL,
        ip text,
        request_id text,
        action text NOT NULL,
        entity text NOT NULL,
        entity_id text,
        school_id uuid,
        before jsonb,
        after jsonb
      )`);
    await q.query(`CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, at DESC)`);
    await q.query(`CREATE INDEX audit_log_at_idx ON audit_log (at DESC)`);
    await q.query(`CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'audit_log',
      'device_credentials',
      'refresh_tokens',
      'users',
      'protection_posts',
      'guards',
      'alarm_devices',
      'cameras',
      'schools',
      'education_groups',
      'school_zones',
      'districts',
    ])
      await q.query(`DROP TABLE IF EXISTS ${t}`);
  }
}

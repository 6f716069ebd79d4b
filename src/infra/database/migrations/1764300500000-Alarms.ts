import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alarms: incidents with their timeline, the device presses that fold into them (unique per
 * device event id: the idempotency key of a device), drill windows, and the transactional
 * outbox that turns committed incidents into BullMQ jobs.
 */
export class Alarms1764300500000 implements MigrationInterface {
  name = 'Alarms1764300500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE incidents (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        type text NOT NULL CHECK (type IN ('intrusion','violence','medical','fire','video_alarm','tamper','device_fault','other')),
        priority text NOT NULL CHECK (priority IN ('P1','P2','P3','P4')),
        source text NOT NULL CHECK (source IN ('device','staff','operator')),
        school_id uuid NOT NULL,
        zone_id uuid,
        alarm_device_id uuid,
        camera_id uuid,
        location text NOT NULL DEFAULT '',
        area_kind text,
        note text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT 'raised' CHECK (status IN ('raised','acknowledged','dispatched','on_scene','resolved','cancelled')),
        press_count integer NOT NULL DEFAULT 1,
        first_press_at timestamptz NOT NULL,
        last_press_at timestamptz NOT NULL,
        drill boolean NOT NULL DEFAULT false,
        outcome text CHECK (outcome IN ('genuine','false_alarm','drill','test')),
        raised_by_id uuid,
        raised_by_name text NOT NULL DEFAULT '',
        shown_at timestamptz,
        acknowledged_by_id uuid,
        acknowledged_by_name text,
        acknowledged_at timestamptz,
        dispatched_at timestamptz,
        on_scene_at timestamptz,
        resolved_by_id uuid,
        resolved_by_name text,
        resolved_at timestamptz,
        cancelled_at timestamptz,
        cancel_reason text,
        escalation_level integer NOT NULL DEFAULT 0,
        linked_camera_ids uuid[] NOT NULL DEFAULT '{}',
        cameras jsonb NOT NULL DEFAULT '[]',
        school_name text NOT NULL DEFAULT '',
        relay_required boolean NOT NULL DEFAULT false,
        relay_delivered_at timestamptz,
        relay_attempts integer NOT NULL DEFAULT 0,
        relay_late boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX incidents_school_idx ON incidents (school_id, first_press_at DESC)`);
    await q.query(`CREATE INDEX incidents_status_idx ON incidents (status, first_press_at DESC)`);
    await q.query(`CREATE INDEX incidents_first_press_idx ON incidents (first_press_at DESC)`);
    // At most one open device-raised incident per alarm device and type: later presses fold into it
    // (a backstop; intake serialises each device's events with an advisory lock).
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
    await q.query(
      `CREATE INDEX incidents_open_camera_idx ON incidents (camera_id) WHERE camera_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );

    await q.query(`
      CREATE TABLE incident_presses (
        id bigserial PRIMARY KEY,
        incident_id uuid NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        device_id uuid NOT NULL, -- the alarm device (or camera) that reported the event
        device_event_id text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT incident_presses_event_uq UNIQUE (device_id, device_event_id)
      )`);
    await q.query(`CREATE INDEX incident_presses_incident_idx ON incident_presses (incident_id)`);

    await q.query(`
      CREATE TABLE incident_timeline (
        id bigserial PRIMARY KEY,
        incident_id uuid NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now(),
        actor_type text NOT NULL,
        actor_id uuid,
        actor_name text NOT NULL,
        action text NOT NULL,
        note text NOT NULL DEFAULT '',
        data jsonb
      )`);
    await q.query(`CREATE INDEX incident_timeline_incident_idx ON incident_timeline (incident_id, id)`);

    await q.query(`
      CREATE TABLE drill_windows (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        note text NOT NULL DEFAULT '',
        created_by_name text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (ends_at > starts_at)
      )`);
    await q.query(`CREATE INDEX drill_windows_school_idx ON drill_windows (school_id, starts_at)`);

    await q.query(`
      CREATE TABLE alarm_outbox (
        id bigserial PRIMARY KEY,
        job_name text NOT NULL,
        job_id text NOT NULL UNIQUE,
        payload jsonb NOT NULL,
        available_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        dispatched_at timestamptz,
        done_at timestamptz
      )`);
    await q.query(`CREATE INDEX alarm_outbox_pending_idx ON alarm_outbox (dispatched_at NULLS FIRST, id) WHERE done_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alarm_outbox`);
    await q.query(`DROP TABLE drill_windows`);
    await q.query(`DROP TABLE incident_timeline`);
    await q.query(`DROP TABLE incident_presses`);
    await q.query(`DROP TABLE incidents`);
  }
}

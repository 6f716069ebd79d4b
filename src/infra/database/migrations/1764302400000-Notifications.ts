import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Escalation that reaches a person (src/modules/notifications): the duty roster (值班表), the roster
 * gaps already reported, notification channels with their secrets and maintenance silences, the
 * escalation policy per priority, and one row per message (incident × level × recipient × channel),
 * which is also the module's outbox: a row not yet sent or finally failed is queued again.
 */
export class Notifications1764302400000 implements MigrationInterface {
  name = 'Notifications1764302400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE duty_shifts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        duty_role text NOT NULL CHECK (duty_role IN ('operator_desk', 'duty_supervisor', 'bureau_leader')),
        user_id uuid NOT NULL REFERENCES users(id),
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        note text NOT NULL DEFAULT '',
        handed_over_from_id uuid NULL REFERENCES duty_shifts(id) ON DELETE SET NULL,
        created_by_id uuid NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT duty_shifts_window CHECK (ends_at > starts_at)
      )`);
    await q.query(`CREATE INDEX duty_shifts_role_window_idx ON duty_shifts (duty_role, ends_at, starts_at)`);
    await q.query(`
      CREATE TABLE duty_roster_gaps (
        duty_role text NOT NULL,
        gap_from timestamptz NOT NULL,
        gap_to timestamptz NOT NULL,
        reported_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (duty_role, gap_from, gap_to)
      )`);
    await q.query(`
      CREATE TABLE notification_channels (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text NOT NULL CHECK (kind IN ('wecom', 'dingtalk', 'feishu', 'sms')),
        name text NOT NULL,
        webhook_url text NOT NULL,
        secret text NOT NULL DEFAULT '',
        template jsonb NULL,
        enabled boolean NOT NULL DEFAULT true,
        silenced_until timestamptz NULL,
        silence_reason text NULL,
        failing_since timestamptz NULL,
        last_error text NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX notification_channels_name_key ON notification_channels (lower(name))`);
    await q.query(`
      CREATE TABLE escalation_policies (
        priority text PRIMARY KEY CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
        levels jsonb NOT NULL,
        updated_by_id uuid NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE notification_deliveries (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        incident_id uuid NOT NULL,
        level integer NOT NULL,
        dedup_key text NOT NULL UNIQUE,
        channel_id uuid NULL REFERENCES notification_channels(id) ON DELETE SET NULL,
        channel_kind text NULL,
        channel_name text NULL,
        recipient_user_id uuid NULL,
        recipient_name text NOT NULL,
        duty_role text NULL,
        address text NULL,
        status text NOT NULL CHECK (status IN ('pending', 'retrying', 'sent', 'failed', 'cancelled', 'suppressed', 'no_recipient')),
        attempts integer NOT NULL DEFAULT 0,
        provider_code text NULL,
        last_error text NULL,
        due_at timestamptz NOT NULL,
        dispatched_at timestamptz NULL,
        sent_at timestamptz NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX notification_deliveries_incident_idx ON notification_deliveries (incident_id, created_at)`);
    await q.query(`CREATE INDEX notification_deliveries_open_idx ON notification_deliveries (dispatched_at) WHERE status IN ('pending', 'retrying')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS notification_deliveries, escalation_policies, notification_channels, duty_roster_gaps, duty_shifts`);
  }
}

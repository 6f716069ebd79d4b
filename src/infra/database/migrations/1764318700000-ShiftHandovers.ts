import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Shift handover at the control center (issue 13): the leaving operator records what the next
 * one takes over — the open alarms at that moment (count and the oldest ones), the shift's
 * events and notes (summary), a note — and the next operator acknowledges it, once.
 */
export class ShiftHandovers1764318700000 implements MigrationInterface {
  name = 'ShiftHandovers1764318700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE shift_handovers (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        from_user_id uuid NOT NULL,
        from_name text NOT NULL,
        shift_from timestamptz NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        note text NOT NULL DEFAULT '',
        summary jsonb NOT NULL,
        acknowledged_by_id uuid,
        acknowledged_by_name text,
        acknowledged_at timestamptz,
        CHECK (shift_from <= at)
      )`);
    await q.query(`CREATE INDEX shift_handovers_at_idx ON shift_handovers (at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE shift_handovers`);
  }
}

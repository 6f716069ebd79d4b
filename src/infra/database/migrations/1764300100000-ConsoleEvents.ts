import { MigrationInterface, QueryRunner } from 'typeorm';

/** The console event log: persisted before it is sent, replayed by sequence on reconnect. */
export class ConsoleEvents1764300100000 implements MigrationInterface {
  name = 'ConsoleEvents1764300100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE console_events (
        seq bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        type text NOT NULL,
        v integer NOT NULL,
        school_id uuid,
        payload jsonb NOT NULL
      )`);
    await q.query(`CREATE INDEX console_events_school_idx ON console_events (school_id, seq)`);
    await q.query(`CREATE INDEX console_events_at_idx ON console_events (at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE console_events`);
  }
}

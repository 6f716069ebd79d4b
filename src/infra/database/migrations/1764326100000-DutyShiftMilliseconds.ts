import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Duty shift times are kept to the millisecond, as the API shows them. A handover ended a shift at now()
 * (microseconds: …29.080168) while the API answered …29.080Z, so a shift entered to start at the end shown
 * overlapped the ended one by 168 µs and was refused 409 DUTY_SHIFT.OVERLAP (attack finding). Existing times
 * are cut to the millisecond (a shift stays at least a millisecond long: the handover kept it so), and a check
 * keeps every later write there.
 */
export class DutyShiftMilliseconds1764326100000 implements MigrationInterface {
  name = 'DutyShiftMilliseconds1764326100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `UPDATE duty_shifts SET starts_at = date_trunc('milliseconds', starts_at),
         ends_at = greatest(date_trunc('milliseconds', ends_at), date_trunc('milliseconds', starts_at) + interval '1 millisecond')
        WHERE starts_at <> date_trunc('milliseconds', starts_at) OR ends_at <> date_trunc('milliseconds', ends_at)`,
    );
    await q.query(
      `ALTER TABLE duty_shifts ADD CONSTRAINT duty_shifts_milliseconds
         CHECK (starts_at = date_trunc('milliseconds', starts_at) AND ends_at = date_trunc('milliseconds', ends_at))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE duty_shifts DROP CONSTRAINT duty_shifts_milliseconds`);
  }
}

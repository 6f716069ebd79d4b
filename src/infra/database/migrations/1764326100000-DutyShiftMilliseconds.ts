import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Duty shift times are kept to the millisecond, as the API shows them. A handover ended a shift at now()
 * (microseconds: …29.080168) while the API answered …29.080Z, so a shift entered to start at the end shown
 * overlapped the ended one by 168 µs and was refused 409 DUTY_SHIFT.OVERLAP (attack finding). Existing times
 * are cut to the millisecond (a shift stays at least a millisecond long: the handover kept it so), and a trigger
 * cuts every later write there — whoever writes (the api, the demo seed, an engineer's SQL with now()): a check
 * constraint refused such writes instead, which is no help to the one writing.
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
      `CREATE FUNCTION duty_shifts_milliseconds() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.starts_at := date_trunc('milliseconds', NEW.starts_at);
         NEW.ends_at := greatest(date_trunc('milliseconds', NEW.ends_at), NEW.starts_at + interval '1 millisecond');
         RETURN NEW;
       END $$`,
    );
    await q.query(
      `CREATE TRIGGER duty_shifts_milliseconds BEFORE INSERT OR UPDATE OF starts_at, ends_at ON duty_shifts
         FOR EACH ROW EXECUTE FUNCTION duty_shifts_milliseconds()`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER duty_shifts_milliseconds ON duty_shifts`);
    await q.query(`DROP FUNCTION duty_shifts_milliseconds()`);
  }
}

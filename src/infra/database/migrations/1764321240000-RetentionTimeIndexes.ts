import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Time indexes the retention purge walks (oldest first, a bounded batch per statement): patrol
 * runs by slot, findings by time, post check-ins by check-in time. Without them each batch of the
 * purge would read the whole table.
 */
export class RetentionTimeIndexes1764321240000 implements MigrationInterface {
  name = 'RetentionTimeIndexes1764321240000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX patrol_runs_slot_idx ON patrol_runs (slot)`);
    await q.query(`CREATE INDEX patrol_findings_at_idx ON patrol_findings (at)`);
    await q.query(`CREATE INDEX post_checkins_checked_in_idx ON post_checkins (checked_in_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX post_checkins_checked_in_idx`);
    await q.query(`DROP INDEX patrol_findings_at_idx`);
    await q.query(`DROP INDEX patrol_runs_slot_idx`);
  }
}

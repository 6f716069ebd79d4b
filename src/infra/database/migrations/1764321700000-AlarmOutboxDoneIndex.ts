import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The alarm outbox's retention (retention.alarmOutboxDays): done rows are purged oldest first by
 * done_at in bounded batches; this partial index (done rows only) serves that walk. Pending rows
 * keep their own index (alarm_outbox_pending_idx) and are never purged.
 */
export class AlarmOutboxDoneIndex1764321700000 implements MigrationInterface {
  name = 'AlarmOutboxDoneIndex1764321700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX alarm_outbox_done_at_idx ON alarm_outbox (done_at) WHERE done_at IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX alarm_outbox_done_at_idx`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A supervisor may send a closed rectification task back to the school with a reason (issue 13:
 * "follow tasks to closure, reopen with a reason"): the fix did not hold, the evidence shows nothing.
 * The task is open again with a new deadline; `reopen_reason`, `reopened_at`, `reopened_by` say the last
 * time and why, `reopen_count` how often. The last closing note and evidence reference stay on the row
 * (the school sees what was not accepted) until the school closes it again; the audit log keeps each one.
 */
export class TaskReopen1764325000000 implements MigrationInterface {
  name = 'TaskReopen1764325000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE rectification_tasks
        ADD COLUMN reopened_at timestamptz,
        ADD COLUMN reopened_by uuid,
        ADD COLUMN reopen_reason text,
        ADD COLUMN reopen_count integer NOT NULL DEFAULT 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE rectification_tasks DROP COLUMN reopened_at, DROP COLUMN reopened_by, DROP COLUMN reopen_reason, DROP COLUMN reopen_count`);
  }
}

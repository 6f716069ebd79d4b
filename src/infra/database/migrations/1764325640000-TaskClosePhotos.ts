import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A rectification task is closed with photos of the fix (issue 13: "the school's rectification tasks with photo
 * evidence on closing"): `close_photo_ids` holds the evidence ids the last closing named (video_evidence rows of
 * purpose `rectification.photo`, ref the task). Like the closing note they stay when a supervisor sends the task
 * back, so everyone sees what was not accepted; the audit log keeps every closing's. Tasks closed before this have
 * none (empty array, never null: the view answers a list).
 */
export class TaskClosePhotos1764325640000 implements MigrationInterface {
  name = 'TaskClosePhotos1764325640000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE rectification_tasks ADD COLUMN close_photo_ids uuid[] NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE rectification_tasks DROP COLUMN close_photo_ids`);
  }
}

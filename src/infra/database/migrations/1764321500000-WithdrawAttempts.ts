import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The police withdrawal's own attempt count (requests actually sent). The job's attempt number also
 * counts the runs that only found the alarm itself not yet delivered, so a timeline saying "5th
 * attempt" went with exactly one request at the police endpoint (attack note, outage round 2).
 */
export class WithdrawAttempts1764321500000 implements MigrationInterface {
  name = 'WithdrawAttempts1764321500000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incidents ADD COLUMN withdraw_attempts int NOT NULL DEFAULT 0`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incidents DROP COLUMN withdraw_attempts`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Access-token revocations and login attempt counters in Postgres (issue 11 §1/§1b, issue 12 §7).
 * Revocations used to live only in Redis: a Redis that came back empty made logged-out tokens
 * valid again, and a Redis that was down made every authenticated request wait. Now Postgres is
 * the truth and each api process keeps them in memory (auth/revocations.service.ts).
 *
 * - token_revocations: `kind` 'token' (one access token by jti, a logout) or 'user' (every token
 *   of the user issued at or before `revoked_before_ms`: password change, disable, refresh
 *   reuse); `expires_at`: when the row stops mattering (the tokens it covers have expired).
 * - login_attempts: one counter per key (account+address pair, account, address) in a fixed
 *   window ending at `window_ends`; counted before the password is checked.
 */
export class TokenRevocations1764313700000 implements MigrationInterface {
  name = 'TokenRevocations1764313700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE token_revocations (
        id bigserial PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('token', 'user')),
        subject text NOT NULL,
        revoked_before_ms bigint,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX token_revocations_created_idx ON token_revocations (created_at)`);
    await q.query(`CREATE INDEX token_revocations_expires_idx ON token_revocations (expires_at)`);
    await q.query(`
      CREATE TABLE login_attempts (
        key text PRIMARY KEY,
        count integer NOT NULL,
        window_ends timestamptz NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE login_attempts`);
    await q.query(`DROP TABLE token_revocations`);
  }
}

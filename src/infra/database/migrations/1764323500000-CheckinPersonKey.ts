import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A check-in's person compared without Latin case: "Li Lei" and "li lei" typed by two operators
 * are one person (one open check-in per post, one head in a window's count), the name shown as
 * typed. person_key is lower(person_name), kept by Postgres (a generated column: every writer,
 * raw SQL included, gets it); the unique index on open check-ins moves to it. Open duplicates that
 * only differ in case are ended first, each at the next one's check-in time (the latest stays
 * open), as OpenCheckinPerPerson did for exact duplicates.
 */
export class CheckinPersonKey1764323500000 implements MigrationInterface {
  name = 'CheckinPersonKey1764323500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE post_checkins ADD COLUMN person_key text GENERATED ALWAYS AS (lower(person_name)) STORED`);
    await q.query(`
      UPDATE post_checkins c SET checked_out_at = GREATEST(n.next_in, c.checked_in_at)
        FROM (SELECT id, lead(checked_in_at) OVER (PARTITION BY post_id, person_key ORDER BY checked_in_at, id) AS next_in
                FROM post_checkins WHERE checked_out_at IS NULL) n
       WHERE c.id = n.id AND n.next_in IS NOT NULL`);
    await q.query(`DROP INDEX post_checkins_open_person_uq`);
    await q.query(`CREATE UNIQUE INDEX post_checkins_open_person_uq ON post_checkins (post_id, person_key) WHERE checked_out_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX post_checkins_open_person_uq`);
    await q.query(`CREATE UNIQUE INDEX post_checkins_open_person_uq ON post_checkins (post_id, person_name) WHERE checked_out_at IS NULL`);
    await q.query(`ALTER TABLE post_checkins DROP COLUMN person_key`);
  }
}

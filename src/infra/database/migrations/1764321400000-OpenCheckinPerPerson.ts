import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One open protection-post check-in per (post, person): six parallel on-behalf check-ins of one
 * volunteer were all taken, and two of one roster guard 32 ms apart both stayed open. FieldService
 * serialises check-ins per (school, person) and refuses the duplicate (409/429); this index makes it
 * a guarantee of the data. Existing duplicates are ended first, each at the next one's check-in
 * time (the latest stays open), as a new check-in at the post now ends a forgotten one — the head
 * count (distinct names per window) is unchanged by it.
 */
export class OpenCheckinPerPerson1764321400000 implements MigrationInterface {
  name = 'OpenCheckinPerPerson1764321400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      UPDATE post_checkins c SET checked_out_at = GREATEST(n.next_in, c.checked_in_at)
        FROM (SELECT id, lead(checked_in_at) OVER (PARTITION BY post_id, person_name ORDER BY checked_in_at, id) AS next_in
                FROM post_checkins WHERE checked_out_at IS NULL) n
       WHERE c.id = n.id AND n.next_in IS NOT NULL`);
    await q.query(`CREATE UNIQUE INDEX post_checkins_open_person_uq ON post_checkins (post_id, person_name) WHERE checked_out_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX post_checkins_open_person_uq`);
  }
}

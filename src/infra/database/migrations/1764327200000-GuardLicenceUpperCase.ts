import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Guards' licence numbers (保安员证号) are compared without regard to case from now on (attack pass 8: `DUP-0002` and
 * `dup-0002` in one file imported as two guards): the CRUD routes and imports store them trimmed and upper-cased
 * (CreateGuardDto, import columns). Existing ones are upper-cased here so that a re-import or an edit finds them by
 * their key. A pair that would then collide (two records of one licence, written before) is left as it is for a
 * person to resolve — merging guards is not a migration's decision; the NOTICE names how many. Irreversible in data:
 * `down` changes nothing (the original case is not kept, and upper case is what every route writes).
 */
export class GuardLicenceUpperCase1764327200000 implements MigrationInterface {
  name = 'GuardLicenceUpperCase1764327200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      UPDATE guards g SET licence_no = upper(g.licence_no)
      WHERE g.licence_no <> upper(g.licence_no)
        AND NOT EXISTS (SELECT 1 FROM guards o WHERE o.id <> g.id AND upper(o.licence_no) = upper(g.licence_no))`);
    await q.query(`
      DO $$
      DECLARE n int;
      BEGIN
        SELECT count(*) INTO n FROM guards WHERE licence_no <> upper(licence_no);
        IF n > 0 THEN
          RAISE NOTICE '% guard licence number(s) differ only in case from another guard''s and were left as they are: resolve them by hand', n;
        END IF;
      END $$`);
  }

  async down(): Promise<void> {
    // Nothing to undo: the original case of a licence number is not kept.
  }
}

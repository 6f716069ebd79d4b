import { GuardLicenceUpperCase1764327200000 } from '../../src/infra/database/migrations/1764327200000-GuardLicenceUpperCase';
import { useMigrationDatabase } from '../support/migration-db';

/**
 * Licence numbers are compared without regard to case from this migration on: it upper-cases the
 * stored ones, except a pair that would then be one licence twice — that is for a person to resolve,
 * and the migration must not fail on it (nor merge two guards).
 */
describe('migration GuardLicenceUpperCase', () => {
  const m = useMigrationDatabase();
  const runner = m.runner;

  it('upper-cases stored licence numbers and leaves a pair that differs only in case as it is', async () => {
    const district = (await m.client.query(`INSERT INTO districts (code, name) VALUES ('m1', '迁移区') RETURNING id`)).rows[0].id;
    const school = (
      await m.client.query(`INSERT INTO schools (district_id, code, name, type, timetable) VALUES ($1, 'MS1', '迁移小学', 'primary', '{}') RETURNING id`, [
        district,
      ])
    ).rows[0].id;
    for (const [name, licence] of [
      ['甲', 'low-0001'],
      ['乙', 'UP-0002'],
      ['丙', 'Pair-0003'],
      ['丁', 'PAIR-0003'],
    ])
      await m.client.query(`INSERT INTO guards (school_id, name, licence_no) VALUES ($1, $2, $3)`, [school, name, licence]);
    await new GuardLicenceUpperCase1764327200000().up(runner);
    const { rows } = await m.client.query(`SELECT name, licence_no FROM guards WHERE school_id = $1 ORDER BY name COLLATE "C"`, [school]);
    expect(rows).toEqual([
      { name: '丁', licence_no: 'PAIR-0003' },
      { name: '丙', licence_no: 'Pair-0003' },
      { name: '乙', licence_no: 'UP-0002' },
      { name: '甲', licence_no: 'LOW-0001' },
    ]);
  });
});

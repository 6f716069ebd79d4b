import { Client, DatabaseError } from 'pg';
import { QueryFailedError } from 'typeorm';
import { fromPostgres } from '../../src/infra/http/pg-errors';
import { ADMIN_DB_URL } from '../support/harness';

/**
 * The Postgres → API error mapping against errors raised by the real Postgres (temporary tables
 * of this session only): the class of each is a 4xx with our code, the fields it is about, and
 * never Postgres's own message, detail or the offending value.
 */
describe('Postgres errors → API errors', () => {
  const db = new Client({ connectionString: ADMIN_DB_URL });

  beforeAll(async () => {
    await db.connect();
    await db.query(`CREATE TEMP TABLE t_schools (id int PRIMARY KEY)`);
    await db.query(`
      CREATE TEMP TABLE t_guards (
        id serial PRIMARY KEY,
        name text NOT NULL,
        licence_no text UNIQUE,
        school_id int REFERENCES t_schools(id),
        headcount int CHECK (headcount > 0),
        badge varchar(5),
        born date,
        data jsonb
      )`);
    await db.query(`INSERT INTO t_schools VALUES (1)`);
    await db.query(`INSERT INTO t_guards (name, licence_no, school_id) VALUES ('张三', 'LIC-SECRET-0001', 1)`);
  });
  afterAll(() => db.end());

  /** Runs a statement that must fail, and returns Postgres's error. */
  const pgError = async (sql: string, params: unknown[] = []): Promise<DatabaseError> => {
    const e = await db.query(sql, params).then(
      () => null,
      (err: unknown) => err,
    );
    if (!(e instanceof DatabaseError)) throw new Error(`expected a Postgres error from ${sql}, got ${String(e)}`);
    return e;
  };

  /** The mapping, checked to carry none of Postgres's text (message, detail, the values in it). */
  const mapped = (e: DatabaseError, ...secrets: string[]) => {
    const d = fromPostgres(e);
    if (!d) throw new Error(`unmapped Postgres error ${e.code}: ${e.message}`);
    const shown = JSON.stringify({ message: d.message, details: d.details });
    for (const text of [e.message, e.detail, ...secrets]) if (text) expect(shown).not.toContain(text);
    // TypeORM's wrapper maps the same way.
    expect(fromPostgres(new QueryFailedError('SELECT …', [], e))).toEqual(d);
    return { status: d.status, code: d.code, message: d.message, details: d.details as { fields: unknown; constraint?: string } };
  };

  it('integrity violations (class 23): 409 for duplicates and references, 400 naming the field otherwise', async () => {
    const dup = mapped(await pgError(`INSERT INTO t_guards (name, licence_no) VALUES ('李四', 'LIC-SECRET-0001')`), 'LIC-SECRET-0001');
    expect(dup).toMatchObject({ status: 409, code: 'CONFLICT.DUPLICATE', details: { constraint: 't_guards_licence_no_key', fields: ['licenceNo'] } });

    const ref = mapped(await pgError(`INSERT INTO t_guards (name, school_id) VALUES ('李四', 424242)`), '424242');
    expect(ref).toMatchObject({ status: 409, code: 'CONFLICT.REFERENCE', details: { fields: ['schoolId'] } });
    const referenced = mapped(await pgError(`DELETE FROM t_schools WHERE id = 1`));
    expect(referenced).toMatchObject({ status: 409, code: 'CONFLICT.REFERENCE' });

    const nul = mapped(await pgError(`INSERT INTO t_guards (name) VALUES (NULL)`));
    expect(nul).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', details: { fields: [{ field: 'name', reason: 'is required' }] } });

    const check = mapped(await pgError(`INSERT INTO t_guards (name, headcount) VALUES ('李四', 0)`));
    expect(check).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
      details: { constraint: 't_guards_headcount_check', fields: [{ field: 'headcount' }] },
    });
  });

  it.each([
    ['22001 too long', `INSERT INTO t_guards (name, badge) VALUES ('x', $1)`, ['TOO-LONG-BADGE']],
    ['22003 out of range', `SELECT $1::int`, ['99999999999']],
    ['22007 bad date format', `SELECT $1::date`, ['yesterday-ish']],
    ['22008 date out of range', `SELECT $1::date`, ['2026-13-45']],
    ['22021 NUL byte', `SELECT $1::text`, ['a\u0000b']],
    ['22P02 bad format', `SELECT $1::uuid`, ['not-a-uuid']],
    ['22P02 lone surrogate in JSON', `INSERT INTO t_guards (name, data) VALUES ('x', $1)`, [JSON.stringify({ note: '\udc00' })]],
    ['22P05 NUL in JSON', `INSERT INTO t_guards (name, data) VALUES ('x', $1)`, [JSON.stringify({ note: 'a\u0000b' })]],
    ['22012 division by zero', `SELECT 1 / $1::int`, ['0']],
  ])('data exceptions (class 22) are 400s in our words: %s', async (_what, sql, params) => {
    const e = await pgError(sql, params);
    expect(e.code?.slice(0, 2)).toBe('22');
    const d = mapped(e, ...params.filter((p) => p.length > 3));
    expect(d).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', details: { fields: expect.any(Array) } });
  });

  it('leaves everything else to the 500 path (logged, with a request id)', async () => {
    expect(fromPostgres(await pgError(`SELEC 1`))).toBeNull(); // 42601: a bug in our SQL, not the caller's input
    expect(fromPostgres(await pgError(`SELECT * FROM no_such_table`))).toBeNull();
    expect(fromPostgres(new Error('connection terminated'))).toBeNull();
    expect(fromPostgres(undefined)).toBeNull();
  });
});

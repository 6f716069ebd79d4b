import { Client } from 'pg';
import { requestContext } from '../../src/infra/http/request-context';
import { AlarmIntakeService } from '../../src/modules/alarms';
import { seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Attack pass 11 #4: the combined intake statement repeats every event's CTE chain, so its prepared
 * form grows with its size, and each distinct text stays prepared on a pooled connection while the
 * connection lives (infra/database/prepared.ts). Measured on one connection: a lone event's text
 * ~0.6 MB of backend memory, a 4-part ~2.6 MB, a 16-part ~10.6 MB, a 64-part ~42 MB — at the first
 * default (16, ladder 16/4/1) ~14 MB per connection and shape, with database.poolSize 20 and three
 * shapes ~800 MB. Hence the default 8 with the ladder 8/2/1 and a rule capping it at 16: this test
 * keeps what one burst of buttons prepares at the default within a bound.
 */
describe('alarm intake: what the combined statements cost a Postgres connection', () => {
  let t: TestApp;
  let intake: AlarmIntakeService;
  const ids: string[] = [];

  beforeAll(async () => {
    t = await startApp({ alarms: { groupCommit: { windowMs: 50, maxBatch: 100, maxConcurrent: 2 } } }); // statementMaxEvents: the default
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const { rows } = await t.db.query(
      `INSERT INTO alarm_devices (code, school_id, location, area_kind, police_linked)
       SELECT 'MEM-' || g, $1, '岗' || g, 'dormitory', false FROM generate_series(1, 11) g RETURNING id`,
      [seed.schoolA.id],
    );
    ids.push(...rows.map((r: { id: string }) => r.id));
    intake = t.app.get(AlarmIntakeService);
  });
  afterAll(() => t?.close());

  it('keeps the statements one burst of buttons prepares on a connection within 10 MB of backend memory at the default size', async () => {
    // The statements a burst of 11 buttons sends (chunks of 8, 2 and 1: every size of the ladder), with their values.
    const sent = new Map<string, unknown[]>();
    const spy = jest.spyOn(Client.prototype, 'query');
    try {
      await Promise.all(
        ids.map((d, i) =>
          requestContext.run({ requestId: `mem-${i}`, ip: '127.0.0.1', actor: { type: 'device', id: d, name: 'b' } }, () =>
            intake.raiseFromDevice({ deviceKind: 'alarm_device', deviceId: d, eventId: `mem-${i}` }, { type: 'device', id: d, name: 'b' }),
          ),
        ),
      );
      for (const [q] of spy.mock.calls) {
        const s = q as unknown as { name?: string; text?: string; values?: unknown[] };
        if (s && typeof s === 'object' && s.name && s.text?.includes('INSERT INTO incidents')) sent.set(s.text, s.values ?? []);
      }
    } finally {
      spy.mockRestore();
    }
    expect(sent.size).toBe(3);
    // Prepared and run (rolled back) on a connection of our own, as a pooled connection of the service does.
    const c = new Client({ connectionString: t.config.database.url });
    await c.connect();
    try {
      const memory = async () => Number((await c.query(`SELECT sum(total_bytes)::bigint AS b FROM pg_backend_memory_contexts`)).rows[0].b);
      await c.query('SELECT count(*) FROM incidents'); // the catalog caches of a used connection
      const before = await memory();
      let n = 0;
      for (const [text, values] of sent) {
        await c.query('BEGIN');
        // Six runs: Postgres plans the first five with the values (custom plans) before it keeps a generic one.
        for (let k = 0; k < 6; k++) {
          await c.query('SAVEPOINT s');
          await c.query({ name: `intake_${n}`, text, values });
          await c.query('ROLLBACK TO SAVEPOINT s');
        }
        await c.query('ROLLBACK');
        n++;
      }
      const mb = ((await memory()) - before) / 1e6;
      process.stdout.write(`[intake] prepared combined statements: ${mb.toFixed(1)} MB per connection and shape\n`);
      expect(mb).toBeLessThan(10); // ~7.5 MB here; the first default (16) was ~14
    } finally {
      await c.end();
    }
  });
});

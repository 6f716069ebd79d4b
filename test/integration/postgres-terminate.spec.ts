import { seedMinimal, startApp, TestApp } from '../support/harness';
import { createButton, press, TestButton } from '../support/devices';

/**
 * Postgres connections killed under a burst of presses (found by the adversarial pass: every
 * backend of the service's database terminated every few hundred ms while 10 buttons press).
 * The device contract (README, docs/ARCHITECTURE.md): a press is answered 201/200 once committed,
 * or 503 UNAVAILABLE.DATABASE with Retry-After when nothing was saved, and the device retries the
 * same event id. Asserted: no other answer (a 500 was given when TypeORM's query runner had
 * released itself on the dying connection), and after the retries every event is one press of
 * one incident per button — nothing lost, nothing doubled.
 */
describe('presses while Postgres backends are terminated (slow)', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  const buttons: TestButton[] = [];

  beforeAll(async () => {
    t = await startApp();
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    for (let i = 0; i < 10; i++) buttons.push(await createButton(t, admin, { schoolId: seed.schoolA.id, code: `KILL-${i}`, location: `${i}号门` }));
  });

  afterAll(() => t?.close());

  it('answers every press 201/200 or 503 with Retry-After, and the retries leave each event committed exactly once', async () => {
    const dbName = new URL(t.config.database.url).pathname.slice(1);
    // Kill every backend of the service's database every 250 ms for 8 s, from a connection of our own.
    let killed = 0;
    const killUntil = Date.now() + 8000;
    const killer = (async () => {
      while (Date.now() < killUntil) {
        const { rows } = await t.db.query(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
          [dbName],
        );
        killed += rows[0].n;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    const unexpected: string[] = [];
    /**
     * A device: presses its events in turn, each retried on 503 (or a dropped connection) with the
     * same event id — while the kills go on, and at most 40 more times once they have stopped.
     */
    const device = async (b: TestButton) => {
      for (let n = 0; n < 12; n++) {
        const eventId = `${b.code}-ev-${n}`;
        for (let afterKills = 0; ;) {
          let status = -1; // the connection to us dropped: a device retries
          try {
            const res = await press(t.baseUrl, b, eventId, 15_000);
            status = res.status;
            if (status === 503 && !res.headers.get('retry-after')) unexpected.push(`${eventId}: 503 without Retry-After`);
            if (![200, 201, 503].includes(status)) unexpected.push(`${eventId}: ${status} ${await res.text()}`);
          } catch {
            /* retried */
          }
          if (status === 200 || status === 201) break;
          if (Date.now() > killUntil && ++afterKills > 40) throw new Error(`${eventId} never committed after the kills stopped`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    await Promise.all([killer, ...buttons.map(device)]);

    expect(unexpected).toEqual([]);
    expect(killed).toBeGreaterThan(0);
    const { rows } = await t.db.query(
      `SELECT count(*)::int AS presses, count(DISTINCT p.device_event_id)::int AS events, count(DISTINCT p.incident_id)::int AS incidents
       FROM incident_presses p`,
    );
    expect(rows[0]).toEqual({ presses: 120, events: 120, incidents: 10 });
  });
});

import { seedMinimal, startApp, TestApp } from '../support/harness';
import { pressWhileBackendsKilled } from '../support/backend-kills';
import { createButton, TestButton } from '../support/devices';

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
    // Kill every backend of the service's database every 250 ms for 8 s; each device retries the same event id.
    const { killed, unexpected } = await pressWhileBackendsKilled(t, buttons, { events: 12, forMs: 8000, everyMs: 250, retryMs: 200 });
    expect(unexpected).toEqual([]);
    expect(killed).toBeGreaterThan(0);
    const { rows } = await t.db.query(
      `SELECT count(*)::int AS presses, count(DISTINCT p.device_event_id)::int AS events, count(DISTINCT p.incident_id)::int AS incidents
       FROM incident_presses p`,
    );
    expect(rows[0]).toEqual({ presses: 120, events: 120, incidents: 10 });
  });
});

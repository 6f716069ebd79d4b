import { pressWhileBackendsKilled } from '../support/backend-kills';
import { createButton, TestButton } from '../support/devices';
import { seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Postgres backends terminated while groups of presses are taken in combined statements (attack
 * pass 11): 24 buttons, so a group's first events fill statements of alarms.groupCommit.statementMaxEvents. Every press is answered
 * 201/200 or a 503 with Retry-After; the device retries the same event id; afterwards each event is
 * one press, each button one incident with its presses in the order sent, and each incident was
 * announced and audited once.
 */
describe('combined intake statements while Postgres backends are terminated (slow)', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  const buttons: TestButton[] = [];

  beforeAll(async () => {
    t = await startApp({ alarms: { pressesPerSecond: 50, pressBurst: 50 } });
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    for (let i = 0; i < 24; i++) buttons.push(await createButton(t, admin, { schoolId: seed.schoolA.id, code: `GK-${i}`, location: `${i}号岗` }));
  });

  afterAll(() => t?.close());

  it('loses and doubles nothing', async () => {
    const { killed, unexpected } = await pressWhileBackendsKilled(t, buttons, { events: 6, forMs: 6000, everyMs: 200, retryMs: 100 });
    expect(unexpected).toEqual([]);
    expect(killed).toBeGreaterThan(0);
    const { rows } = await t.db.query(
      `SELECT count(*)::int AS presses, count(DISTINCT p.device_event_id)::int AS events, count(DISTINCT p.incident_id)::int AS incidents FROM incident_presses p`,
    );
    expect(rows[0]).toEqual({ presses: 144, events: 144, incidents: 24 });
    const order = await t.db.query(`SELECT device_id, array_agg(device_event_id ORDER BY id) AS evs FROM incident_presses GROUP BY device_id`);
    for (const r of order.rows as { device_id: string; evs: string[] }[]) {
      const code = buttons.find((b) => b.id === r.device_id)!.code;
      expect(r.evs).toEqual(Array.from({ length: 6 }, (_, n) => `${code}-ev-${n}`));
    }
    const once = await t.db.query(
      `SELECT (SELECT count(*)::int FROM console_events WHERE type = 'incident.raised') AS raised, (SELECT count(*)::int FROM audit_log WHERE entity = 'incident' AND action = 'raise') AS audited,
              (SELECT count(*)::int FROM incidents) AS incidents`,
    );
    expect(once.rows[0]).toEqual({ raised: 24, audited: 24, incidents: 24 });
  });
});

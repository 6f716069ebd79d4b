import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';

const SECRET = 'test-police-hmac-secret-0123456789';

/**
 * A police endpoint that takes requests and never answers (adversarial pass F15): each delivery
 * holds a worker until its timeout (here 60 s). Escalations have their own workers (the alarms
 * queue; deliveries are on the police-relay queue), so with two workers per queue and four
 * deliveries hung, every alarm still escalates through both levels long before any delivery
 * could time out — they ran 12–16 s late when both shared one pool of workers.
 */
describe('a hung police endpoint does not hold escalations (slow)', () => {
  jest.setTimeout(90_000);
  let t: TestApp;
  let police: PoliceReceiver;

  beforeAll(async () => {
    police = await startPoliceReceiver(SECRET);
    police.hanging = true;
    t = await startApp({
      queue: { concurrency: 2 },
      alarms: {
        escalationSeconds: { P1: [0.3, 0.6], P2: [600], P3: [600], P4: [600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 60_000, attempts: 3, backoffMs: 50, lateAfterSeconds: 30 },
        outbox: { pollMs: 100, redispatchAfterMs: 120_000, batchSize: 100 },
      },
    });
  });

  afterAll(async () => {
    await t?.close();
    await police?.close();
  });

  it('escalates four P1 alarms through both levels while their deliveries hang', async () => {
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const op = (await t.userToken('operator')).token;
    const ids: string[] = [];
    for (const place of ['北门', '南门', '操场', '食堂'])
      ids.push(
        (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolA.id, type: 'violence', location: place }).expect(201)).body.id,
      );
    // Both relay workers are held by deliveries that will not be answered within this test.
    await waitFor(async () => police.requests.size >= 2, 10_000, 'deliveries in flight');
    await waitFor(
      async () => (await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE id = ANY($1) AND escalation_level = 2`, [ids])).rows[0].n === 4,
      20_000,
      'every alarm escalated to level 2',
    );
    expect(police.accepted.size).toBe(0); // nothing was answered: the escalations did not wait for it
  });
});

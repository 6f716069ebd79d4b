import { QueueService } from '../../src/infra/queue/queue.service';
import { JobName, JOBS } from '../../src/infra/queue/queue.catalogue';
import { jobIds } from '../../src/modules/alarms/alarms.constants';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';

const SECRET = 'test-police-hmac-secret-0123456789';

/**
 * A withdrawal follows its alarm to the police at once (attack A17's withdrawal; a CI run timed out
 * waiting for it). A withdrawal that finds its alarm still undelivered is retried with the relay's
 * backoff, which grows with every try while the endpoint fails (1 s, 2 s, 4 s… by default). When the
 * alarm is delivered at last, its withdrawal is run then, not when its own backoff ends. The backoff
 * here is 30 s, so a withdrawal that waited for it could not arrive within the test's 10 s.
 */
describe('police withdrawal right after its alarm', () => {
  let t: TestApp;
  let police: PoliceReceiver;
  let staff: string;
  let schoolId: string;

  beforeAll(async () => {
    police = await startPoliceReceiver(SECRET);
    t = await startApp({
      alarms: {
        escalationSeconds: { P1: [600], P2: [600], P3: [600], P4: [600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 10, backoffMs: 30_000, lateAfterSeconds: 60 },
        outbox: { pollMs: 100, redispatchAfterMs: 120_000, batchSize: 100 },
      },
    });
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    schoolId = seed.schoolA.id;
    staff = (await t.userToken('school_security', schoolId)).token;
  });
  afterAll(async () => {
    await t.close();
    await police.close();
  });

  it('sends the withdrawal of a cancelled alarm as soon as the alarm itself is delivered, not after its own backoff', async () => {
    police.failing = true;
    const alarm = await t.http().post('/api/v1/incidents').set(auth(staff)).send({ schoolId, type: 'intrusion', location: '北门' }).expect(201);
    const id = alarm.body.id as string;
    // The alarm's first delivery fails: it waits its 30 s backoff.
    await waitFor(async () => (police.requests.get(id) ?? 0) >= 1, 10_000, 'the first delivery attempt');
    await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(staff)).send({ reason: '误按' }).expect(200);
    // The withdrawal finds the alarm pending and waits its own backoff.
    const queue = t.app.get(QueueService);
    const withdrawState = async () => (await queue.queue(JOBS[JobName.AlarmPoliceWithdraw].queue).getJob(jobIds.withdraw(id)))?.getState();
    await waitFor(async () => (await withdrawState()) === 'delayed', 10_000, 'the withdrawal waiting for its alarm');
    // The endpoint is back and the alarm goes out now (as its backoff ending would do).
    police.failing = false;
    expect(await queue.promoteJob(JobName.AlarmPoliceRelay, jobIds.relay(id))).toBe(true);
    await waitFor(async () => police.accepted.has(id), 10_000, 'the alarm delivered');
    await waitFor(async () => police.accepted.has(`${id}-withdraw`), 10_000, 'the withdrawal right after it');
    expect(police.bodies.get(`${id}-withdraw`)).toMatchObject({ incidentId: id, withdrawn: true, status: 'cancelled', reason: '误按' });
    expect(police.accepted.get(id)).toBe(1);
  });

  it('leaves alone a job that is not waiting: nothing to promote', async () => {
    const queue = t.app.get(QueueService);
    expect(await queue.promoteJob(JobName.AlarmPoliceWithdraw, jobIds.withdraw('00000000-0000-4000-8000-000000000000'))).toBe(false);
  });
});

import type { DataSource } from 'typeorm';
import { QueueService } from '../../src/infra/queue/queue.service';
import { JobName, JOBS } from '../../src/infra/queue/queue.catalogue';
import { AlarmsJobs } from '../../src/modules/alarms/alarms.jobs';
import { jobIds } from '../../src/modules/alarms/alarms.constants';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';

const SECRET = 'test-police-hmac-secret-0123456789';

type Relay = (incidentId: string, attempt: number, real?: boolean) => Promise<string>;
type Withdraw = (incidentId: string, attempt: number) => Promise<string>;

/**
 * Attack pass 12 on the police withdrawal: interleavings of the alarm's delivery with its withdrawal
 * and with a drill made real, forced by running a handler on a DataSource that stops at a chosen step
 * (the other party's commit lands there, as it can on two connections).
 */
describe('police relay and withdrawal interleavings (attack pass 12)', () => {
  let t: TestApp;
  let police: PoliceReceiver;
  let staff: string;
  let op: string;
  let schoolId: string;
  let jobs: AlarmsJobs;
  let queue: QueueService;
  const restore: (() => void)[] = [];

  /** `jobs` with its DataSource replaced by `db` (for one call of a handler). */
  const withDb = (db: DataSource): AlarmsJobs => Object.create(jobs, { db: { value: db } }) as AlarmsJobs;
  const realDb = (): DataSource => (jobs as unknown as { db: DataSource }).db;

  beforeAll(async () => {
    police = await startPoliceReceiver(SECRET);
    t = await startApp({
      alarms: {
        escalationSeconds: { P1: [600], P2: [600], P3: [600], P4: [600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 10, backoffMs: 30_000, lateAfterSeconds: 60 },
        outbox: { pollMs: 100, redispatchAfterMs: 120_000, batchSize: 100 },
        drills: { maxWindowMinutes: 120, maxStartPastMinutes: 5, maxLeadDays: 90, relay: 'marked', relayLabel: '演练' },
      },
    });
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    schoolId = seed.schoolA.id;
    staff = (await t.userToken('school_security', schoolId)).token;
    op = (await t.userToken('operator')).token;
    jobs = t.app.get(AlarmsJobs);
    queue = t.app.get(QueueService);
  });
  afterEach(() => {
    while (restore.length) restore.pop()!();
    police.failing = false;
  });
  afterAll(async () => {
    await t.close();
    await police.close();
  });

  const jobState = async (name: JobName, id: string) => (await queue.queue(JOBS[name].queue).getJob(id))?.getState();

  it('sends the withdrawal when the alarm is delivered between its two reads (incident row, then the relay outbox row)', async () => {
    police.failing = true;
    const id = (await t.http().post('/api/v1/incidents').set(auth(staff)).send({ schoolId, type: 'intrusion', location: '北门' }).expect(201)).body
      .id as string;
    await waitFor(async () => (police.requests.get(id) ?? 0) >= 1, 10_000, 'the first delivery attempt');
    await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(staff)).send({ reason: '误按' }).expect(200);
    await waitFor(async () => (await jobState(JobName.AlarmPoliceWithdraw, jobIds.withdraw(id))) === 'delayed', 10_000, 'the withdrawal waiting');

    // The withdrawal's next run reads the incident (not delivered yet); the relay's retry then delivers
    // and commits before the withdrawal reads the outbox (the relay's promote finds it running: nothing to hurry).
    const db = realDb();
    const origWithdraw = jobs.withdraw.bind(jobs) as Withdraw;
    let interleaved = false;
    const stalling = new Proxy(db, {
      get(target, prop, recv) {
        if (prop !== 'query') return Reflect.get(target, prop, recv) as unknown;
        return async (sql: string, params?: unknown[]) => {
          const r = (await target.query(sql, params)) as unknown;
          if (!interleaved && /^SELECT (\*|i\.\*).* FROM incidents/s.test(sql)) {
            interleaved = true;
            police.failing = false;
            expect(await jobs.relay(id, 2)).toBe('delivered');
          }
          return r;
        };
      },
    });
    jobs.withdraw = ((incidentId: string, attempt: number) =>
      incidentId === id
        ? AlarmsJobs.prototype.withdraw.call(withDb(stalling), incidentId, attempt)
        : origWithdraw(incidentId, attempt)) as AlarmsJobs['withdraw'];
    restore.push(() => {
      jobs.withdraw = origWithdraw as AlarmsJobs['withdraw'];
    });
    expect(await queue.promoteJob(JobName.AlarmPoliceWithdraw, jobIds.withdraw(id))).toBe(true);
    await waitFor(async () => interleaved, 10_000, 'the interleaved run');
    // That run may have to wait for its backoff (the relay's promote found it running); its end is simulated.
    await waitFor(
      async () => {
        if ((await jobState(JobName.AlarmPoliceWithdraw, jobIds.withdraw(id))) === 'delayed')
          await queue.promoteJob(JobName.AlarmPoliceWithdraw, jobIds.withdraw(id));
        return (await t.db.query(`SELECT done_at FROM alarm_outbox WHERE job_id = $1`, [jobIds.withdraw(id)])).rows[0]?.done_at;
      },
      10_000,
      'the withdrawal job done',
    );
    expect(police.accepted.get(id)).toBe(1);
    // The alarm was delivered, then cancelled: the police must hear of the withdrawal.
    expect(police.delivered.get(`${id}-withdraw`)).toBe(1);
  });

  it('relays a drill made real as real when the drill delivery in flight commits after the make-real', async () => {
    const drill = (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId, type: 'fire', location: '操场', drill: true }).expect(201)).body;
    expect(drill.drill).toBe(true);
    const id = drill.id as string;
    const db = realDb();
    const origRelay = jobs.relay.bind(jobs) as Relay;
    let madeReal = false;
    // The drill's delivery is posted (as a drill); make-real commits before its UPDATE records it.
    const stalling = new Proxy(db, {
      get(target, prop, recv) {
        if (prop !== 'transaction') return Reflect.get(target, prop, recv) as unknown;
        return async (fn: unknown) => {
          if (!madeReal) {
            madeReal = true;
            await t.http().post(`/api/v1/incidents/${id}/make-real`).set(auth(op)).send({ note: '不是演练' }).expect(200);
          }
          return (target.transaction as (f: unknown) => Promise<unknown>)(fn);
        };
      },
    });
    jobs.relay = ((incidentId: string, attempt: number, real = false) =>
      incidentId === id && !real && !madeReal
        ? AlarmsJobs.prototype.relay.call(withDb(stalling), incidentId, attempt, real)
        : origRelay(incidentId, attempt, real)) as AlarmsJobs['relay'];
    restore.push(() => {
      jobs.relay = origRelay as AlarmsJobs['relay'];
    });
    await waitFor(async () => madeReal && police.accepted.has(id), 10_000, 'the drill delivered, made real meanwhile');
    expect(police.bodies.get(id)).toMatchObject({ drill: true });
    await waitFor(
      async () => (await t.db.query(`SELECT done_at FROM alarm_outbox WHERE job_id = $1`, [jobIds.relay(id, true)])).rows[0]?.done_at,
      10_000,
      'the real relay job done',
    );
    // The police were told only of a drill: the real alarm must go out under <id>-real.
    expect(police.delivered.get(`${id}-real`)).toBe(1);
    expect(police.bodies.get(`${id}-real`)).toMatchObject({ drill: false, madeRealFromDrill: true });
  });

  it('does not send a withdrawal before the real alarm of a drill made real while the drill delivery was in flight', async () => {
    const drill = (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId, type: 'fire', location: '操场', drill: true }).expect(201)).body;
    const id = drill.id as string;
    const db = realDb();
    const origRelay = jobs.relay.bind(jobs) as Relay;
    let madeReal = false;
    const stalling = new Proxy(db, {
      get(target, prop, recv) {
        if (prop !== 'transaction') return Reflect.get(target, prop, recv) as unknown;
        return async (fn: unknown) => {
          if (!madeReal) {
            madeReal = true;
            police.failing = true; // the real alarm cannot go out for now
            await t.http().post(`/api/v1/incidents/${id}/make-real`).set(auth(op)).send({}).expect(200);
          }
          return (target.transaction as (f: unknown) => Promise<unknown>)(fn);
        };
      },
    });
    jobs.relay = ((incidentId: string, attempt: number, real = false) =>
      incidentId === id && !real && !madeReal
        ? AlarmsJobs.prototype.relay.call(withDb(stalling), incidentId, attempt, real)
        : origRelay(incidentId, attempt, real)) as AlarmsJobs['relay'];
    restore.push(() => {
      jobs.relay = origRelay as AlarmsJobs['relay'];
    });
    await waitFor(async () => madeReal && (police.requests.get(`${id}-real`) ?? 0) >= 1, 10_000, 'the real alarm tried and failing');
    await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(op)).send({ reason: '误报' }).expect(200);
    police.failing = false;
    // Let a withdrawal that wrongly believes the alarm delivered go out (it would within a second).
    await new Promise((r) => setTimeout(r, 2000));
    // The real alarm is still pending (30 s backoff): nothing may be withdrawn before it.
    if (police.accepted.has(`${id}-withdraw`)) expect(police.accepted.has(`${id}-real`)).toBe(true);
    expect(police.requests.get(`${id}-withdraw`) ?? 0).toBe(0);
    // Its backoff ends: the real alarm goes out, then (promoted by it) the withdrawal, once each.
    expect(await queue.promoteJob(JobName.AlarmPoliceRelay, jobIds.relay(id, true))).toBe(true);
    await waitFor(async () => police.accepted.has(`${id}-withdraw`), 10_000, 'the withdrawal after the real alarm');
    expect(police.delivered.get(`${id}-real`)).toBe(1);
    expect(police.delivered.get(`${id}-withdraw`)).toBe(1);
    expect(police.bodies.get(`${id}-real`)).toMatchObject({ drill: false, madeRealFromDrill: true });
  });
});

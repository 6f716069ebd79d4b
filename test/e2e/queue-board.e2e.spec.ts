import { JobName, QueueName } from '../../src/infra/queue/queue.catalogue';
import { QueueService } from '../../src/infra/queue/queue.service';
import { PROTECTED_QUEUES } from '../../src/modules/ops/queue-board';
import { auth, startApp, TestApp } from '../support/harness';

/**
 * The queue dashboard's policy on the queues whose work must not wait (attack pass 3): a "clean delayed"
 * on the alarms queue deleted the delayed escalation jobs, and the outbox relay re-created them only
 * outbox.redispatchAfterMs after they were due — an unacknowledged alarm's supervisor call came about a
 * minute late. Nothing the dashboard offers may drop or hold back pending jobs of those queues; resuming
 * (one or all) may always be done. Paths the dashboard does not serve answer the API's JSON error envelope.
 */
describe('queue dashboard: protected queues and its error envelope', () => {
  let t: TestApp;
  let cookie: string;
  beforeAll(async () => {
    t = await startApp();
    const admin = await t.userToken('admin', undefined, 'qb.admin');
    const opened = await t.http().post('/api/v1/ops/queue-board/session').set(auth(admin.token)).send({}).expect(200);
    cookie = /^shouhu_queue_board=([^;]+)/.exec(opened.headers['set-cookie'][0] as string)![1];
  });
  afterAll(() => t.close());

  const put = (path: string) => t.http().put(`/admin/queues${path}`).set('Cookie', `shouhu_queue_board=${cookie}`).set('Origin', t.baseUrl);
  const audited = async () =>
    (await t.db.query(`SELECT after->>'path' AS path FROM audit_log WHERE action = 'queue_board' ORDER BY id`)).rows.map((r) => r.path);

  it('protects the alarm, police-relay and notification queues (the queues of the jobs run during a Redis outage)', () => {
    expect([...PROTECTED_QUEUES].sort()).toEqual([QueueName.Alarms, QueueName.Notifications, QueueName.PoliceRelay].sort());
  });

  it('refuses to clean delayed escalations (409 QUEUE_BOARD.PROTECTED_QUEUE): the timer stays', async () => {
    const queue = t.app.get(QueueService).queue(QueueName.Alarms);
    const jobId = 'esc-00000000-0000-4000-8000-0000000000e1-1';
    await t.app.get(QueueService).add(JobName.AlarmEscalate, { incidentId: '00000000-0000-4000-8000-0000000000e1', level: 1 }, { jobId, delay: 3_600_000 });
    const refused = await put('/api/queues/alarms/clean/delayed').expect(409);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.body).toEqual({
      error: {
        code: 'QUEUE_BOARD.PROTECTED_QUEUE',
        message: expect.stringContaining('only completed or failed jobs can be cleaned'),
        details: { queue: 'alarms', action: 'clean delayed' },
        requestId: expect.any(String),
      },
    });
    // Other spellings of the same thing, and removing the job itself.
    await put('/api/queues/alarms/CLEAN/Delayed').expect(409);
    await put('/api/queues/alarms/clean/%64elayed/').expect(409);
    await put(`/api/queues/alarms/${jobId}/clean`).expect(409);
    expect(await queue.getJobState(jobId)).toBe('delayed');
    // Nothing refused was audited as done.
    expect(await audited()).toEqual([]);
  });

  it('holds every pending-dropping or pausing action on every protected queue, and lets them through elsewhere', async () => {
    for (const q of PROTECTED_QUEUES) {
      for (const [path, action] of [
        [`/api/queues/${q}/pause`, 'pause'],
        [`/api/queues/${q}/clean/wait`, 'clean wait'],
        [`/api/queues/${q}/clean/delayed`, 'clean delayed'],
        [`/api/queues/${q}/clean/active`, 'clean active'],
        [`/api/queues/${q}/clean/paused`, 'clean paused'],
        [`/api/queues/${q}/clean/prioritized`, 'clean prioritized'],
        [`/api/queues/${q}/some-job/clean`, 'remove'],
      ]) {
        const r = await put(path).expect(409);
        expect(r.body.error).toMatchObject({ code: 'QUEUE_BOARD.PROTECTED_QUEUE', details: { queue: q, action } });
      }
      // Finished jobs may be cleaned; resuming, retrying and promoting only let work run sooner.
      await put(`/api/queues/${q}/clean/completed`).expect(200);
      await put(`/api/queues/${q}/clean/failed`).expect(200);
      await put(`/api/queues/${q}/resume`).expect(200);
      await put(`/api/queues/${q}/retry/failed`).expect(200);
    }
    // A queue whose work may wait: the same actions go through.
    await put('/api/queues/system/pause').expect(200);
    await put('/api/queues/system/resume').expect(200);
    await put('/api/queues/system/clean/delayed').expect(200);
    // Pausing every queue would pause the protected ones: refused with the same code. Resuming all is allowed.
    const all = await put('/api/queues/pause').expect(409);
    expect(all.body.error).toMatchObject({ code: 'QUEUE_BOARD.PROTECTED_QUEUE', details: { queue: '*', action: 'pause' } });
    expect(all.body.error.message).toMatch(/pause other queues one by one/);
    await put('/api/queues/resume').expect(200);
    for (const q of PROTECTED_QUEUES)
      expect(
        await t.app
          .get(QueueService)
          .queue(q as QueueName)
          .isPaused(),
      ).toBe(false);
    // What is not offered at all stays a 403 of its own code.
    const notOffered = await put('/api/queues/system/obliterate').expect(403);
    expect(notOffered.body.error.code).toBe('QUEUE_BOARD.NOT_OFFERED');
  });

  it('answers a path it does not serve with the JSON error envelope, not an HTML page', async () => {
    for (const [method, path] of [
      ['get', '/admin/queues/no/such/page.html'],
      ['get', '/admin/queues/api/nothing-here'],
      ['put', '/admin/queues/api/queues/system/123/retry/extra'],
    ] as const) {
      const req = t.http()[method](path).set('Cookie', `shouhu_queue_board=${cookie}`).set('Origin', t.baseUrl);
      // A change outside the allow-list is refused before routing (403); a read that matches nothing is 404.
      const r = await req.expect(method === 'get' ? 404 : 403);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.body).toEqual({
        error: { code: method === 'get' ? 'NOT_FOUND' : 'QUEUE_BOARD.NOT_OFFERED', message: expect.any(String), requestId: expect.any(String) },
      });
    }
  });
});

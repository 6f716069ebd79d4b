import type { Job } from 'bullmq';
import { DataSource } from 'typeorm';
import type { PoolClient } from 'pg';
import type { RoutedPool } from '../../src/infra/database/pools';
import { QueueName } from '../../src/infra/queue/queue.catalogue';
import { QueueService } from '../../src/infra/queue/queue.service';
import { FakeReceiver, startFakeReceiver } from '../support/fake-receivers';
import { createButtons, press, TestButton } from '../support/devices';
import { seedMinimal, startApp, TestApp } from '../support/harness';
import { waitFor } from '../support/police-receiver';

/**
 * Issue 11 §6 with issue 14: a burst of presses does not starve the jobs behind it, and intake does
 * not wait behind jobs. The jobs pool is held by the test (every connection checked out) while N
 * buttons are pressed at once and their level-1 escalations fall due: every press is still taken
 * (intake has its own pool), and the escalation jobs that found no connection are put back as delayed
 * without spending an attempt. Once the pool is free, every alarm escalates once and the duty
 * supervisor gets exactly one message per alarm (fake SMS gateway checking signatures), and no job
 * failed. Counts and outcomes only: nothing here measures time.
 */
const N = 40;
const SECRET = 'burst-sms-gateway-secret-0123456789';

describe('a burst does not starve escalation and notification jobs (slow)', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  let sms: FakeReceiver;
  let held: PoolClient[] = [];

  beforeAll(async () => {
    sms = await startFakeReceiver('sms', { secret: SECRET });
    t = await startApp({
      database: { poolSize: 3, jobsPoolSize: 2, jobsPoolWaitMs: 2000 },
      queue: { noConnectionRetryMs: 300 },
      alarms: { escalationSeconds: { P1: [1, 600], P2: [600], P3: [600], P4: [600] }, outbox: { pollMs: 100, redispatchAfterMs: 60_000, batchSize: 500 } },
      notifications: { retryDelayMs: 250, reconcileEveryMs: 0, rosterCheckEveryMs: 0, redispatchAfterMs: 60_000 },
    });
    const admin = (await t.userToken('admin')).token;
    const sup = await t.userToken('supervisor');
    await t.db.query(`UPDATE users SET phone = '13800000077' WHERE id = $1`, [sup.userId]);
    await t.db.query(
      `INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at) VALUES ('duty_supervisor', $1, now() - interval '1 hour', now() + interval '1 day')`,
      [sup.userId],
    );
    await t.db.query(`INSERT INTO notification_channels (kind, name, webhook_url, secret) VALUES ('sms', '短信网关', $1, $2)`, [sms.url, SECRET]);
    const seed = await seedMinimal(t, admin);
    buttons = await createButtons(t, admin, seed.schoolA.id, N, 'BURST');
  });
  let buttons: TestButton[] = [];

  afterAll(async () => {
    for (const c of held) c.release();
    await t?.close();
    await sms?.close();
  });

  const jobs = (q: QueueName, states: ('completed' | 'failed' | 'delayed' | 'waiting' | 'active')[]) =>
    t.app.get(QueueService).queue(q).getJobs(states, 0, -1) as Promise<Job[]>;

  it('takes every press while the jobs pool is exhausted, then escalates and notifies each alarm exactly once', async () => {
    const pools = (t.app.get(DataSource).driver as unknown as { master: RoutedPool }).master.pools;
    // Every jobs connection taken: a job now waits jobsPoolWaitMs and finds none.
    held = await Promise.all(Array.from({ length: 2 }, () => pools.jobs.connect()));

    const answers = await Promise.all(buttons.map((b, i) => press(t.baseUrl, b, `burst-${i}`, 60_000).then((r) => r.status)));
    expect(answers.filter((s) => s === 201)).toHaveLength(N);

    // The level-1 escalations fall due and are tried with no connection to be had: put back, not failed.
    await waitFor(
      async () => (await jobs(QueueName.Alarms, ['delayed', 'waiting', 'active'])).some((j) => j.name === 'alarms.escalate' && (j.attemptsStarted ?? 0) >= 2),
      60_000,
      'an escalation retried for want of a connection',
    );
    expect(await jobs(QueueName.Alarms, ['failed'])).toEqual([]);
    const { rows: none } = await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE escalation_level > 0`);
    expect(none[0].n).toBe(0);

    for (const c of held) c.release();
    held = [];

    await waitFor(
      async () => (await t.db.query(`SELECT count(*)::int AS n FROM notification_deliveries WHERE status = 'sent'`)).rows[0].n === N,
      90_000,
      `${N} messages sent`,
    ).catch(async (e) => {
      const st = await t.db.query(`SELECT escalation_level, count(*) FROM incidents GROUP BY 1`);
      const d = await t.db.query(`SELECT status, count(*) FROM notification_deliveries GROUP BY 1`);
      const o = await t.db.query(`SELECT job_name, done_at IS NULL AS open, count(*) FROM alarm_outbox GROUP BY 1, 2`);
      const q = await t.app.get(QueueService).queue(QueueName.Notifications).getJobCounts();
      const a = await t.app.get(QueueService).queue(QueueName.Alarms).getJobCounts();
      throw new Error(`${(e as Error).message}: ${JSON.stringify({ st: st.rows, d: d.rows, o: o.rows, q, a })}`);
    });
    const { rows: levels } = await t.db.query(`SELECT escalation_level AS l, count(*)::int AS n FROM incidents GROUP BY 1`);
    expect(levels).toEqual([{ l: 1, n: N }]);
    const { rows: statuses } = await t.db.query(`SELECT level, status, count(*)::int AS n FROM notification_deliveries GROUP BY 1, 2`);
    expect(statuses).toEqual([{ level: 1, status: 'sent', n: N }]);
    // One message per alarm and level to the supervisor: the gateway's idempotency keys (our dedup keys) are N distinct.
    const keys = sms.received.map((m) => m.key);
    expect(new Set(keys).size).toBe(N);
    expect(keys).toHaveLength(N);
    expect(sms.rejected).toEqual([]);
    expect(new Set(sms.received.map((m) => m.body.to))).toEqual(new Set(['13800000077']));
    // No attempt was spent on the wait: nothing failed, and every escalation and message job completed on its first attempt.
    expect(await jobs(QueueName.Alarms, ['failed'])).toEqual([]);
    expect(await jobs(QueueName.Notifications, ['failed'])).toEqual([]);
    const done = [...(await jobs(QueueName.Alarms, ['completed'])), ...(await jobs(QueueName.Notifications, ['completed']))].filter((j) =>
      ['alarms.escalate', 'notifications.escalation', 'notifications.deliver'].includes(j.name),
    );
    expect(done.filter((j) => j.name === 'alarms.escalate')).toHaveLength(N);
    expect(done.filter((j) => j.attemptsMade > 1).map((j) => j.id)).toEqual([]);
    const { rows: pending } = await t.db.query(
      `SELECT count(*)::int AS n FROM alarm_outbox WHERE job_name LIKE 'alarms.escalate' AND done_at IS NULL AND payload->>'level' = '1'`,
    );
    expect(pending[0].n).toBe(0);
  });
});

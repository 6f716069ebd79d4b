import Redis from 'ioredis';
import { QueueService } from '../../src/infra/queue/queue.service';
import { QueueName } from '../../src/infra/queue/queue.catalogue';
import { keySlot } from '../../src/infra/redis/redis.module';
import { createButton, press, TestButton } from '../support/devices';
import { seedMinimal, startApp, TestApp, testRedis } from '../support/harness';
import { until } from '../support/processes';

const { startRedisCluster, freeClusterPorts } = require('../../scripts/redis-cluster.js') as {
  startRedisCluster: (
    ports: number[],
    opts: { replicas: number; nodeTimeoutMs: number },
  ) => Promise<{ urls: string[]; masters: number[]; replicas: number[]; stop: () => Promise<void>; kill: (port: number) => Promise<void> }>;
  freeClusterPorts: (n: number) => Promise<number[]>;
};

/** How long a press may take to be answered, failover or not (aborted after it: counted as not answered). */
const PRESS_BOUND_MS = 3000;
/** cluster-node-timeout: a silent master is failed over after about this (plus the election). */
const NODE_TIMEOUT_MS = 1000;
/** P1 escalates this long after the press: B's timers fall due while the master is gone (the promotion takes ≥ 1.5 s). */
const ESCALATE_AFTER_S = 1;

interface PressRecord {
  device: string;
  eventId: string;
  status: number | 'aborted' | 'error';
  ms: number;
  incidentId?: string;
  at: number;
}

/**
 * Redis Cluster failover (issue 17): three masters with a replica each (redis-server processes of
 * this test on free ports, cluster-node-timeout 1 s) and the service in cluster mode on them. Devices
 * press continuously; the master holding the alarms queue (escalation timers) is SIGKILLed and its
 * replica is promoted. Throughout: every press is answered 2xx within PRESS_BOUND_MS (with the master
 * gone, intake commits to Postgres and skips Redis — the outbox), and every answered press is in
 * Postgres exactly once (one `incident_presses` row per event, one incident per device). Escalation
 * timers — those due while the master is gone and those of incidents raised meanwhile — catch up
 * through the queue after the promotion (the outage runner is held off: queue.outage.afterMs 60 s;
 * the periodic outbox re-dispatch too): each fired or is queued again, none twice. Readiness says
 * the master is down (503, a master `ok: false`), then healthy again. No unhandled rejection,
 * uncaught exception or unhandled ioredis error event in the process (the service runs in it), nor
 * an error line in its log — the test's own Redis clients never retry (harness oneShotRedis).
 */
describe('redis cluster failover (three masters, three replicas)', () => {
  jest.setTimeout(90_000);
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const unhandled: string[] = [];
  const logLines: string[] = [];
  const restore: (() => void)[] = [];
  /** The test's background loops (presses, readiness), stopped and awaited before the service closes. */
  const background: Promise<unknown>[] = [];
  let running = true;

  const onRejection = (e: unknown) => unhandled.push(`unhandledRejection: ${(e as Error)?.stack ?? String(e)}`);
  const onException = (e: unknown) => unhandled.push(`uncaughtException: ${(e as Error)?.stack ?? String(e)}`);

  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    // The service's log (JSON lines on stdout) and whatever writes to stderr or console.error (ioredis's
    // "[ioredis] Unhandled error event"), kept to be searched, still written.
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream);
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        logLines.push(String(chunk));
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof stream.write;
      restore.push(() => (stream.write = write));
    }
    const consoleError = console.error;
    console.error = (...a: unknown[]) => {
      logLines.push(a.map(String).join(' '));
      consoleError(...a);
    };
    restore.push(() => (console.error = consoleError));

    const started = Date.now();
    cluster = await startRedisCluster(await freeClusterPorts(6), { replicas: 1, nodeTimeoutMs: NODE_TIMEOUT_MS });
    process.stdout.write(`[failover] cluster of 3 masters + 3 replicas up in ${Date.now() - started} ms\n`);
    t = await startApp({
      redis: testRedis('shouhu-failover-test', cluster.urls),
      alarms: {
        escalationSeconds: { P1: [ESCALATE_AFTER_S, 600], P2: [600], P3: [600], P4: [600] },
        // Far out: what catches up after the failover must not be the periodic re-dispatch.
        outbox: { pollMs: 100, redispatchAfterMs: 600_000, batchSize: 200 },
      },
      // Far out: escalations must catch up through the queue after the promotion, not be run from Postgres.
      // The stall watchdog replaces a worker that fetches nothing after the failover (about one run in seven).
      queue: { outage: { afterMs: 60_000, pollMs: 200, leaseMs: 5000, batchSize: 100 }, workerStallMs: 3000 },
      ops: { readyCheckTimeoutMs: 1000 },
      // Six Redis processes and the service on 2 cores: a connection took over the production 1 s to open in a loaded CI run.
      database: { connectTimeoutMs: 5000 },
      log: { level: process.env.FAILOVER_LOG ?? 'warn' },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });

  afterAll(async () => {
    running = false;
    await Promise.all(background);
    try {
      await t?.close();
    } finally {
      await cluster?.stop();
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
      for (const r of restore.reverse()) r();
    }
  });

  it('keeps taking alarms through a master’s failover: none lost or twice, escalations catch up, readiness down then up, no unhandled error', async () => {
    const began = Date.now();
    // The master of the alarms queue's slot (escalation timers are delayed jobs there).
    const alarmsSlot = keySlot(t.app.get(QueueService).prefixOf(QueueName.Alarms));
    const victim = await ownerOf(cluster.masters[0], alarmsSlot);
    expect(cluster.masters).toContain(victim);
    const replica = await replicaOf(cluster, victim);

    // Three groups of devices: A pressing from the start (escalated before the kill), B from just
    // before it (their timers fall due while the master is gone), C from just after it (raised while it is gone).
    const buttons: Record<'A' | 'B' | 'C', TestButton[]> = { A: [], B: [], C: [] };
    for (const g of ['A', 'B', 'C'] as const)
      for (let i = 0; i < 3; i++) buttons[g].push(await createButton(t, admin, { schoolId: seed.schoolA.id, code: `FO-${g}${i}`, location: `${g}${i} 号岗` }));

    const presses: PressRecord[] = [];
    let pressing = true;
    const loop = async (b: TestButton) => {
      for (let n = 0; pressing && running; n++) {
        const eventId = `${b.code}-${n}`;
        const t0 = Date.now();
        const rec: PressRecord = { device: b.id, eventId, status: 'error', ms: 0, at: t0 };
        try {
          const res = await press(t.baseUrl, b, eventId, PRESS_BOUND_MS);
          rec.status = res.status;
          if (res.ok) rec.incidentId = ((await res.json()) as { id: string }).id;
          else await res.text();
        } catch (e) {
          rec.status = (e as Error).name === 'TimeoutError' ? 'aborted' : 'error';
        }
        rec.ms = Date.now() - t0;
        presses.push(rec);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const readiness: { at: number; status: number; redis?: { ok: boolean; nodes?: { node: number; ok: boolean }[] } }[] = [];
    let probing = true;
    const readyLoop = (async () => {
      while (probing && running) {
        try {
          const res = await fetch(`${t.baseUrl}/health/ready`, { signal: AbortSignal.timeout(5000) });
          const body = (await res.json()) as { checks: { redis: { ok: boolean; nodes?: { node: number; ok: boolean }[] } } };
          readiness.push({ at: Date.now(), status: res.status, redis: body.checks.redis });
        } catch {
          readiness.push({ at: Date.now(), status: 0 });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    background.push(readyLoop);
    await until(() => readiness.some((r) => r.status === 200), 20_000, 'ready before the failover');

    const loops = buttons.A.map(loop);
    background.push(...loops);
    await until(() => presses.filter((p) => p.incidentId).length >= 6, 20_000, 'the first presses of A');
    // A's escalations fire before the kill: the queue works on the cluster.
    await until(async () => (await levels(t, buttons.A)).every((l) => l === 1), 20_000, 'A escalated before the failover');
    loops.push(...buttons.B.map(loop));
    background.push(...loops.slice(3));
    await until(() => new Set(presses.filter((p) => p.incidentId).map((p) => p.device)).size === 6, 20_000, 'the first presses of B');

    const killedAt = Date.now();
    await cluster.kill(victim);
    loops.push(...buttons.C.map(loop));
    background.push(...loops.slice(6));
    const down = await until(
      () => readiness.find((r) => r.at > killedAt && r.status === 503 && r.redis?.ok === false && r.redis.nodes?.some((n) => !n.ok)),
      20_000,
      'readiness naming a master down',
    );
    await until(async () => /role:master/.test(await nodeCommand(replica, ['INFO', 'replication'])), 30_000, `the replica ${replica} promoted`);
    const promotedAt = Date.now();
    const up = await until(() => readiness.find((r) => r.at > down.at && r.status === 200 && r.redis?.ok), 30_000, 'readiness healthy again');
    // Presses go on a moment after readiness is back, then stop.
    const upAt = Date.now();
    await until(() => presses.filter((p) => p.at > upAt && p.incidentId).length >= 9, 20_000, 'presses after the failover');
    pressing = false;
    await Promise.all(loops);

    // Every caller answered within the bound, 2xx.
    const failed = presses.filter((p) => typeof p.status !== 'number' || p.status < 200 || p.status >= 300);
    expect(failed).toEqual([]);
    // Intake answered while the master was gone: presses answered between the kill and readiness back,
    // and each C device's first press sent before the replica was promoted (its incident raised during the failover).
    const during = presses.filter((p) => p.at >= killedAt && p.at + p.ms <= up.at);
    expect(during.length).toBeGreaterThan(0);
    for (const b of buttons.C) expect(presses.find((p) => p.eventId === `${b.code}-0`)!.at).toBeLessThan(promotedAt);
    // One incident per device (each device's presses fold into its open one), each answered press stored once.
    const all = [...buttons.A, ...buttons.B, ...buttons.C];
    for (const b of all) {
      const mine = presses.filter((p) => p.device === b.id);
      expect(new Set(mine.map((p) => p.incidentId)).size).toBe(1);
      const { rows } = await t.db.query(`SELECT count(*)::int AS n, count(DISTINCT device_event_id)::int AS d FROM incident_presses WHERE device_id = $1`, [
        b.id,
      ]);
      expect(rows[0]).toEqual({ n: mine.length, d: mine.length });
    }
    const { rows: incidents } = await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE alarm_device_id = ANY($1::uuid[])`, [all.map((b) => b.id)]);
    expect(incidents[0].n).toBe(all.length);
    // Every escalation timer caught up through the queue, once: B's were due during the failover, C's
    // incidents were raised during it. About one run in seven a BullMQ worker stays connected and fetches
    // nothing after the failover; the stall watchdog (queue.workerStallMs) replaces it — stallReport says
    // where it waited if even that did not help.
    await until(async () => (await levels(t, all)).every((l) => l === 1), 40_000, 'every escalation fired after the promotion').catch(async (e) => {
      process.stdout.write(await stallReport(t));
      throw e;
    });
    const { rows: escalated } = await t.db.query(
      `SELECT i.alarm_device_id AS device, count(tl.id)::int AS n
         FROM incidents i LEFT JOIN incident_timeline tl ON tl.incident_id = i.id AND tl.action = 'escalated'
        WHERE i.alarm_device_id = ANY($1::uuid[]) GROUP BY i.alarm_device_id`,
      [all.map((b) => b.id)],
    );
    expect(escalated.filter((r) => r.n > 1)).toEqual([]);
    expect(escalated.filter((r) => buttons.A.some((b) => b.id === r.device)).map((r) => r.n)).toEqual([1, 1, 1]);
    // Among B's timers, at least one fell due between the kill and the promotion.
    const { rows: dueB } = await t.db.query(
      `SELECT extract(epoch FROM first_press_at) * 1000 + $2::int * 1000 AS due FROM incidents WHERE alarm_device_id = ANY($1::uuid[])`,
      [buttons.B.map((b) => b.id), ESCALATE_AFTER_S],
    );
    expect(dueB.some((r) => Number(r.due) > killedAt && Number(r.due) < promotedAt)).toBe(true);

    // No unhandled error anywhere in the process, nor in the log.
    const bad = logLines.filter((l) => /Unhandled|MaxRetriesPerRequestError|max retries per request|"level":"error"|\[ioredis\]/i.test(l));
    expect(unhandled).toEqual([]);
    expect(bad).toEqual([]);

    const ms = presses.map((p) => p.ms).sort((a, b) => a - b);
    process.stdout.write(
      `[failover] ${presses.length} presses, slowest ${ms[ms.length - 1]} ms, median ${ms[Math.floor(ms.length / 2)]} ms; ` +
        `readiness 503 ${down.at - killedAt} ms after the kill, replica promoted after ${promotedAt - killedAt} ms, ready again after ${up.at - killedAt} ms; ` +
        `test ${Date.now() - began} ms\n`,
    );
    probing = false;
    await readyLoop;
  });
});

/** The escalation level of each button's open incident (0 when it has none yet). */
async function levels(t: TestApp, buttons: TestButton[]): Promise<number[]> {
  const { rows } = await t.db.query(`SELECT alarm_device_id AS d, escalation_level AS l FROM incidents WHERE alarm_device_id = ANY($1::uuid[])`, [
    buttons.map((b) => b.id),
  ]);
  return buttons.map((b) => rows.find((r) => r.d === b.id)?.l ?? 0);
}

/** One command on one node, on a connection that never retries (a node that is gone fails it at once). */
async function nodeCommand(port: number, args: string[]): Promise<string> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return String(await r.call(args[0], ...args.slice(1)));
  } catch {
    return '';
  } finally {
    r.disconnect();
  }
}

/** The master port serving a slot. */
async function ownerOf(port: number, slot: number): Promise<number> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const ranges = await r.cluster('SLOTS');
    const hit = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    return Number(hit[2][1]);
  } finally {
    r.disconnect();
  }
}

/** The replica (port) of a master. */
async function replicaOf(cluster: { replicas: number[] }, master: number): Promise<number> {
  for (const port of cluster.replicas) if (new RegExp(`master_port:${master}\\b`).test(await nodeCommand(port, ['INFO', 'replication']))) return port;
  throw new Error(`no replica of ${master}`);
}

/** Internals of ioredis and BullMQ read only for the report of a stalled queue (not part of their APIs). */
interface ClusterView {
  status?: string;
  slots?: string[][];
  connectionPool?: { nodes?: { all?: Record<string, { status: string }> } };
}
interface WorkerView {
  name: string;
  running: boolean;
  waiting?: unknown;
  closing?: unknown;
  backend?: { blockingConnection?: { status?: string; client?: Promise<unknown>; _client?: ClusterView } };
}

/**
 * What the alarms queue holds and where each worker waits, when escalations did not fire: a BullMQ
 * worker was seen waiting for good after a failover with due jobs in its queue (alarms: `waiting` 3,
 * overdue `delayed`, no `active`; its blocking connection ready) — see the report of issue 17.
 */
async function stallReport(t: TestApp): Promise<string> {
  const q = t.app.get(QueueService).queue(QueueName.Alarms);
  const counts = await q.getJobCounts().catch((x: Error) => x.message);
  const delayed = await q
    .getDelayed()
    .then((js) => js.map((j) => `${j.id}@${j.timestamp + (j.opts.delay ?? 0)}`))
    .catch((x: Error) => x.message);
  const { rows } = await t.db.query(`SELECT job_id, available_at, dispatched_at FROM alarm_outbox WHERE done_at IS NULL ORDER BY id`);
  const qs = t.app.get(QueueService) as unknown as { workers: WorkerView[]; workerConnections: ClusterView[] };
  const cs = (c: ClusterView | undefined) =>
    `${c?.status}[${Object.entries(c?.connectionPool?.nodes?.all ?? {})
      .map(([k, n]) => `${k}:${n.status}`)
      .join(',')}]`;
  let out = '';
  for (const [i, w] of qs.workers.entries()) {
    const conn = w.backend?.blockingConnection;
    const settled = await Promise.race([conn?.client?.then(() => 'ok'), new Promise((r) => setTimeout(() => r('pending'), 200))]).catch(
      (x: Error) => `rejected ${x.message}`,
    );
    const raw = conn?._client as Record<string | symbol, unknown> | undefined;
    const marks = raw
      ? Object.getOwnPropertySymbols(raw).map((k) => `${String(k)}=${typeof raw[k] === 'object' ? (raw[k] ? 'set' : 'null') : String(raw[k])}`)
      : [];
    out += `[failover] STALL worker ${w.name} running=${w.running} waiting=${!!w.waiting} closing=${!!w.closing} blocking=${conn?.status}/${settled}/${cs(conn?._client)} marks=${marks.join(',')} connection=${cs(qs.workerConnections[i])}\n`;
  }
  return `${out}[failover] STALL now=${Date.now()} alarms queue ${JSON.stringify(counts)} delayed ${JSON.stringify(delayed)} outbox not done ${JSON.stringify(rows)}\n`;
}

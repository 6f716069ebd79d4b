import { DataSource } from 'typeorm';
import type { RoutedPool } from '../../src/infra/database/pools';
import { createButtons, press as pressOnce, TestButton } from '../support/devices';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { startTcpProxy, TcpProxy } from '../support/tcp-proxy';

/**
 * Issue 11 §1/§1b: Postgres faults under alarm intake. The service reaches Postgres through a TCP
 * proxy the test controls (the shared Postgres itself keeps running).
 * - The connection of a press dies mid-transaction: 503 UNAVAILABLE.DATABASE with Retry-After (not
 *   a 500); the device's retry with the same event id, once Postgres answers again, makes exactly one incident.
 * - Postgres refusing or unreachable (a host that drops packets: the proxy accepts and never
 *   answers): a press is answered 503 UNAVAILABLE.DATABASE within 2 s (the request is aborted — and
 *   the test fails — if it is not), never a hang: opening a connection has its own bound
 *   (database.connectTimeoutMs), apart from the wait for a free connection of a busy pool.
 * - Postgres that stops answering on open connections (a stalled server, a partition: attack A18): a
 *   press is answered 503 UNAVAILABLE.DATABASE once its statement has gone unanswered for
 *   database.queryTimeoutMs, not after the whole stall; the stalled connection is discarded, never
 *   lent again; the retry with the same event id once Postgres answers makes one incident.
 * - A busy pool is not an outage: with the request pool's one connection held longer than the
 *   connect bound, a request waits its own bound (database.poolWaitMs) and is answered 2xx.
 */
/** A TCP proxy in front of the test Postgres (a fault the shared server cannot be given). */
const postgresProxy = () => {
  const target = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  return startTcpProxy(target.hostname, Number(target.port || 5432));
};
/** The service's database address through the proxy. */
const through = (proxy: TcpProxy) => (url: string) => {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
};

describe('intake with Postgres faults (slow)', () => {
  jest.setTimeout(90_000);
  let t: TestApp;
  let proxy: TcpProxy;
  let button: TestButton;
  let admin: string;

  beforeAll(async () => {
    proxy = await postgresProxy();
    t = await startApp(
      // One request connection: the busy-pool case below holds it; the jobs pool is apart and never lends it.
      { database: { poolSize: 1 } },
      { appDbUrl: through(proxy) },
    );
    admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    [button] = await createButtons(t, admin, seed.schoolA.id, 1, 'PG');
  });

  afterAll(async () => {
    await proxy?.up();
    await t?.close();
    await proxy?.close();
  });

  const press = (eventId: string, timeoutMs: number) => pressOnce(t.baseUrl, button, eventId, timeoutMs);
  /**
   * The device retry contract: the same event after Retry-After, until a 2xx. Right after Postgres is back a
   * press may still be refused: an attempt begun during the outage may still be failing, and the next
   * attempt to connect is made at most once per database.connectTimeoutMs.
   */
  const retryUntilTaken = async (eventId: string) => {
    let res = await press(eventId, 5000);
    for (let i = 0; i < 5 && res.status === 503; i++) {
      await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after')) * 1000));
      res = await press(eventId, 5000);
    }
    return res;
  };

  it('answers a press whose connection dies mid-transaction with a retryable 503, and the retry makes one incident', async () => {
    // Hold the device's lock on the test's direct connection: the press waits inside its transaction.
    await t.db.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [button.id]);
    const pending = press('mid-tx-1', 10_000);
    const deadline = Date.now() + 10_000;
    // Wait until the press's transaction is waiting on the lock, then cut its connection.
    for (;;) {
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
      if (rows[0].n > 0) break;
      if (Date.now() > deadline) throw new Error('the press never reached its transaction');
      await new Promise((r) => setTimeout(r, 20));
    }
    proxy.cut();
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('UNAVAILABLE.DATABASE');
    expect(body.error.message).not.toMatch(/terminated|ECONN/); // our words, not the driver's
    await t.db.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [button.id]);
    // The device retries the same event: one incident.
    let retry = await press('mid-tx-1', 5000);
    if (retry.status === 503) retry = await press('mid-tx-1', 5000); // the pool may hand out one more dead connection
    expect(retry.status).toBe(201);
    const again = await press('mid-tx-1', 5000);
    expect(again.status).toBe(200);
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incident_presses WHERE device_id = $1 AND device_event_id = 'mid-tx-1'`, [button.id]);
    expect(rows[0].n).toBe(1);
  });

  it('answers 503 UNAVAILABLE.DATABASE within 2 s while Postgres is unreachable, and takes the retry once it is back', async () => {
    await proxy.down();
    for (const eventId of ['pg-down-1', 'pg-down-2']) {
      const res = await press(eventId, 2000);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE.DATABASE');
    }
    await proxy.up();
    expect([200, 201]).toContain((await retryUntilTaken('pg-down-1')).status);
  });

  it('answers 503 UNAVAILABLE.DATABASE within 2 s while Postgres does not answer at all, and takes the retry once it does', async () => {
    await proxy.blackhole();
    try {
      for (const eventId of ['pg-hole-1', 'pg-hole-2', 'pg-hole-3']) {
        const res = await press(eventId, 2000);
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE.DATABASE');
      }
    } finally {
      await proxy.up();
    }
    expect([200, 201]).toContain((await retryUntilTaken('pg-hole-1')).status);
  });

  it('answers 503 UNAVAILABLE.DATABASE after database.queryTimeoutMs when Postgres stops answering on open connections, and never reuses that connection', async () => {
    const pools = (t.app.get(DataSource).driver as unknown as { master: RoutedPool }).master.pools;
    // The request pool's one connection, idle and known by its backend pid: the press below gets it.
    const c = await pools.request.connect();
    const { pid } = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0] as { pid: number };
    c.release();
    const bound = t.config.database.queryTimeoutMs;
    proxy.freeze();
    try {
      // Aborted (the test fails) if the press waits for the stall instead of its bound.
      const res = await press('pg-freeze-1', bound + 5000);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE.DATABASE');
      // A new connection is not answered either: bounded by the connect bound.
      expect((await press('pg-freeze-2', bound + 5000)).status).toBe(503);
    } finally {
      await proxy.up();
    }
    // The stalled connection was destroyed (its backend is gone), not handed back to the pool.
    const deadline = Date.now() + 10_000;
    while ((await t.db.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].n > 0) {
      if (Date.now() > deadline) throw new Error('the stalled connection is still open');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect([200, 201]).toContain((await retryUntilTaken('pg-freeze-1')).status); // 200: folded into the button's open incident
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incident_presses WHERE device_id = $1 AND device_event_id = 'pg-freeze-1'`, [button.id]);
    expect(rows[0].n).toBe(1);
  });

  it('lets a request wait for a busy pool past the connect bound instead of answering 503', async () => {
    // The press holds the one request connection inside its transaction (waiting on the device lock).
    await t.db.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [button.id]);
    const held = press('busy-1', 20_000);
    for (;;) {
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
      if (rows[0].n > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const waiting = fetch(`${t.baseUrl}/api/v1/incidents?limit=1`, { headers: auth(admin), signal: AbortSignal.timeout(20_000) });
    // Longer than opening a connection may take: a pool wait bounded by that would have answered 503 by now.
    await new Promise((r) => setTimeout(r, t.config.database.connectTimeoutMs + 500));
    await t.db.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [button.id]);
    expect([200, 201]).toContain((await held).status); // 200: folded into the button's open incident
    expect((await waiting).status).toBe(200);
  });
});

/**
 * A Postgres slow to accept new connections (loaded, or at max_connections) while it answers on the
 * open ones is not unreachable (attack pass 4: a registration storm on a loaded machine turned every
 * caller away — 254 REGISTERs answered 503 — after one connect took longer than
 * database.connectTimeoutMs). The caller whose attempt failed answers 503; the pool does not turn
 * 'unreachable', and the callers queued behind are served by the open connection.
 */
describe('a Postgres slow to accept connections (slow)', () => {
  jest.setTimeout(60_000);
  let t: TestApp;
  let proxy: TcpProxy;
  let admin: string;

  beforeAll(async () => {
    proxy = await postgresProxy();
    t = await startApp({ database: { poolSize: 3, connectTimeoutMs: 500 } }, { appDbUrl: through(proxy) });
    admin = (await t.userToken('admin')).token;
    await seedMinimal(t, admin);
  });

  afterAll(async () => {
    proxy?.slowNew(0);
    await proxy?.up();
    await t?.close();
    await proxy?.close();
  });

  it('serves the callers queued behind a slow connect from the open connections instead of answering all 503', async () => {
    const get = () => fetch(`${t.baseUrl}/api/v1/zones?limit=5`, { headers: auth(admin), signal: AbortSignal.timeout(20_000) }).then((r) => r.status);
    // One open request connection: every other one cut (the pool drops them), then one request opens it.
    proxy.cut();
    for (let i = 0; i < 20 && (await get()) !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    proxy.slowNew(1500); // a new connection takes 1.5 s to be accepted; database.connectTimeoutMs is 0.5 s
    const started = Date.now();
    const statuses = await Promise.all(Array.from({ length: 150 }, get));
    const elapsedMs = Date.now() - started;
    const refused = statuses.filter((s) => s === 503).length;
    // Only callers whose own connection attempt timed out answer 503; the rest waited for the open one. On the old code
    // the first timed-out attempt turned the pool 'unreachable': 97 of 150 answered 503. How many attempts time out
    // depends on how long the open connection takes to serve the queue (2 of 150 on a quiet machine, 8 on a loaded CI
    // run, ci4 of 2026-12-01): at most one per free pool slot (poolSize - 1 = 2) per connectTimeoutMs (0.5 s) meanwhile.
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(refused).toBeLessThanOrEqual(2 * (Math.ceil(elapsedMs / 500) + 1));
    expect(refused).toBeLessThan(statuses.length / 5);
    proxy.slowNew(0);
    expect(await get()).toBe(200);
  });
});

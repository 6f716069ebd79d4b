import { AsyncLocalStorage } from 'node:async_hooks';
import * as pg from 'pg';
import type { DatabaseConfig } from '../../config/sections';
import { DbQueryTimeoutError, GuardedClient } from './guarded-client';

export { DbQueryTimeoutError };

/**
 * Two Postgres pools behind the one TypeORM DataSource, chosen per call by where the call comes from:
 *
 * - **request** (`database.poolSize`, wait `database.poolWaitMs`): HTTP requests, SIP (GB/T 28181)
 *   alarms, sockets — everything not marked as background work. Alarm intake lives here, so a burst
 *   of jobs can never take the connections a press needs.
 * - **jobs** (`database.jobsPoolSize`, wait `database.jobsPoolWaitMs`): BullMQ handlers and the
 *   background loops (outbox relay, reconcile passes), marked with `inJobsPool` (QueueService does it
 *   for every handler). A burst of presses queues jobs; they wait here, not in front of intake.
 *
 * Bounds, kept apart (issue 11 §1/§6):
 * - `database.connectTimeoutMs` bounds opening a new connection (TCP + startup + auth). A Postgres
 *   that refuses answers at once; one that does not answer (packets dropped) fails after this.
 * - `database.poolWaitMs` / `jobsPoolWaitMs` bound the wait for a free connection of a full pool,
 *   which a burst legitimately has.
 * - `database.queryTimeoutMs` / `jobsQueryTimeoutMs` bound every statement on an open connection (a
 *   Postgres that stalls, a partition: attack A18): the connection is destroyed, never lent again
 *   (guarded-client.ts), and the request answers 503 UNAVAILABLE.DATABASE; Postgres gets the same
 *   bound as statement_timeout.
 * - While Postgres is unreachable from a pool (its last attempt to open a connection failed and none
 *   succeeded since; per pool, so a jobs connection slow to open never fails intake), one caller at a
 *   time probes with a new connection, at most once per connectTimeoutMs, and every other caller fails
 *   at once; a failed attempt fails the callers queued behind it too. A press answers 503
 *   UNAVAILABLE.DATABASE within about one connectTimeoutMs, never queued behind attempts that fail too.
 *   An attempt that fails while Postgres answered a statement on one of the pool's open connections
 *   (after the attempt began) is no sign of that: Postgres is slow to accept (loaded, max_connections),
 *   so only its own caller fails and the others wait for a connection as usual.
 *
 * Failure direction: every failure to obtain a connection is a `DbConnectionUnavailableError`
 * (nothing was run): a request answers 503 UNAVAILABLE.DATABASE with Retry-After (the device
 * retries the same event id), a job is put back as delayed without spending an attempt
 * (QueueService, queue.noConnectionRetryMs) — never lost, never failed for it.
 */
export type PoolName = 'request' | 'jobs';

const scope = new AsyncLocalStorage<PoolName>();

/** Runs `fn` (and everything it starts) on the jobs pool. */
export function inJobsPool<T>(fn: () => T): T {
  return scope.run('jobs', fn);
}

/** The pool a database call made here would use. */
export function currentPool(): PoolName {
  return scope.getStore() ?? 'request';
}

/** No connection could be obtained (pool wait exceeded, Postgres refused or unreachable): nothing was run. */
export class DbConnectionUnavailableError extends Error {
  readonly code = 'DB_CONNECTION_UNAVAILABLE';
  constructor(
    readonly pool: PoolName,
    readonly reason: 'pool_wait' | 'connect' | 'unreachable',
    cause?: unknown,
  ) {
    super(
      reason === 'pool_wait'
        ? `no free ${pool} database connection within the pool wait`
        : reason === 'unreachable'
          ? `database unreachable (the last attempt to connect failed; the next one is under way or due shortly)`
          : `could not connect to the database (${pool} pool): ${(cause as Error | undefined)?.message ?? 'unknown'}`,
      { cause },
    );
    this.name = 'DbConnectionUnavailableError';
  }
}

export interface PoolCounts {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

interface Waiter {
  settled: boolean;
  fail: (e: Error) => void;
}

/** The database settings the pools use; queryTimeoutMs / jobsQueryTimeoutMs 0 = unbounded (migrations only). */
export type PoolSettings = Pick<
  DatabaseConfig,
  'poolSize' | 'jobsPoolSize' | 'poolWaitMs' | 'jobsPoolWaitMs' | 'connectTimeoutMs' | 'queryTimeoutMs' | 'jobsQueryTimeoutMs'
>;

type ConnectCallback = (err: Error | undefined, client?: pg.PoolClient, release?: (e?: unknown) => void) => void;

/** What pg-pool says when a full pool had no client free within its wait (its connectionTimeoutMillis). */
const POOL_WAIT_MESSAGE = 'timeout exceeded when trying to connect';

/**
 * The pool object TypeORM is given (as `driver.Pool`): it holds the request and jobs pools and
 * routes `connect` by `currentPool()`. TypeORM's Postgres driver uses only `connect`, `end` and `on`.
 */
export class RoutedPool {
  readonly pools: Record<PoolName, pg.Pool>;
  /** Per pool: the last attempt to open one of its connections failed and none succeeded since. */
  private readonly unreachable: Record<PoolName, boolean> = { request: false, jobs: false };
  private readonly probing: Record<PoolName, boolean> = { request: false, jobs: false };
  private readonly failedAt: Record<PoolName, number> = { request: 0, jobs: 0 };
  /** Per pool: when Postgres last answered a statement on one of its open connections. */
  private readonly answeredAt: Record<PoolName, number> = { request: 0, jobs: 0 };
  private readonly connectTimeoutMs: number;
  private readonly waiters: Record<PoolName, Set<Waiter>> = { request: new Set(), jobs: new Set() };

  constructor(options: pg.PoolConfig, db: PoolSettings) {
    const connectTimeoutMs = db.connectTimeoutMs;
    this.connectTimeoutMs = connectTimeoutMs;
    // The pool's connectionTimeoutMillis is the wait for a free client; each client's own one bounds opening it.
    // GuardedClient: every connection keeps an 'error' listener and, with a bound, discards itself when a statement goes unanswered.
    const answered = this.answeredAt;
    const client = (name: PoolName, queryTimeoutMs: number) =>
      class BoundedClient extends GuardedClient {
        constructor(config?: pg.ClientConfig) {
          super(
            { ...config, connectionTimeoutMillis: connectTimeoutMs, ...(queryTimeoutMs > 0 ? { statement_timeout: queryTimeoutMs } : {}) },
            queryTimeoutMs,
            () => (answered[name] = Date.now()),
          );
        }
      };
    const make = (name: PoolName, max: number, waitMs: number, queryTimeoutMs: number) =>
      new pg.Pool({ ...options, max, connectionTimeoutMillis: waitMs, Client: client(name, queryTimeoutMs) });
    this.pools = {
      request: make('request', db.poolSize, db.poolWaitMs, db.queryTimeoutMs),
      jobs: make('jobs', db.jobsPoolSize, db.jobsPoolWaitMs, db.jobsQueryTimeoutMs),
    };
  }

  on(event: 'error', listener: (e: Error) => void): this {
    for (const p of Object.values(this.pools)) p.on(event, listener);
    return this;
  }

  connect(cb?: ConnectCallback): Promise<pg.PoolClient> | void {
    const name = currentPool();
    const pool = this.pools[name];
    const run = new Promise<{ client: pg.PoolClient; release: (e?: unknown) => void }>((resolve, reject) => {
      const probe = this.unreachable[name] && pool.idleCount === 0;
      // One probe at a time, and none sooner than connectTimeoutMs after the last failure: a request making
      // several database calls never waits for more than one attempt.
      if (probe && (this.probing[name] || Date.now() - this.failedAt[name] < this.connectTimeoutMs))
        return reject(new DbConnectionUnavailableError(name, 'unreachable'));
      if (probe) this.probing[name] = true;
      const waiter: Waiter = { settled: false, fail: (e) => ((waiter.settled = true), reject(e)) };
      this.waiters[name].add(waiter);
      const attemptAt = Date.now();
      pool.connect((err, client, release) => {
        this.waiters[name].delete(waiter);
        if (probe) this.probing[name] = false;
        if (waiter.settled) {
          // Failed already (Postgres found unreachable meanwhile): a client that turns up goes straight back.
          if (client) release(err);
          return;
        }
        waiter.settled = true;
        if (err || !client) {
          const waited = err?.message === POOL_WAIT_MESSAGE;
          // Postgres answered on an open connection while this one failed to open: it is reachable, only slow to
          // accept (a loaded server, max_connections): this caller fails, the pool does not turn 'unreachable' and
          // the callers queued behind wait for a connection as usual (attack pass 4: a registration storm on a
          // loaded machine turned every caller away for a slow connect).
          if (!waited && this.answeredAt[name] < attemptAt) {
            this.unreachable[name] = true;
            this.failedAt[name] = Date.now();
            // Callers queued behind this attempt would each try again and wait as long: they fail now.
            for (const w of this.waiters[name]) w.fail(new DbConnectionUnavailableError(name, 'unreachable', err));
            this.waiters[name].clear();
          }
          return reject(new DbConnectionUnavailableError(name, waited ? 'pool_wait' : 'connect', err));
        }
        this.unreachable[name] = false;
        resolve({ client, release: release as (e?: unknown) => void });
      });
    });
    if (!cb) return run.then((r) => r.client);
    run.then(
      (r) => cb(undefined, r.client, r.release),
      (e: Error) => cb(e),
    );
  }

  end(cb?: (err?: Error) => void): Promise<void> | void {
    const done = Promise.all(Object.values(this.pools).map((p) => p.end())).then(() => undefined);
    if (!cb) return done;
    done.then(
      () => cb(),
      (e: Error) => cb(e),
    );
  }

  /** Connections per pool (metrics, readiness detail). */
  counts(): Record<PoolName, PoolCounts> {
    const c = (p: pg.Pool): PoolCounts => ({ total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount, max: p.options.max });
    return { request: c(this.pools.request), jobs: c(this.pools.jobs) };
  }
}

/** The `driver` TypeORM loads instead of `pg`: pg itself, with its Pool replaced by a RoutedPool of these settings. */
export function routedDriver(db: PoolSettings): typeof pg {
  const driver = Object.create(pg) as typeof pg & { Pool: unknown };
  Object.defineProperty(driver, 'Pool', {
    value: class extends RoutedPool {
      constructor(options: pg.PoolConfig) {
        super(options, db);
      }
    },
  });
  return driver;
}

import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';

const log = new Logger('Database');

/**
 * A statement not answered within its pool's bound (database.queryTimeoutMs / jobsQueryTimeoutMs):
 * Postgres stalled or the network between is partitioned. Its connection was destroyed, so nothing of
 * the transaction commits; a request answers 503 UNAVAILABLE.DATABASE (infra/http/unavailable.ts).
 */
export class DbQueryTimeoutError extends Error {
  readonly code = 'DB_QUERY_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`database statement not answered within ${timeoutMs} ms; its connection was discarded`);
    this.name = 'DbQueryTimeoutError';
  }
}

type Callback = (...r: unknown[]) => void;

/**
 * The pool's connection class (pg-pool's `Client` option): a pg Client that always has an
 * 'error' listener. A pooled client has one only while idle (pg-pool's) or while TypeORM holds it
 * (the query runner's, removed at release); a connection killed mid-transaction
 * (pg_terminate_backend, a Postgres restart, a cut network) can emit its second error — the FATAL
 * message, then the closed socket — after TypeORM has released it, and an 'error' event nobody
 * listens to throws: the whole process exited (found with backends terminated under a burst of
 * presses, test/integration/postgres-terminate.spec.ts). The query that was running already got
 * its error (503 UNAVAILABLE.DATABASE to the caller); this only says so in the log.
 *
 * With `queryTimeoutMs` (> 0), every query must be answered within it, or the connection's socket is
 * destroyed: the query (and any queued behind it) fails with DbQueryTimeoutError and pg marks the
 * client unqueryable, so pg-pool drops it at release instead of lending it again. pg's own
 * `query_timeout` is not used: it fails the query but keeps the connection, whose late answer
 * would then be read as the next query's.
 */
export class GuardedClient extends Client {
  private abandoned = false;

  constructor(
    config?: string | ClientConfig,
    private readonly queryTimeoutMs = 0,
    /** Called when Postgres answered a statement on this connection (rows, or an error of its own: a SQLSTATE). */
    private readonly onAnswer?: () => void,
  ) {
    super(config);
    this.on('error', (e: Error) => log.warn(`a database connection failed: ${e.message}`));
  }

  // pg's overloads (promise, callback, submittable) all pass through; only their completion is watched.
  override query(...args: unknown[]): never {
    const call = (super.query as (...a: unknown[]) => unknown).bind(this);
    const ms = this.queryTimeoutMs;
    if (!ms || this.abandoned) return call(...args) as never;
    const timer = setTimeout(() => this.abandon(ms), ms);
    const done = (err?: unknown) => {
      clearTimeout(timer);
      const code = (err as { code?: unknown } | undefined)?.code;
      if (!this.abandoned && (!err || (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)))) this.onAnswer?.();
    };
    const last = args.length - 1;
    const first = args[0] as { submit?: unknown; callback?: Callback; once?: (ev: string, f: (e?: unknown) => void) => void } | undefined;
    if (typeof args[last] === 'function') {
      const cb = args[last] as Callback;
      args[last] = (...r: unknown[]) => (done(r[0]), cb(...r));
    } else if (first && typeof first.submit === 'function') {
      if (typeof first.callback === 'function') {
        const cb = first.callback;
        first.callback = (...r: unknown[]) => (done(r[0]), cb(...r));
      } else if (typeof first.once === 'function') {
        first.once('end', () => done());
        first.once('error', (e: unknown) => done(e));
      }
    }
    let result: unknown;
    try {
      result = call(...args);
    } catch (e) {
      done(e);
      throw e;
    }
    if (result && typeof (result as Promise<unknown>).then === 'function')
      (result as Promise<unknown>).then(
        () => done(),
        (e: unknown) => done(e),
      );
    return result as never;
  }

  private abandon(ms: number): void {
    if (this.abandoned) return;
    this.abandoned = true;
    log.warn(`a database statement was not answered within ${ms} ms: its connection is discarded`);
    const stream = (this as unknown as { connection?: { stream?: { destroy: (e?: Error) => void } } }).connection?.stream;
    stream?.destroy(new DbQueryTimeoutError(ms));
  }
}

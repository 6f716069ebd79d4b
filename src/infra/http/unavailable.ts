import { HttpStatus } from '@nestjs/common';
import { DatabaseError } from 'pg';
import { QueryFailedError } from 'typeorm';
import { DbConnectionUnavailableError, DbQueryTimeoutError } from '../database/pools';
import { DomainError, ErrorCode } from './errors';

/**
 * SQLSTATEs meaning "the database could not do it now, try again": class 08 (connection
 * exception), 57P01–57P03 (shutdown, crash, cannot connect now), 53300 (too many connections),
 * 40001/40P01 (serialization failure, deadlock: the transaction was rolled back), 57014 (cancelled by
 * statement_timeout = database.queryTimeoutMs: Postgres too busy or a lock held too long; nothing we
 * cancel otherwise).
 */
const RETRYABLE_SQLSTATE = /^(08...|57P0[123]|57014|53300|40001|40P01)$/;

/** What node-postgres and the pool say when the server is gone or never answered (no SQLSTATE). */
const PG_CONNECTION =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|ECONNRESET|terminating connection|Connection refused|the database system is (starting up|shutting down)/i;
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);
/**
 * TypeORM's own words for the same thing: a transaction's connection died (pg_terminate_backend,
 * a Postgres restart, a cut network) and TypeORM released its query runner on the connection's
 * error event, so the transaction's next statement fails with these instead of a pg error.
 * Nothing of that transaction was committed.
 */
const TYPEORM_CONNECTION_GONE = new Set(['QueryRunnerProviderAlreadyReleasedError', 'QueryRunnerAlreadyReleasedError', 'ConnectionIsNotSetError']);

/**
 * What ioredis and our bounded queue calls say when Redis is down or too slow — and Redis's own
 * replies when it answers but takes no write (maxmemory under noeviction, a failed snapshot, a
 * replica), which the queue's probe counts as down too (attack pass 5: heartbeats answered 500).
 */
const REDIS_DOWN =
  /^(Command timed out|Stream isn't writeable|Connection is closed|Reached the max retries per request limit|redis: .* not answered within|OOM command not allowed|MISCONF |READONLY )/;

/** Seconds a client should wait before the retry. */
const RETRY_AFTER_SECONDS = 1;

function inner(e: unknown): unknown {
  return e instanceof QueryFailedError ? e.driverError : e;
}

/**
 * A fault of a store the request needed (not of the request, not a bug of ours): 503 with a
 * clear code and Retry-After, so that a device retries the same event (same event id) instead of
 * giving up on a 500. Nothing was committed when this is answered: the failing statement or
 * COMMIT did not succeed (a COMMIT whose answer was lost is the one ambiguous case, and the
 * retry with the same event id resolves it: it finds the committed event). null for anything else.
 */
export function fromUnavailable(e: unknown): DomainError | null {
  const err = inner(e) as { code?: unknown; message?: unknown; name?: unknown } | null;
  if (!err || typeof err !== 'object') return null;
  const message = typeof err.message === 'string' ? err.message : '';
  const code = typeof err.code === 'string' ? err.code : '';
  const db =
    err instanceof DbConnectionUnavailableError ||
    err instanceof DbQueryTimeoutError ||
    (err instanceof DatabaseError && RETRYABLE_SQLSTATE.test(code)) ||
    (!(err instanceof DatabaseError) && (PG_CONNECTION.test(message) || SOCKET_CODES.has(code))) ||
    (typeof err.name === 'string' && TYPEORM_CONNECTION_GONE.has(err.name));
  if (db && !REDIS_DOWN.test(message)) {
    return new DomainError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.UNAVAILABLE.DATABASE,
      'The database is not reachable now; nothing was saved. Retry the same request.',
      {
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      },
    );
  }
  if (REDIS_DOWN.test(message) || err.name === 'MaxRetriesPerRequestError') {
    return new DomainError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.UNAVAILABLE.REDIS,
      'A required service (Redis) is not reachable now. Retry the same request.',
      {
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      },
    );
  }
  return null;
}

import { DataSource, DataSourceOptions } from 'typeorm';
import type { AppConfig } from '../../config/config';
import { MIGRATIONS } from './migrations';
import { SnakeNamingStrategy } from './naming.strategy';
import { DbConnectionUnavailableError, routedDriver } from './pools';

export function dataSourceOptions(config: Pick<AppConfig, 'database'>, entities: DataSourceOptions['entities'] = []): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    entities,
    migrations: MIGRATIONS,
    migrationsTransactionMode: 'each',
    namingStrategy: new SnakeNamingStrategy(),
    uuidExtension: 'pgcrypto',
    synchronize: false,
    // Two pools (request path, jobs) chosen per call, each with its own size and wait; opening a connection
    // has its own bound (database.connectTimeoutMs): see pools.ts. Connections are GuardedClients (an unheard error exits the process).
    driver: routedDriver(config.database),
    extra: { application_name: 'shouhu' },
  };
}

/**
 * Whether opening the migrations' connection may succeed if tried again: no answer (refused, timed out,
 * unreachable), or Postgres answered that it is starting up or shutting down (SQLSTATE 57P03) or has no
 * connection slot left (53300). Any other answer of the server (wrong password, a database that does not
 * exist) is not: retrying it only delays the message.
 */
function connectMayRecover(e: unknown): boolean {
  if (!(e instanceof DbConnectionUnavailableError) && (e as { code?: string } | undefined)?.code !== '57P03') return false;
  const cause = (e instanceof DbConnectionUnavailableError ? e.cause : e) as { code?: string; severity?: string } | undefined;
  const serverAnswered = typeof cause?.severity === 'string';
  return !serverAnswered || cause?.code === '57P03' || cause?.code === '53300';
}

/**
 * Applies pending migrations; safe to run from several processes (an advisory lock serialises them).
 *
 * Opening the connection is a boot step, not an alarm's request: it is retried with doubling attempts
 * (database.connectTimeoutMs, then twice that…) until database.migrateConnectWaitMs has passed, so a
 * Postgres still starting (docker compose up) or slow to accept on a loaded host does not fail the boot
 * (CI ci5: one 1 s connect timed out). Past the wait, the last error is thrown and names the cause.
 */
export async function runMigrations(config: Pick<AppConfig, 'database'>): Promise<string[]> {
  const deadline = Date.now() + config.database.migrateConnectWaitMs;
  for (let attemptMs = config.database.connectTimeoutMs; ; attemptMs *= 2) {
    const left = deadline - Date.now();
    const connectTimeoutMs = Math.max(config.database.connectTimeoutMs, Math.min(attemptMs, left));
    // Two connections, whatever the service's pools: the held lock and the migrations' own. No statement bound:
    // the lock waits for another process's migrations, and a migration may rewrite a large table.
    const ds = new DataSource(
      dataSourceOptions({
        database: {
          ...config.database,
          poolSize: 2,
          jobsPoolSize: 1,
          queryTimeoutMs: 0,
          jobsQueryTimeoutMs: 0,
          connectTimeoutMs,
          poolWaitMs: Math.max(config.database.poolWaitMs, connectTimeoutMs),
          jobsPoolWaitMs: Math.max(config.database.jobsPoolWaitMs, connectTimeoutMs),
        },
      }),
    );
    try {
      return await applyLocked(ds);
    } catch (e) {
      // Safe to run again: no statement ran on a connection that could not be had, and each migration
      // is its own transaction (an applied one is recorded, a failed one rolled back).
      if (!connectMayRecover(e) || Date.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    }
  }
}

async function applyLocked(ds: DataSource): Promise<string[]> {
  let lock: ReturnType<DataSource['createQueryRunner']> | undefined;
  try {
    await ds.initialize();
    // Serialise concurrent boots (api and worker starting together) on one held connection.
    lock = ds.createQueryRunner();
    await lock.connect();
    await lock.query(`SELECT pg_advisory_lock(727274)`);
    const done = await ds.runMigrations({ transaction: 'each' });
    return done.map((m) => m.name);
  } finally {
    if (lock) {
      await lock.query(`SELECT pg_advisory_unlock(727274)`).catch(() => undefined);
      await lock.release().catch(() => undefined);
    }
    if (ds.isInitialized) await ds.destroy().catch(() => undefined);
  }
}

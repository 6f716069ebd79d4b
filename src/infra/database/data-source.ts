import { DataSource, DataSourceOptions } from 'typeorm';
import type { AppConfig } from '../../config/config';
import { MIGRATIONS } from './migrations';
import { SnakeNamingStrategy } from './naming.strategy';
import { routedDriver } from './pools';

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

/** Applies pending migrations; safe to run from several processes (TypeORM takes a lock per transaction). */
export async function runMigrations(config: Pick<AppConfig, 'database'>): Promise<string[]> {
  // Two connections, whatever the service's pools: the held lock and the migrations' own. No statement bound:
  // the lock waits for another process's migrations, and a migration may rewrite a large table.
  const ds = new DataSource(dataSourceOptions({ database: { ...config.database, poolSize: 2, jobsPoolSize: 1, queryTimeoutMs: 0, jobsQueryTimeoutMs: 0 } }));
  await ds.initialize();
  // Serialise concurrent boots (api and worker starting together) on one held connection.
  const lock = ds.createQueryRunner();
  try {
    await lock.connect();
    await lock.query(`SELECT pg_advisory_lock(727274)`);
    const done = await ds.runMigrations({ transaction: 'each' });
    return done.map((m) => m.name);
  } finally {
    await lock.query(`SELECT pg_advisory_unlock(727274)`).catch(() => undefined);
    await lock.release();
    await ds.destroy();
  }
}

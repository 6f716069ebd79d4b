import { DataSource, DataSourceOptions } from 'typeorm';
import type { AppConfig } from '../../config/config';
import { GuardedClient } from './guarded-client';
import { MIGRATIONS } from './migrations';
import { SnakeNamingStrategy } from './naming.strategy';

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
    // connectionTimeoutMillis bounds both a new connection and the wait for a free one of a full
    // pool: with Postgres down a request fails (503 UNAVAILABLE.DATABASE) instead of waiting.
    // Client: every pooled connection keeps an 'error' listener (guarded-client.ts: an unheard error exits the process).
    extra: { max: config.database.poolSize, application_name: 'shouhu', connectionTimeoutMillis: config.database.connectTimeoutMs, Client: GuardedClient },
  };
}

/** Applies pending migrations; safe to run from several processes (TypeORM takes a lock per transaction). */
export async function runMigrations(config: Pick<AppConfig, 'database'>): Promise<string[]> {
  const ds = new DataSource(dataSourceOptions(config));
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

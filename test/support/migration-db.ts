import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { createDatabase, releaseDatabase } from './harness';

/**
 * A migrated test database for a migration spec, opened before the file's tests and released after:
 * `client` to arrange and inspect rows, `runner` the QueryRunner a migration's up/down is called with
 * (only `query` is used by our migrations).
 */
export function useMigrationDatabase(): { readonly client: Client; readonly runner: QueryRunner } {
  let db: { url: string; name: string } | undefined;
  let client: Client | undefined;
  beforeAll(async () => {
    db = await createDatabase({ migrated: true });
    client = new Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (db) await releaseDatabase(db.name);
  });
  const runner = { query: (sql: string, params?: unknown[]) => client!.query(sql, params).then((r) => r.rows) } as unknown as QueryRunner;
  return {
    get client() {
      return client!;
    },
    runner,
  };
}

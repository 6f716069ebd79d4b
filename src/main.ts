import 'reflect-metadata';
import { BootError, bootstrap } from './bootstrap';
import { ConfigError, loadConfig } from './config/config';
import { DbConnectionUnavailableError, DbQueryTimeoutError } from './infra/database/pools';
import { exitOnSignals } from './infra/lifecycle/shutdown';
import { keepRunningOnUnhandledRejections } from './infra/lifecycle/unhandled';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\nThe service did not start. Fix the keys above (config/*.json or environment variables).\n`);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
  try {
    const app = await bootstrap(config);
    keepRunningOnUnhandledRejections();
    exitOnSignals(app, config.ops.shutdownDeadlineMs, (level, msg) =>
      process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, context: 'Shutdown', msg }) + '\n'),
    );
  } catch (e) {
    // What an operator can fix gets its message alone; a database that cannot be reached (or does not answer) at boot
    // is one of those — the process exits so that its supervisor starts it again (attack pass 1: a stack trace here).
    const msg =
      e instanceof BootError
        ? e.message
        : e instanceof DbConnectionUnavailableError || e instanceof DbQueryTimeoutError
          ? `the database did not answer at boot (${e.message}): check database.url (DATABASE_URL) and that Postgres runs and is not overloaded; not started`
          : ((e as Error).stack ?? String(e));
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', context: 'Boot', msg }) + '\n');
    process.exit(1);
  }
}

void main();

import 'reflect-metadata';
import { BootError, bootstrap } from './bootstrap';
import { ConfigError, loadConfig } from './config/config';
import { exitOnSignals } from './infra/lifecycle/shutdown';

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
    exitOnSignals(app, config.ops.shutdownDeadlineMs, (level, msg) =>
      process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, context: 'Shutdown', msg }) + '\n'),
    );
  } catch (e) {
    const msg = e instanceof BootError ? e.message : ((e as Error).stack ?? String(e));
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', context: 'Boot', msg }) + '\n');
    process.exit(1);
  }
}

void main();

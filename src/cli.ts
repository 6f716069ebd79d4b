import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { INestApplicationContext } from '@nestjs/common';
import { AppModule } from './app.module';
import { AppConfig, ConfigError, loadConfig } from './config/config';
import { runMigrations } from './infra/database/data-source';
import { JsonLogger } from './infra/observability/json-logger';
import { UsersService } from './modules/auth';

/**
 * Operator commands: `node dist/cli.js <command>`.
 *   migrate                         apply pending migrations
 *   create-admin <username>         create the first admin (password from ADMIN_PASSWORD or stdin)
 *   seed                            build the deterministic demo district (safe to run twice)
 *   simulate [--devices N] [--offline 0.05] [--flap 0.01] [--duration 60s] [--url http://127.0.0.1:3000]
 *                                   play registered devices sending heartbeats through the HTTP batch API
 */
type Command = (args: string[], config: AppConfig) => Promise<void>;

/** A Nest context with every service but no HTTP server and no job processors. */
export async function withContext<T>(config: AppConfig, fn: (ctx: INestApplicationContext) => Promise<T>): Promise<T> {
  const ctx = await NestFactory.createApplicationContext(AppModule.forRoot({ ...config, role: 'api' }), { logger: new JsonLogger('warn') });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

const COMMANDS: Record<string, Command> = {
  migrate: async (_args, config) => {
    const applied = await runMigrations(config);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  },
  'create-admin': async (args, config) => {
    const username = args[0];
    if (!username) throw new Error('usage: create-admin <username>  (password from ADMIN_PASSWORD or standard input)');
    const password = process.env.ADMIN_PASSWORD || (process.stdin.isTTY ? '' : await readStdin());
    if (!password) throw new Error('no password: set ADMIN_PASSWORD or pipe it on standard input');
    await runMigrations(config);
    const result = await withContext(config, (ctx) => ctx.get(UsersService).ensureAdmin(username, password));
    process.stdout.write(result === 'created' ? `admin '${username}' created\n` : `user '${username}' already exists; nothing changed\n`);
  },
  seed: async (args, config) => {
    await runMigrations(config);
    const { seedDemoDistrict } = await import('./tools/seed');
    await withContext(config, (ctx) => seedDemoDistrict(ctx, config, { progress: (m) => process.stdout.write(m + '\n') }));
  },
  simulate: async (args, config) => {
    if (args.includes('--help')) {
      process.stdout.write(
        'usage: npm run simulate -- [--devices N] [--offline 0.05] [--flap 0.01] [--duration 60s|5m|1h] [--url http://127.0.0.1:3000]\n' +
          '  plays the registered cameras and alarm buttons sending heartbeats at their interval through the HTTP batch intake\n' +
          '  (a gateway credential is created for the run); --offline devices stay silent, --flap devices fall silent and come back\n',
      );
      return;
    }
    const opt = (name: string) => {
      const i = args.indexOf(`--${name}`);
      return i >= 0 ? args[i + 1] : undefined;
    };
    const share = (name: string, def: number) => {
      const v = Number(opt(name) ?? def);
      if (!(v >= 0 && v <= 1)) throw new Error(`--${name}: a share between 0 and 1`);
      return v;
    };
    const { simulate, parseDuration } = await import('./tools/simulate');
    const devices = opt('devices') === undefined ? undefined : Number(opt('devices'));
    if (devices !== undefined && !(Number.isInteger(devices) && devices > 0)) throw new Error('--devices: a positive integer');
    await withContext(config, (ctx) =>
      simulate(ctx, config, {
        url: opt('url') ?? `http://127.0.0.1:${config.http.port}`,
        offline: share('offline', 0.05),
        flap: share('flap', 0.01),
        durationMs: parseDuration(opt('duration') ?? '60s'),
        devices,
        progress: (m) => process.stdout.write(m + '\n'),
      }),
    );
  },
};

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd) {
    process.stderr.write(`usage: node dist/cli.js <${Object.keys(COMMANDS).join('|')}> [args]\n`);
    process.exit(64);
  }
  try {
    await cmd(args, loadConfig());
  } catch (e) {
    process.stderr.write(`${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
    process.exit(1);
  }
}

if (require.main === module) void main();
export { COMMANDS };

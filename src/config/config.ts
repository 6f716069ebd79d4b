import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA } from './schema';
import type { AppConfig } from './sections';

/**
 * Typed application configuration (section types: ./sections.ts, rules: ./schema.ts). Defaults
 * live in config/default.json, an optional config/<env>.json (or CONFIG_FILE) overlays them, and
 * environment variables override both. Everything is validated once, at boot; a bad value stops
 * the process with a message naming the key (see ConfigError).
 */
export type { AppConfig, Role } from './sections';
export { ROLES } from './sections';

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Well-known environment variables and the keys they set. */
const ENV_ALIASES: Record<string, string> = {
  ROLE: 'role',
  NODE_ENV: 'env',
  PORT: 'http.port',
  HOST: 'http.host',
  DATABASE_URL: 'database.url',
  REDIS_URL: 'redis.url',
  REDIS_KEY_PREFIX: 'redis.keyPrefix',
  LOG_LEVEL: 'log.level',
  JWT_SECRET: 'auth.jwtSecret',
  ADMIN_USERNAME: 'auth.bootstrapAdminUsername',
  ADMIN_PASSWORD: 'auth.bootstrapAdminPassword',
  METRICS_TOKEN: 'ops.metricsToken',
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Json, v) : v;
  }
  return out;
}

function setPath(obj: Json, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as Json;
  }
  cur[parts[parts.length - 1]] = value;
}

function getPath(obj: Json, path: string): unknown {
  return path.split('.').reduce<unknown>((o, p) => (isObject(o) ? o[p] : undefined), obj);
}

/** Converts an env string to the type of the default it replaces. */
function coerce(raw: string, like: unknown): unknown {
  if (typeof like === 'number') return raw.trim() === '' ? NaN : Number(raw);
  if (typeof like === 'boolean') return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  if (Array.isArray(like) || isObject(like)) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

function readJson(file: string): Json {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8'));
    if (!isObject(parsed)) throw new Error('top level is not an object');
    return parsed;
  } catch (e) {
    throw new ConfigError([`${file}: ${(e as Error).message}`]);
  }
}

export function configDir(): string {
  return process.env.CONFIG_DIR ?? join(__dirname, '..', '..', 'config');
}

/**
 * Merges files and environment. Generic overrides use SHOUHU__SECTION__KEY (double underscores
 * separate levels, e.g. SHOUHU__LIVENESS__INTERVAL_SECONDS=30 → liveness.intervalSeconds).
 */
export function loadRawConfig(env: NodeJS.ProcessEnv = process.env, overrides: Json = {}): Json {
  const dir = configDir();
  let raw = readJson(join(dir, 'default.json'));
  const envName = env.NODE_ENV ?? 'development';
  const envFile = join(dir, `${envName}.json`);
  if (existsSync(envFile)) raw = deepMerge(raw, readJson(envFile));
  if (env.CONFIG_FILE) raw = deepMerge(raw, readJson(env.CONFIG_FILE));
  for (const [name, path] of Object.entries(ENV_ALIASES)) {
    if (env[name] !== undefined) setPath(raw, path, coerce(env[name]!, getPath(raw, path)));
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SHOUHU__') || value === undefined) continue;
    const path = name
      .slice('SHOUHU__'.length)
      .split('__')
      .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()))
      .join('.');
    setPath(raw, path, coerce(value, getPath(raw, path)));
  }
  return deepMerge(raw, overrides);
}

const DEV_SECRET = 'development-only-secret-do-not-use-in-production';
const DEV_LINK_SECRET = 'development-only-link-secret-do-not-use-in-production';

export function validateConfig(raw: Json): AppConfig {
  const problems: string[] = [];
  for (const [key, rule] of Object.entries(SCHEMA)) {
    const value = getPath(raw, key);
    if (value === undefined) {
      problems.push(`${key}: is missing`);
      continue;
    }
    const problem = rule(value);
    if (problem) problems.push(`${key}: ${problem}`);
  }
  // Every leaf of AppConfig has a rule (ConfigSchema), so once they all pass, raw is an AppConfig.
  const cfg = raw as unknown as AppConfig;
  if (problems.length === 0) {
    if (cfg.registry.defaultPageSize > cfg.registry.maxPageSize) problems.push('registry.defaultPageSize: must not exceed registry.maxPageSize');
    if (cfg.video.rtpPortMin > cfg.video.rtpPortMax) problems.push('video.rtpPortMin: must not exceed video.rtpPortMax');
    if (cfg.video.restartBackoffMinMs > cfg.video.restartBackoffMaxMs) problems.push('video.restartBackoffMinMs: must not exceed video.restartBackoffMaxMs');
    const relay = cfg.alarms.policeRelay;
    if (relay.url && relay.hmacSecret.length < 16)
      problems.push('alarms.policeRelay.hmacSecret: must be set (at least 16 characters) when alarms.policeRelay.url is set');
    if (cfg.env === 'production') {
      if (cfg.auth.jwtSecret.length < 32) problems.push('auth.jwtSecret (JWT_SECRET): must be set to at least 32 characters in production');
      if (cfg.notifications.linkSecret.length < 32) problems.push('notifications.linkSecret: must be set to at least 32 characters in production');
      if (cfg.demo.seedOnStart) problems.push('demo.seedOnStart: must be false in production (no demo users or passwords)');
      if (cfg.demo.simulateHeartbeats) problems.push('demo.simulateHeartbeats: must be false in production (no simulated devices)');
      if (cfg.ops.metricsToken === '')
        problems.push('ops.metricsToken (METRICS_TOKEN): must be set in production (at least 16 characters; Prometheus sends it as a bearer token)');
    } else {
      if (cfg.auth.jwtSecret === '') cfg.auth.jwtSecret = DEV_SECRET;
      if (cfg.notifications.linkSecret === '') cfg.notifications.linkSecret = DEV_LINK_SECRET;
    }
    if (cfg.auth.bootstrapAdminPassword && cfg.auth.bootstrapAdminPassword.length < cfg.auth.minPasswordLength)
      problems.push(`auth.bootstrapAdminPassword (ADMIN_PASSWORD): must have at least ${cfg.auth.minPasswordLength} characters`);
  }
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Json = {}): AppConfig {
  return validateConfig(loadRawConfig(env, overrides));
}

/** Nest injection token for the validated AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
  REDIS_MODE: 'redis.mode',
  REDIS_CLUSTER_NODES: 'redis.clusterNodes',
  LOG_LEVEL: 'log.level',
  JWT_SECRET: 'auth.jwtSecret',
  ADMIN_USERNAME: 'auth.bootstrapAdminUsername',
  ADMIN_PASSWORD: 'auth.bootstrapAdminPassword',
  METRICS_TOKEN: 'ops.metricsToken',
  POST_QR_SECRET: 'patrols.postQrSecret',
  DEVICE_CREDENTIAL_KEY: 'video.credentialKey',
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
  // A list may also be given comma-separated (REDIS_CLUSTER_NODES=redis://a:7000,redis://b:7000).
  // Empty: the empty list. An empty item (",,,", "a,,b") is kept, so that validation refuses it naming the key.
  if (Array.isArray(like) && !raw.trim().startsWith('[')) return raw.trim() === '' ? [] : raw.split(',').map((x) => x.trim());
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

/**
 * Secrets that must never sign anything outside tests: values published in this repository or its
 * history (former development constants, the test configuration's) and placeholders people paste.
 */
const KNOWN_SECRETS = new Set([
  'development-only-secret-do-not-use-in-production',
  'development-only-link-secret-do-not-use-in-production',
  'test-secret-test-secret-test-secret!',
  'test-link-secret-test-link-secret!',
  'changeme',
  'change-me',
  'secret',
  'your-secret-here',
]);
const MIN_SECRET_LENGTH = 32;

/** Why a signing secret is unacceptable outside tests, or null: short, published, or with too few distinct characters. */
function weakSecret(value: string): string | null {
  if (value.length < MIN_SECRET_LENGTH) return `must be at least ${MIN_SECRET_LENGTH} characters`;
  if (KNOWN_SECRETS.has(value)) return 'is a published value (from this repository): set a random one';
  if (new Set(value).size < 8) return 'is not random enough (fewer than 8 distinct characters)';
  return null;
}

/**
 * The demo's signing secrets when none is configured (development only): random, made once per
 * data directory (`auth.secretsFile`, mode 0600) and read back on later starts, so sessions survive
 * a restart and no two installations share a secret. Several processes starting at once agree
 * (the first writer wins: exclusive create).
 */
function demoSecrets(file: string): { jwtSecret: string; linkSecret: string } {
  const fresh = { jwtSecret: randomBytes(48).toString('base64url'), linkSecret: randomBytes(48).toString('base64url') };
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    try {
      writeFileSync(file, JSON.stringify(fresh), { flag: 'wx', mode: 0o600 });
      return fresh;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return JSON.parse(readFileSync(file, 'utf8')) as { jwtSecret: string; linkSecret: string };
}

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
    // One user must never hold every import (or export) slot (ParsePool.exclusive).
    const { maxConcurrent, maxConcurrentPerUser } = cfg.import;
    if (maxConcurrent > 1 ? maxConcurrentPerUser >= maxConcurrent : maxConcurrentPerUser > 1)
      problems.push('import.maxConcurrentPerUser: must be less than import.maxConcurrent (1 when that is 1): one user must never hold every slot');
    // pg-pool bounds opening a connection by the pool's wait too: a shorter wait would cut connects short and read as an outage.
    for (const k of ['poolWaitMs', 'jobsPoolWaitMs'] as const)
      if (cfg.database[k] < cfg.database.connectTimeoutMs) problems.push(`database.${k}: must not be less than database.connectTimeoutMs`);
    const cascade = cfg.gb28181.cascade;
    if (cascade.enabled && cascade.superiors.length === 0)
      problems.push('gb28181.cascade.superiors: must list at least one superior platform when gb28181.cascade.enabled');
    if (cascade.retryMinMs > cascade.retryMaxMs) problems.push('gb28181.cascade.retryMinMs: must not exceed gb28181.cascade.retryMaxMs');
    if (cascade.subscribeMinSeconds > cascade.subscribeMaxSeconds)
      problems.push('gb28181.cascade.subscribeMinSeconds: must not exceed gb28181.cascade.subscribeMaxSeconds');
    if (cfg.video.restartBackoffMinMs > cfg.video.restartBackoffMaxMs) problems.push('video.restartBackoffMinMs: must not exceed video.restartBackoffMaxMs');
    const relay = cfg.alarms.policeRelay;
    if (relay.url && relay.hmacSecret.length < 16)
      problems.push('alarms.policeRelay.hmacSecret: must be set (at least 16 characters) when alarms.policeRelay.url is set');
    // Signing secrets: no constant anywhere. Production demands them; development makes random ones
    // per data directory when unset; tests may use the test configuration's (or a random one).
    if (cfg.env === 'development' && (cfg.auth.jwtSecret === '' || cfg.notifications.linkSecret === '')) {
      const demo = demoSecrets(cfg.auth.secretsFile);
      if (cfg.auth.jwtSecret === '') cfg.auth.jwtSecret = demo.jwtSecret;
      if (cfg.notifications.linkSecret === '') cfg.notifications.linkSecret = demo.linkSecret;
    }
    if (cfg.env === 'test') {
      if (cfg.auth.jwtSecret === '') cfg.auth.jwtSecret = randomBytes(48).toString('base64url');
      if (cfg.notifications.linkSecret === '') cfg.notifications.linkSecret = randomBytes(48).toString('base64url');
    } else {
      const jwtProblem = cfg.auth.jwtSecret === '' ? 'must be set' : weakSecret(cfg.auth.jwtSecret);
      if (jwtProblem) problems.push(`auth.jwtSecret (JWT_SECRET): ${jwtProblem}`);
      const linkProblem = cfg.notifications.linkSecret === '' ? 'must be set' : weakSecret(cfg.notifications.linkSecret);
      if (linkProblem) problems.push(`notifications.linkSecret: ${linkProblem}`);
      const qrProblem = cfg.patrols.postQrSecret === '' ? null : weakSecret(cfg.patrols.postQrSecret);
      if (qrProblem) problems.push(`patrols.postQrSecret: ${qrProblem}`);
    }
    if (cfg.env === 'production') {
      if (cfg.demo.seedOnStart) problems.push('demo.seedOnStart: must be false in production (no demo users or passwords)');
      if (cfg.demo.simulateHeartbeats) problems.push('demo.simulateHeartbeats: must be false in production (no simulated devices)');
      if (cfg.ops.metricsToken === '')
        problems.push('ops.metricsToken (METRICS_TOKEN): must be set in production (at least 16 characters; Prometheus sends it as a bearer token)');
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

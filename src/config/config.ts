import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Typed application configuration. Defaults live in config/default.json, an optional
 * config/<env>.json (or CONFIG_FILE) overlays them, and environment variables override both.
 * Everything is validated once, at boot; a bad value stops the process with a message naming
 * the key (see ConfigError).
 */
export type Role = 'api' | 'worker' | 'all';
export const ROLES: readonly Role[] = ['api', 'worker', 'all'];

export interface AppConfig {
  role: Role;
  env: 'development' | 'test' | 'production';
  http: { port: number; host: string; bodyLimitKb: number; trustProxy: boolean };
  database: { url: string; poolSize: number; embeddedFallback: boolean; embeddedDataDir: string; embeddedPort: number };
  redis: { url: string; keyPrefix: string };
  /** BullMQ workers: a job whose worker dies is retried after its lock lapses (lockDurationMs). */
  queue: { concurrency: number; lockDurationMs: number; stalledIntervalMs: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error' | 'silent' };
  auth: {
    jwtSecret: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    loginMaxAttemptsPerAccount: number;
    loginMaxAttemptsPerAddress: number;
    loginWindowSeconds: number;
    bootstrapAdminUsername: string;
    bootstrapAdminPassword: string;
    minPasswordLength: number;
    deviceCredentialCacheSeconds: number;
    pruneRefreshTokensCron: string;
  };
  registry: { defaultPageSize: number; maxPageSize: number };
  import: { maxFileBytes: number; maxRows: number };
  /** The demo district (`npm start`): seeded users, and simulated heartbeats so it looks alive. */
  demo: { seedOnStart: boolean; userPassword: string; simulateHeartbeats: boolean; simulateOffline: number; simulateFlap: number };
  [section: string]: unknown;
}

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

/** A rule for one key; returns a problem description or null. */
export type Rule = (value: unknown) => string | null;

export const rules = {
  int:
    (min: number, max = Number.MAX_SAFE_INTEGER): Rule =>
    (v) =>
      typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
        ? null
        : `must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`,
  num:
    (min: number, max: number): Rule =>
    (v) =>
      typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max
        ? null
        : `must be a number between ${min} and ${max} (got ${JSON.stringify(v)})`,
  bool: (): Rule => (v) => (typeof v === 'boolean' ? null : `must be true or false (got ${JSON.stringify(v)})`),
  str:
    (opts: { nonEmpty?: boolean; pattern?: RegExp; hint?: string } = {}): Rule =>
    (v) => {
      if (typeof v !== 'string') return `must be a string (got ${JSON.stringify(v)})`;
      if (opts.nonEmpty && v.trim() === '') return 'must not be empty';
      if (opts.pattern && !opts.pattern.test(v)) return `${opts.hint ?? `must match ${opts.pattern}`} (got ${JSON.stringify(v)})`;
      return null;
    },
  oneOf:
    (values: readonly string[]): Rule =>
    (v) =>
      typeof v === 'string' && values.includes(v) ? null : `must be one of ${values.join(', ')} (got ${JSON.stringify(v)})`,
  url:
    (protocols: string[]): Rule =>
    (v) => {
      if (typeof v !== 'string') return `must be a URL string (got ${JSON.stringify(v)})`;
      try {
        const u = new URL(v);
        return protocols.includes(u.protocol) ? null : `must use ${protocols.join(' or ')} (got ${u.protocol})`;
      } catch {
        return `must be a valid URL (got ${JSON.stringify(v)})`;
      }
    },
  /** A five- or six-field cron expression (validated loosely; the scheduler re-validates). */
  cron: (): Rule => (v) =>
    typeof v === 'string' && /^(\S+\s+){4,5}\S+$/.test(v.trim()) ? null : `must be a cron expression (got ${JSON.stringify(v)})`,
};

/**
 * Each capability registers the rules for its own config section here (see the module's
 * `*.config.ts`), so one validation pass covers every key and reports all problems at once.
 */
const SCHEMA: Record<string, Rule> = {
  role: rules.oneOf(ROLES),
  env: rules.oneOf(['development', 'test', 'production']),
  'http.port': rules.int(0, 65535),
  'http.host': rules.str({ nonEmpty: true }),
  'http.bodyLimitKb': rules.int(1, 1024 * 1024),
  'http.trustProxy': rules.bool(),
  'database.url': rules.url(['postgres:', 'postgresql:']),
  'database.poolSize': rules.int(1, 500),
  'database.embeddedFallback': rules.bool(),
  'database.embeddedDataDir': rules.str({ nonEmpty: true }),
  'database.embeddedPort': rules.int(1, 65535),
  'redis.url': rules.url(['redis:', 'rediss:']),
  'redis.keyPrefix': rules.str({ nonEmpty: true, pattern: /^[A-Za-z0-9_.:-]+$/, hint: 'letters, digits and _.:- only' }),
  'queue.concurrency': rules.int(1, 1000),
  'queue.lockDurationMs': rules.int(1000, 3_600_000),
  'queue.stalledIntervalMs': rules.int(1000, 3_600_000),
  'log.level': rules.oneOf(['debug', 'info', 'warn', 'error', 'silent']),
  'auth.jwtSecret': rules.str(),
  'auth.accessTtlSeconds': rules.int(30, 86400),
  'auth.refreshTtlSeconds': rules.int(300, 90 * 86400),
  'auth.loginMaxAttemptsPerAccount': rules.int(1, 1000),
  'auth.loginMaxAttemptsPerAddress': rules.int(1, 100000),
  'auth.loginWindowSeconds': rules.int(1, 86400),
  'auth.bootstrapAdminUsername': rules.str(),
  'auth.bootstrapAdminPassword': rules.str(),
  'auth.minPasswordLength': rules.int(6, 128),
  'auth.deviceCredentialCacheSeconds': rules.int(0, 3600),
  'auth.pruneRefreshTokensCron': rules.cron(),
  'registry.defaultPageSize': rules.int(1, 10000),
  'registry.maxPageSize': rules.int(1, 10000),
  'import.maxFileBytes': rules.int(1024, 1024 * 1024 * 1024),
  'import.maxRows': rules.int(1, 10_000_000),
  'demo.seedOnStart': rules.bool(),
  'demo.userPassword': rules.str(),
  'demo.simulateHeartbeats': rules.bool(),
  'demo.simulateOffline': rules.num(0, 1),
  'demo.simulateFlap': rules.num(0, 1),
  // Device liveness (GB/T 28181-2016 §9.6.1: keepalive 60 s, offline after 3 missed; GB/T 29315: faults repaired within 24 h).
  'liveness.intervalSeconds': rules.int(1, 86400),
  'liveness.missedBeforeOffline': rules.int(1, 100),
  'liveness.sweepEveryMs': rules.int(0, 3_600_000), // 0 = no scheduled sweep (tests drive it)
  'liveness.sweepBatchSize': rules.int(1, 100_000),
  'liveness.sweepParallelism': rules.int(1, 8),
  'liveness.bootGraceSeconds': rules.int(0, 7 * 86400), // 0 = intervalSeconds × missedBeforeOffline
  'liveness.flapCount': rules.int(1, 1000),
  'liveness.flapWindowMinutes': rules.int(1, 1440),
  'liveness.faultOverdueHours': rules.int(1, 24 * 365),
  'liveness.maxBatchSize': rules.int(1, 100_000),
  'liveness.indexRefreshSeconds': rules.int(1, 86400),
  // alarms (src/modules/alarms): escalation delays per priority, police relay, outbox relay
  ...(['P1', 'P2', 'P3', 'P4'] as const).reduce<Record<string, Rule>>((acc, p) => {
    acc[`alarms.escalationSeconds.${p}`] = (v) =>
      Array.isArray(v) && v.length <= 5 && v.every((x, i) => typeof x === 'number' && x > 0 && x <= 86400 && (i === 0 || x > (v[i - 1] as number)))
        ? null
        : `must be a list of increasing delays in seconds, one per escalation level (got ${JSON.stringify(v)})`;
    return acc;
  }, {}),
  ...['intrusion', 'violence', 'medical', 'fire', 'video_alarm', 'tamper', 'device_fault', 'other'].reduce<Record<string, Rule>>((acc, t) => {
    acc[`alarms.priorityByType.${t}`] = rules.oneOf(['P1', 'P2', 'P3', 'P4']);
    return acc;
  }, {}),
  'alarms.devicePressPriority': rules.oneOf(['P1', 'P2', 'P3', 'P4']),
  'alarms.relayPriorities': (v) =>
    Array.isArray(v) && v.every((x) => ['P1', 'P2', 'P3', 'P4'].includes(x as string)) ? null : `must be a list of P1..P4 (got ${JSON.stringify(v)})`,
  'alarms.policeRelay.url': (v) => (v === '' ? null : rules.url(['http:', 'https:'])(v)),
  'alarms.policeRelay.hmacSecret': rules.str(),
  'alarms.policeRelay.timeoutMs': rules.int(100, 120000),
  'alarms.policeRelay.attempts': rules.int(1, 1000),
  'alarms.policeRelay.backoffMs': rules.int(10, 3600000),
  'alarms.policeRelay.lateAfterSeconds': rules.num(0.1, 86400),
  'alarms.outbox.pollMs': rules.int(50, 600000),
  'alarms.outbox.redispatchAfterMs': rules.int(100, 86400000),
  'alarms.outbox.batchSize': rules.int(1, 10000),
  // patrols (src/modules/patrols): audits, protection posts, video rounds, staffing rule (公治〔2015〕168号 / GB/T 29315-2022)
  'patrols.staffingRule': rules.oneOf(['gongzhi2015', 'gbt29315']),
  'patrols.onlineRateThreshold': rules.num(0, 1),
  'patrols.alarmTestOverdueDays': rules.int(1, 3650),
  'patrols.postGraceMinutes': rules.int(0, 240),
  'patrols.postEarlyMinutes': rules.int(0, 720),
  'patrols.postCheckEveryMs': rules.int(0, 3_600_000), // 0 = no scheduled post check (tests drive it)
  'patrols.guardPatrolDailyMinimum': rules.int(0, 1000),
  'patrols.gateOpenToleranceMinutes': rules.int(0, 1440),
  'patrols.taskDeadlineHours': rules.int(1, 24 * 365),
  'patrols.roundDefaultSize': rules.int(1, 1000),
  'patrols.roundMaxSize': rules.int(1, 1000),
  'patrols.roundReservationMinutes': rules.int(1, 1440),
  'patrols.coveragePeriodDays': rules.int(1, 365),
  // compliance (src/modules/compliance): daily snapshot of the four targets
  'compliance.snapshotCron': rules.cron(),
  'compliance.snapshotEnabled': rules.bool(),
  // GB/T 28181 SIP front end (src/modules/gb28181/gb28181.config.ts)
  'gb28181.enabled': rules.bool(),
  'gb28181.host': rules.str({ nonEmpty: true }),
  'gb28181.port': rules.int(0, 65535),
  'gb28181.advertisedHost': rules.str(),
  'gb28181.platformId': rules.str({ pattern: /^\d{20}$/, hint: 'must be a 20-digit GB/T 28181 id' }),
  'gb28181.defaultPassword': rules.str(),
  'gb28181.nonceTtlSeconds': rules.int(10, 86400),
  'gb28181.maxMessageBytes': rules.int(1024, 65535),
  'gb28181.rateLimitPerSecond': rules.int(0, 1_000_000),
  'gb28181.rateLimitBurst': rules.int(1, 1_000_000),
  'gb28181.udpReceiveBufferBytes': rules.int(65536, 256 * 1024 * 1024),
  'gb28181.tcpIdleSeconds': rules.int(10, 86400),
  'gb28181.maxTcpConnections': rules.int(1, 1_000_000),
  'gb28181.queryTimeoutMs': rules.int(100, 120000),
  'gb28181.catalogTimeoutMs': rules.int(100, 600000),
  'gb28181.transactionTtlMs': rules.int(1000, 64000),
  'gb28181.maxExpiresSeconds': rules.int(60, 7 * 86400),
  'gb28181.housekeepingMs': rules.int(100, 600000),
  // console (src/modules/console): replay window for reconnecting consoles, delivery, retention
  'console.replayWindowSeconds': rules.int(10, 7 * 86400), // away longer (or events pruned): a snapshot instead of a replay
  'console.replayMaxEvents': rules.int(1, 1_000_000), // more missed events than this: a snapshot
  'console.replayPageSize': rules.int(10, 10000),
  'console.deliveryBatchSize': rules.int(10, 100000),
  'console.pollMs': rules.int(50, 600000), // safety net for missed NOTIFYs
  'console.snapshotMaxIncidents': rules.int(1, 10000),
  'console.pruneEveryMs': rules.int(0, 86400000), // 0 = no scheduled pruning
  'console.redisAdapter': rules.bool(),
  'console.adapterKey': rules.str({ nonEmpty: true, pattern: /^[A-Za-z0-9_.:-]+$/, hint: 'letters, digits and _.:- only' }),
  'console.revocationCheckSeconds': rules.int(1, 3600),
};

export function registerConfigRules(section: Record<string, Rule>): void {
  Object.assign(SCHEMA, section);
}

const DEV_SECRET = 'development-only-secret-do-not-use-in-production';

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
  const cfg = raw as unknown as AppConfig;
  if (problems.length === 0) {
    if (cfg.registry.defaultPageSize > cfg.registry.maxPageSize)
      problems.push('registry.defaultPageSize: must not exceed registry.maxPageSize');
    const relay = (cfg.alarms as { policeRelay: { url: string; hmacSecret: string } }).policeRelay;
    if (relay.url && relay.hmacSecret.length < 16) problems.push('alarms.policeRelay.hmacSecret: must be set (at least 16 characters) when alarms.policeRelay.url is set');
    if (cfg.env === 'production') {
      if (cfg.auth.jwtSecret.length < 32) problems.push('auth.jwtSecret (JWT_SECRET): must be set to at least 32 characters in production');
      if (cfg.demo.seedOnStart) problems.push('demo.seedOnStart: must be false in production (no demo users or passwords)');
      if (cfg.demo.simulateHeartbeats) problems.push('demo.simulateHeartbeats: must be false in production (no simulated devices)');
    } else if (cfg.auth.jwtSecret === '') {
      cfg.auth.jwtSecret = DEV_SECRET;
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

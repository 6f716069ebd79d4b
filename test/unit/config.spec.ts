import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configDir, loadConfig, loadRawConfig, validateConfig } from '../../src/config/config';
import { ConfigSchema, rules, SCHEMA } from '../../src/config/schema';

const env = (extra: Record<string, string> = {}) => ({ NODE_ENV: 'test', ...extra });

describe('configuration', () => {
  it('loads defaults, overlays the env file and applies environment variables', () => {
    const c = loadConfig(env({ PORT: '4100', REDIS_URL: 'redis://10.0.0.9:6380/2', ROLE: 'worker', SHOUHU__AUTH__ACCESS_TTL_SECONDS: '600' }));
    expect(c.http.port).toBe(4100);
    expect(c.redis.url).toBe('redis://10.0.0.9:6380/2');
    expect(c.role).toBe('worker');
    expect(c.auth.accessTtlSeconds).toBe(600);
    expect(c.demo.seedOnStart).toBe(false); // from config/test.json
  });

  it.each([
    [{ PORT: 'eighty' }, 'http.port'],
    [{ PORT: '70000' }, 'http.port'],
    [{ ROLE: 'both' }, 'role'],
    [{ DATABASE_URL: 'mysql://x/y' }, 'database.url'],
    [{ REDIS_URL: 'not a url' }, 'redis.url'],
    [{ SHOUHU__AUTH__LOGIN_WINDOW_SECONDS: '-5' }, 'auth.loginWindowSeconds'],
    [{ SHOUHU__DEMO__SEED_ON_START: 'maybe' }, 'demo.seedOnStart'],
    [{ SHOUHU__HTTP__TRUST_PROXY: '1.2' }, 'http.trustProxy'],
    [{ SHOUHU__HTTP__TRUST_PROXY: '10.0.0.0/33' }, 'http.trustProxy'],
    [{ SHOUHU__HTTP__TRUST_PROXY: '11' }, 'http.trustProxy'],
    [{ SHOUHU__DATABASE__JOBS_POOL_WAIT_MS: '200' }, 'database.jobsPoolWaitMs'],
    // One user must never hold every import slot (attack pass 8 F2).
    [{ SHOUHU__IMPORT__MAX_CONCURRENT_PER_USER: '2' }, 'import.maxConcurrentPerUser'],
    [{ SHOUHU__IMPORT__MAX_CONCURRENT: '1', SHOUHU__IMPORT__MAX_CONCURRENT_PER_USER: '2' }, 'import.maxConcurrentPerUser'],
    // Only empty items: not the empty list (which falls back to redis.url), a mistake.
    [{ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: ',,,' }, 'redis.clusterNodes'],
    [{ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'redis://a:7000,,redis://b:7000' }, 'redis.clusterNodes'],
  ])('refuses %j naming the key %s', (extra, key) => {
    expect(() => loadConfig(env(extra))).toThrow(ConfigError);
    try {
      loadConfig(env(extra));
    } catch (e) {
      expect((e as ConfigError).problems.join('\n')).toContain(key);
    }
  });

  it.each([
    ['false', false],
    ['2', '2'], // a hop count (bootstrap hands Express the number)
    ['loopback, 10.0.0.0/8, fd00::/8', 'loopback, 10.0.0.0/8, fd00::/8'],
  ])('takes http.trustProxy %j', (raw, expected) => {
    expect(loadConfig(env({ SHOUHU__HTTP__TRUST_PROXY: raw })).http.trustProxy).toEqual(expected);
  });

  it('reports every problem at once', () => {
    try {
      loadConfig(env({ PORT: 'x', ROLE: 'y' }));
      throw new Error('should have failed');
    } catch (e) {
      expect((e as ConfigError).problems).toHaveLength(2);
    }
  });

  it('in production demands a real JWT secret, a real link secret, a metrics token, no demo seeding and no API document', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/auth\.jwtSecret/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'Kq3v9ZpL2mX8rT5wB7nY1cF4hJ6dG0sA' })).toThrow(/notifications\.linkSecret/);
    const secrets = { JWT_SECRET: 'Kq3v9ZpL2mX8rT5wB7nY1cF4hJ6dG0sA', SHOUHU__NOTIFICATIONS__LINK_SECRET: 'Zt8pQ2wE5rY7uI9oP1aS3dF6gH4jK0lX' };
    expect(() => loadConfig({ NODE_ENV: 'production', ...secrets })).toThrow(/ops\.metricsToken/);
    const prod = { NODE_ENV: 'production', ...secrets, METRICS_TOKEN: 'm'.repeat(20) };
    const ok = loadConfig(prod);
    expect(ok.demo.seedOnStart).toBe(false);
    expect(ok.ops).toMatchObject({ apiDocs: false, metricsToken: 'm'.repeat(20) });
    expect(() => loadConfig({ ...prod, SHOUHU__DEMO__SEED_ON_START: 'true' })).toThrow(/demo\.seedOnStart/);
    expect(() => loadConfig({ ...prod, METRICS_TOKEN: 'short' })).toThrow(/ops\.metricsToken/);
  });

  it('has no constant signing secret: development makes a random one per data directory, every environment but tests refuses a known, short or non-random one (issue 12 §8)', () => {
    const dirA = mkdtempSync(join(tmpdir(), 'shouhu-secrets-'));
    const dirB = mkdtempSync(join(tmpdir(), 'shouhu-secrets-'));
    const dev = (dir: string) => loadConfig({ NODE_ENV: 'development', SHOUHU__AUTH__SECRETS_FILE: join(dir, 'secrets.json') });
    const a = dev(dirA);
    expect(a.auth.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(a.notifications.linkSecret).not.toBe(a.auth.jwtSecret);
    expect(dev(dirA).auth.jwtSecret).toBe(a.auth.jwtSecret); // kept across restarts
    expect(dev(dirB).auth.jwtSecret).not.toBe(a.auth.jwtSecret); // never shared between installations
    expect((statSync(join(dirA, 'secrets.json')).mode & 0o777).toString(8)).toBe('600');
    for (const NODE_ENV of ['development', 'production']) {
      for (const bad of ['development-only-secret-do-not-use-in-production', 'test-secret-test-secret-test-secret!', 'short-secret', 'x'.repeat(40)])
        expect(() => loadConfig({ NODE_ENV, JWT_SECRET: bad, METRICS_TOKEN: 'm'.repeat(20), SHOUHU__AUTH__SECRETS_FILE: join(dirA, 'secrets.json') })).toThrow(
          /auth\.jwtSecret/,
        );
    }
    expect(loadConfig({ NODE_ENV: 'test' }).auth.jwtSecret).toBe('test-secret-test-secret-test-secret!');
  });

  it('refuses a bootstrap admin password shorter than the minimum', () => {
    expect(() => loadConfig(env({ ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'short' }))).toThrow(/auth\.bootstrapAdminPassword/);
  });

  it('has a rule for every leaf of config/default.json, and no rule without a default', () => {
    const leaves = (o: Record<string, unknown>, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) =>
        typeof v === 'object' && v !== null && !Array.isArray(v) ? leaves(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
      );
    const defaults = leaves(JSON.parse(readFileSync(join(configDir(), 'default.json'), 'utf8')));
    const ruled = Object.keys(SCHEMA);
    expect(defaults.filter((k) => !ruled.includes(k))).toEqual([]);
    expect(ruled.filter((k) => !defaults.includes(k))).toEqual([]);
  });

  it('ties the rules to the typed key paths, and names a key the files lack', () => {
    // Compile-time half (npm run typecheck fails if either line stops being an error):
    // @ts-expect-error a rule for a key AppConfig does not have (a typo) does not compile
    const _typo: ConfigSchema = { ...SCHEMA, 'liveness.flapCont': rules.int(1, 10) };
    const { 'liveness.flapCount': _dropped, ...rest } = SCHEMA;
    // @ts-expect-error a leaf of AppConfig without a rule does not compile
    const _missing: ConfigSchema = rest;
    // Run-time half: a key absent from every file stops boot with its name.
    const raw = loadRawConfig(env());
    delete (raw.liveness as Record<string, unknown>).flapCount;
    expect(() => validateConfig(raw)).toThrow(/liveness\.flapCount: is missing/);
  });
});

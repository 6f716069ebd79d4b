import { ConfigError, loadConfig } from '../../src/config/config';

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
  ])('refuses %j naming the key %s', (extra, key) => {
    expect(() => loadConfig(env(extra))).toThrow(ConfigError);
    try {
      loadConfig(env(extra));
    } catch (e) {
      expect((e as ConfigError).problems.join('\n')).toContain(key);
    }
  });

  it('reports every problem at once', () => {
    try {
      loadConfig(env({ PORT: 'x', ROLE: 'y' }));
      throw new Error('should have failed');
    } catch (e) {
      expect((e as ConfigError).problems).toHaveLength(2);
    }
  });

  it('in production demands a real JWT secret and no demo seeding', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/auth\.jwtSecret/);
    const ok = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) });
    expect(ok.demo.seedOnStart).toBe(false);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), SHOUHU__DEMO__SEED_ON_START: 'true' })).toThrow(/demo\.seedOnStart/);
  });

  it('refuses a bootstrap admin password shorter than the minimum', () => {
    expect(() => loadConfig(env({ ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'short' }))).toThrow(/auth\.bootstrapAdminPassword/);
  });
});

import { randomUUID } from 'node:crypto';
import { ConfigError, loadConfig } from '../../src/config/config';
import { clusterSeeds, keySlot, taggedKey } from '../../src/infra/redis/redis.module';
import { shardKeys } from '../../src/modules/device-health/device-health.service';
import { shardOf } from '../../src/modules/device-health/liveness-index';

const env = (extra: Record<string, string> = {}) => ({ NODE_ENV: 'test', ...extra });

/** The part of a key Redis Cluster hashes: the first {…} with something in it, else the whole key. */
function hashed(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

describe('redis layout (issue 17 §6)', () => {
  it('defaults to one Redis; cluster mode takes seeds from REDIS_CLUSTER_NODES, comma-separated', () => {
    expect(loadConfig(env()).redis.mode).toBe('single');
    const c = loadConfig(env({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'redis://:pw@10.0.0.1:7000, redis://10.0.0.2:7001' }));
    expect(c.redis.clusterNodes).toEqual(['redis://:pw@10.0.0.1:7000', 'redis://10.0.0.2:7001']);
    expect(clusterSeeds(c.redis)).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      options: { password: 'pw' },
    });
    // No seeds: redis.url is the one seed.
    expect(clusterSeeds({ url: 'rediss://u:p@h:6390/0', clusterNodes: [] })).toEqual({
      nodes: [{ host: 'h', port: 6390 }],
      options: { username: 'u', password: 'p', tls: {} },
    });
  });

  it.each([
    [{ REDIS_MODE: 'sharded' }, 'redis.mode'],
    [{ REDIS_CLUSTER_NODES: 'redis://10.0.0.1:7000/2' }, 'redis.clusterNodes'],
    [{ REDIS_CLUSTER_NODES: 'http://10.0.0.1:7000' }, 'redis.clusterNodes'],
    [{ SHOUHU__LIVENESS__SHARDS: '0' }, 'liveness.shards'],
  ])('refuses %j (%s)', (e, key) => {
    expect(() => loadConfig(env(e))).toThrow(ConfigError);
    expect(() => loadConfig(env(e))).toThrow(key);
  });

  it('tags keys so that what is used together hashes together, under the key prefix', () => {
    const config = loadConfig(env({ REDIS_KEY_PREFIX: 'sh' }));
    expect(taggedKey(config, 'bull:alarms')).toBe('sh:{sh:bull:alarms}');
    const shards = shardKeys(config);
    expect(shards).toHaveLength(16);
    for (const s of shards) {
      expect(s.deadlines.startsWith('sh:')).toBe(true);
      expect(hashed(s.deadlines)).toBe(hashed(s.down));
    }
    expect(new Set(shards.map((s) => hashed(s.deadlines))).size).toBe(16);
  });

  it('computes slots as Redis Cluster does (CRC16 of the hash tag, mod 16384)', () => {
    // Values of CLUSTER KEYSLOT on redis-server 7.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('somekey')).toBe(11058);
    expect(keySlot('{foo}.bar')).toBe(12182);
    expect(keySlot('{}foo')).toBe(9500); // an empty tag: the whole key is hashed
    expect(keySlot('x{}{foo}')).toBe(9729); // only the first {…} counts, even empty
  });

  it('spreads devices evenly over the shards', () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 32_000; i++) counts[shardOf(randomUUID(), 16)]++;
    for (const n of counts) {
      expect(n).toBeGreaterThan(2000 * 0.85);
      expect(n).toBeLessThan(2000 * 1.15);
    }
    expect(shardOf(randomUUID(), 1)).toBe(0);
  });
});

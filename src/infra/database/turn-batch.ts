import DataLoader from 'dataloader';

/**
 * Reads by key where every read asked for in one event-loop turn goes to the database as one
 * query: a burst of presses or device requests parsed in the same turn costs one round trip, a
 * lone request waits for nothing (the batch runs at setImmediate, after the turn's I/O callbacks).
 * No caching across turns: each turn reads afresh (a revoked credential or a moved button is seen
 * at once). `load(keys)` returns a Map; a key it leaves out resolves to `missing(key)`: a value
 * (null for "none") or an Error, which rejects that key's callers only. A failed query rejects
 * every caller of the turn with its error. DataLoader (graphql/dataloader) does the batching.
 */
export function turnBatch<K, V>(load: (keys: readonly K[]) => Promise<Map<K, V>>, missing: (key: K) => V | Error): (key: K) => Promise<V> {
  const loader = new DataLoader<K, V>(
    async (keys) => {
      const found = await load(keys);
      return keys.map((k) => (found.has(k) ? found.get(k)! : missing(k)));
    },
    { cache: false, batchScheduleFn: (run) => setImmediate(run) },
  );
  return (key) => loader.load(key);
}

import { turnBatch } from '../../src/infra/database/turn-batch';

describe('turnBatch: the reads of one event-loop turn are one query', () => {
  it('collects the keys asked for in one turn into one load, answers each caller, and reads afresh next turn', async () => {
    const loads: string[][] = [];
    const read = turnBatch<string, number | null>(
      async (keys) => {
        loads.push([...keys]);
        return new Map(keys.filter((k) => k !== 'none').map((k) => [k, k.length]));
      },
      () => null,
    );
    // Callers in separate I/O-like callbacks of the same turn (not only the same microtask).
    const answers = await Promise.all([read('a'), new Promise<number | null>((r) => process.nextTick(() => r(read('bbb')))), read('none'), read('a')]);
    expect(answers).toEqual([1, 3, null, 1]);
    expect(loads).toEqual([['a', 'none', 'a', 'bbb']]);
    await read('a');
    expect(loads).toHaveLength(2); // no cache across turns
  });

  it('rejects only the caller of a key the load left out when `missing` gives an Error, and every caller when the query fails', async () => {
    let fail = false;
    const read = turnBatch<string, string>(
      async (keys) => {
        if (fail) throw new Error('connection terminated');
        return new Map(keys.filter((k) => k !== 'gone').map((k) => [k, k.toUpperCase()]));
      },
      (k) => new Error(`not found: ${k}`),
    );
    const [ok, gone] = await Promise.allSettled([read('x'), read('gone')]);
    expect(ok).toEqual({ status: 'fulfilled', value: 'X' });
    expect(gone).toMatchObject({ status: 'rejected', reason: { message: 'not found: gone' } });
    fail = true;
    const both = await Promise.allSettled([read('x'), read('y')]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});

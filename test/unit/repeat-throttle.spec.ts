import { RepeatThrottle } from '../../src/infra/observability/repeat-throttle';

/**
 * Log flood during a Redis outage (attack note, outage round 2): ~8 queue-worker and 2 socket.io
 * adapter warnings every 2 s per process. One kind of warning is logged the first time, then
 * summarised with a count at most once per period; the recovery line is written at once.
 */
describe('RepeatThrottle', () => {
  const setup = () => {
    let now = 0;
    const lines: [string, string][] = [];
    const sink = { warn: (m: string) => lines.push(['warn', m]), log: (m: string) => lines.push(['log', m]) };
    const th = new RepeatThrottle(sink, 'queue connections', 30_000, () => now);
    return { th, lines, at: (ms: number) => (now = ms) };
  };

  it('logs the first warning, then one summary per period with the count held back', () => {
    const { th, lines, at } = setup();
    // An outage of 60 s: 8 workers warn every 2 s.
    for (let t = 0; t < 60_000; t += 2000) {
      at(t);
      for (let q = 0; q < 8; q++) th.warn(`worker q${q}: connect ECONNREFUSED`);
    }
    expect(lines[0]).toEqual(['warn', 'worker q0: connect ECONNREFUSED']);
    expect(lines).toHaveLength(2); // the first, and a summary at 30 s
    expect(lines[1][1]).toBe('queue connections: 120 more warning(s) like this in the last 30 s; latest: worker q0: connect ECONNREFUSED');
  });

  it('writes the recovery line at once, with the count still held back before it; the next outage is logged in full again', () => {
    const { th, lines, at } = setup();
    at(0);
    th.warn('worker alarms: Connection is closed.');
    at(5000);
    th.warn('worker video: Connection is closed.');
    th.recovered('queue workers: connected to redis again');
    expect(lines).toEqual([
      ['warn', 'worker alarms: Connection is closed.'],
      ['warn', 'queue connections: 1 more warning(s) like this in the last 5 s; latest: worker video: Connection is closed.'],
      ['log', 'queue workers: connected to redis again'],
    ]);
    th.recovered('again'); // not in an outage: nothing
    at(9000);
    th.warn('worker alarms: connect ECONNREFUSED');
    expect(lines.at(-1)).toEqual(['warn', 'worker alarms: connect ECONNREFUSED']);
    expect(lines).toHaveLength(4);
  });
});

import type { AppConfig } from '../../src/config/config';
import { IntakePressure } from '../../src/modules/alarms/intake-pressure';

/** IntakePressure: a sliding one-second count of device alarm events, and a bounded wait for it to fall. */
describe('IntakePressure', () => {
  const make = (atPerSecond: number, maxSeconds: number) => {
    const p = new IntakePressure({ alarms: { yieldToIntakeAtPerSecond: atPerSecond, yieldToIntakeMaxSeconds: maxSeconds } } as AppConfig);
    let now = 1_000_000;
    p.now = () => now;
    return { p, advance: (ms: number) => (now += ms) };
  };

  it('counts the events of the last second only (ten 100 ms buckets)', () => {
    const { p, advance } = make(5, 1);
    for (let i = 0; i < 4; i++) p.note();
    expect(p.perSecond()).toBe(4);
    expect(p.pressed()).toBe(false);
    advance(500);
    p.note();
    expect(p.perSecond()).toBe(5);
    expect(p.pressed()).toBe(true);
    advance(600); // the first four fell out of the window, the fifth is 600 ms old
    expect(p.perSecond()).toBe(1);
    advance(60_000); // a long quiet spell clears everything, however many buckets it skipped
    expect(p.perSecond()).toBe(0);
  });

  it('0 never yields', async () => {
    const { p } = make(0, 1);
    for (let i = 0; i < 1000; i++) p.note();
    expect(p.pressed()).toBe(false);
    expect(await p.yieldToIntake()).toBe(0);
  });

  it('waits while pressed, never past yieldToIntakeMaxSeconds, and not once shutdown began', async () => {
    const held = new IntakePressure({ alarms: { yieldToIntakeAtPerSecond: 1, yieldToIntakeMaxSeconds: 1 } } as AppConfig);
    held.note();
    const keep = setInterval(() => held.note(), 50); // pressed all along: the wait ends at the bound
    try {
      const t0 = Date.now();
      const waited = await held.yieldToIntake();
      expect(waited).toBeGreaterThanOrEqual(950);
      expect(Date.now() - t0).toBeLessThan(1500);
      const closing = held.yieldToIntake();
      held.beforeApplicationShutdown();
      expect(await closing).toBeLessThan(300);
    } finally {
      clearInterval(keep);
    }
  });

  it('goes on as soon as the burst is over', async () => {
    const p = new IntakePressure({ alarms: { yieldToIntakeAtPerSecond: 3, yieldToIntakeMaxSeconds: 10 } } as AppConfig);
    for (let i = 0; i < 3; i++) p.note(); // pressed now; nothing more arrives: the window empties within a second
    expect(p.pressed()).toBe(true);
    const waited = await p.yieldToIntake();
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThan(1300);
  });
});

import { performance } from 'node:perf_hooks';
import { TurnBudget } from '../../src/infra/lifecycle/turn-budget';

describe('TurnBudget', () => {
  it('lets other callbacks run during a long loop that ticks, and does not yield while the turn lasts', async () => {
    const budget = new TurnBudget(5);
    let ranAt: number | null = null;
    setImmediate(() => (ranAt = performance.now()));
    const start = performance.now();
    let ticks = 0;
    while (performance.now() - start < 40) {
      await budget.tick();
      ticks++;
    }
    const end = performance.now();
    expect(ranAt).not.toBeNull(); // another callback ran before the loop ended
    expect(ranAt!).toBeLessThan(end);
    expect(ticks).toBeGreaterThan(100); // ticks that had time left resolved at once (not one yield per row)
  });

  it('does not yield at all when the work is shorter than the budget', async () => {
    const budget = new TurnBudget(1000);
    let ran = false;
    setImmediate(() => (ran = true));
    for (let i = 0; i < 1000; i++) await budget.tick();
    expect(ran).toBe(false);
  });
});

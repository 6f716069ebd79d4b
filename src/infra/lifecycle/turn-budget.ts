import { performance } from 'node:perf_hooks';

/**
 * Cuts a long synchronous stretch (a loop over tens of thousands of import rows) into event-loop turns
 * of at most `budgetMs`, so that alarm intake and console delivery run in between (issue 12 §3: console
 * p99 during a 50,000-row import ≤ 100 ms). By time, not by a row count: how long a row takes depends
 * on the machine and its load. `await budget.tick()` inside the loop costs one clock read while the turn
 * lasts and yields (setImmediate: after the turn's I/O callbacks) once it is spent.
 */
export class TurnBudget {
  private started = performance.now();

  constructor(private readonly budgetMs: number) {}

  /** Resolves at once while this turn has time left; otherwise after the event loop has had its turn. */
  async tick(): Promise<void> {
    if (performance.now() - this.started < this.budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.started = performance.now();
  }
}

/** The turn length long loops on a request path use (ms): well below the 100 ms an operator's console may wait. */
export const REQUEST_TURN_BUDGET_MS = 4;

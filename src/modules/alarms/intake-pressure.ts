import { BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { intakeMetrics } from './alarms.metrics';

/** Buckets of the sliding one-second window (100 ms each). */
const BUCKETS = 10;
const BUCKET_MS = 100;
/** How often a yielding caller looks again (ms). */
const POLL_MS = 100;

/**
 * How hard this process's alarm intake is pressed: device alarm events (button presses, GB/T 28181
 * alarms) that arrived in the last second. Work that can come a little later — the incident
 * evidence rounds (src/modules/video) — yields to it: at a mass event (an earthquake at school
 * time) every alarm taken and shown on the console comes before the pictures of the alarms already
 * shown. Measured (alarms bench, burst of 1,000 presses/s): the evidence rounds' statements and
 * console updates took about half of the service's CPU per alarm and the burst was taken at
 * half the rate. A yielded round is late and says so (alarms.evidenceLateToleranceSeconds).
 * Per process: with several api nodes each yields to its own intake.
 */
@Injectable()
export class IntakePressure implements BeforeApplicationShutdown {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private bucketAt = 0;
  private closing = false;
  private readonly threshold: number;
  private readonly maxYieldMs: number;
  /** The clock (tests move it). */
  now: () => number = Date.now;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.threshold = config.alarms.yieldToIntakeAtPerSecond;
    this.maxYieldMs = config.alarms.yieldToIntakeMaxSeconds * 1000;
  }

  /** A device alarm event arrived. */
  note(): void {
    this.roll();
    this.counts[this.bucketAt % BUCKETS]++;
  }

  /** Device alarm events that arrived in the last second (ten 100 ms buckets, the current one included). */
  perSecond(): number {
    this.roll();
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** Whether intake is pressed past alarms.yieldToIntakeAtPerSecond (never with 0). */
  pressed(): boolean {
    return this.threshold > 0 && this.perSecond() >= this.threshold;
  }

  /**
   * Waits while intake is pressed, at most alarms.yieldToIntakeMaxSeconds (then goes on whatever
   * the pressure: nothing waits without bound) and not past the start of shutdown. Resolves with
   * the milliseconds waited (0 at once when intake is not pressed).
   */
  async yieldToIntake(): Promise<number> {
    if (!this.pressed()) {
      intakeMetrics.yieldWait.observe(0);
      return 0;
    }
    const start = this.now();
    while (!this.closing && this.pressed() && this.now() - start < this.maxYieldMs)
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, this.maxYieldMs - (this.now() - start))));
    const waited = this.now() - start;
    intakeMetrics.yieldWait.observe(waited / 1000);
    return waited;
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  /** Moves the window to now, clearing the buckets that fell out of it. */
  private roll(): void {
    const at = Math.floor(this.now() / BUCKET_MS);
    if (at === this.bucketAt) return;
    const steps = Math.min(at - this.bucketAt, BUCKETS);
    for (let i = 1; i <= steps; i++) this.counts[(this.bucketAt + i) % BUCKETS] = 0;
    this.bucketAt = at;
  }
}

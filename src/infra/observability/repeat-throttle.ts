/** Where the throttle writes (a Nest Logger fits). */
export interface ThrottleSink {
  warn(message: string): void;
  log(message: string): void;
}

/**
 * One kind of warning that repeats while something is down (a Redis outage: every queue worker and
 * the socket.io adapter report each reconnect attempt — about ten lines every 2 s per process). The
 * first occurrence is logged as it is; the ones after it are counted and summarised at most once per
 * `everyMs` ("N more like this in the last S s; latest: …"), when the next one arrives. `recovered`
 * writes the held-back count and the recovery line at once: the recovery is never hidden or delayed.
 * No timers: nothing to clean up on shutdown.
 */
export class RepeatThrottle {
  private active = false;
  private held = 0;
  private windowStart = 0;
  private latest = '';

  constructor(
    private readonly sink: ThrottleSink,
    private readonly what: string,
    private readonly everyMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(message: string): void {
    const t = this.now();
    if (!this.active) {
      this.active = true;
      this.held = 0;
      this.windowStart = t;
      this.sink.warn(message);
      return;
    }
    this.held++;
    this.latest = message;
    if (t - this.windowStart >= this.everyMs) this.flush(t);
  }

  /** Back to normal: the count still held, then `message` (if any), both now; the next warning is logged in full again. */
  recovered(message?: string): void {
    if (!this.active) return;
    if (this.held) this.flush(this.now());
    this.active = false;
    if (message) this.sink.log(message);
  }

  private flush(t: number): void {
    const s = Math.max(1, Math.round((t - this.windowStart) / 1000));
    this.sink.warn(`${this.what}: ${this.held} more warning(s) like this in the last ${s} s; latest: ${this.latest}`);
    this.held = 0;
    this.windowStart = t;
  }
}

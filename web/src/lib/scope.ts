/**
 * Everything a login session starts — intervals, timeouts, the socket — registers here, and
 * logout ends it all at once: no timer of a finished session can fire later (the old console
 * showed "登录已过期" 30 s after a logout because one interval was never stopped).
 */
export class Scope {
  private readonly cleanups = new Set<() => void>();
  private done = false;

  get ended(): boolean {
    return this.done;
  }

  /** Timers and other resources still held (tests check it is 0 after logout). */
  get active(): number {
    return this.cleanups.size;
  }

  interval(fn: () => void, ms: number): () => void {
    if (this.done) return () => undefined;
    const id = setInterval(fn, ms);
    return this.onEnd(() => clearInterval(id));
  }

  timeout(fn: () => void, ms: number): () => void {
    if (this.done) return () => undefined;
    let cancel = (): void => undefined;
    const id = setTimeout(() => {
      cancel();
      fn();
    }, ms);
    cancel = this.onEnd(() => clearTimeout(id));
    return cancel;
  }

  /** Runs `fn` when the scope ends; the returned function runs it now and forgets it. */
  onEnd(fn: () => void): () => void {
    if (this.done) {
      fn();
      return () => undefined;
    }
    const once = () => {
      if (this.cleanups.delete(once)) fn();
    };
    this.cleanups.add(once);
    return once;
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    for (const fn of [...this.cleanups]) fn();
    this.cleanups.clear();
  }
}

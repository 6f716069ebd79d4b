/**
 * What is still closing during a graceful shutdown, by name, so that a shutdown that runs out of
 * time (ops.shutdownDeadlineMs) can say what did not close. Closers wrap their work in `closing`;
 * `withinMs` bounds one step so that a dead dependency (Redis down: quit never answers) does not
 * hold up the rest.
 */
const pending = new Set<string>();

/** Runs `fn` as the named closing step; the name is listed by `stillClosing()` until it settles. */
export async function closing<T>(name: string, fn: () => Promise<T>): Promise<T> {
  pending.add(name);
  try {
    return await fn();
  } finally {
    pending.delete(name);
  }
}

/** The closing steps that have not finished yet. */
export function stillClosing(): string[] {
  return [...pending];
}

/** `p`, or `'timeout'` after `ms` (the timer does not keep the process alive). */
export function withinMs<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * SIGTERM/SIGINT: close the app (every module's shutdown hook, the HTTP server), then exit 0.
 * If that takes longer than `deadlineMs` (ops.shutdownDeadlineMs; e.g. Redis is down and a
 * connection never answers QUIT), exit 1 with a message naming the steps still closing — a
 * restart never hangs. A second signal exits at once.
 */
export function exitOnSignals(app: { close(): Promise<void> }, deadlineMs: number, log: (level: 'info' | 'error', msg: string) => void): void {
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started) {
      log('error', `${signal} again: exiting now; not closed: ${stillClosing().join(', ') || 'none named'}`);
      process.exit(1);
    }
    started = true;
    const t0 = Date.now();
    log('info', `${signal}: shutting down (deadline ${deadlineMs} ms)`);
    const timer = setTimeout(() => {
      const left = stillClosing();
      log(
        'error',
        `shutdown deadline of ${deadlineMs} ms passed; not closed: ${left.length ? left.join(', ') : 'none named (a module hook without a name)'}; exiting`,
      );
      process.exit(1);
    }, deadlineMs);
    closing('http server and module hooks', () => app.close()).then(
      () => {
        clearTimeout(timer);
        log('info', `stopped after ${signal} in ${Date.now() - t0} ms`);
        process.exit(0);
      },
      (e: Error) => {
        clearTimeout(timer);
        log('error', `shutdown failed: ${e.message}; not closed: ${stillClosing().join(', ') || 'none named'}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

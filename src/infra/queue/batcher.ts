/**
 * Folds calls that arrive together into one call of a batch function (one transaction, one query
 * per kind, one queue round trip), the way intake group-commits presses. A call waits at most one
 * event-loop turn while a slot is free; while `maxConcurrent` batches run, calls gather and go
 * together when one ends — so under a burst (500 escalations falling due at once) the work is a
 * few batches of up to `maxBatch` instead of hundreds of single transactions queueing for
 * connections, and alone a call costs one turn.
 *
 * `fn` answers one result per item, in order; an `Error` in its answer rejects that item's call
 * only (a job retried on its own); a thrown error rejects every call of the batch (each job is
 * retried — handlers are idempotent). The batch runs in the async context of the call that
 * started it (AsyncLocalStorage: a job's calls stay on the jobs pool).
 */
export class Batcher<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly fn: (items: I[]) => Promise<(O | Error)[]>,
    private readonly opts: { maxBatch: number; maxConcurrent: number },
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.opts.maxConcurrent || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.running < this.opts.maxConcurrent && this.pending.length) {
      const batch = this.pending.splice(0, this.opts.maxBatch);
      this.running++;
      void this.fn(batch.map((b) => b.item))
        .then(
          (out) =>
            batch.forEach((b, i) => {
              const o = out[i];
              if (o instanceof Error) b.reject(o);
              else b.resolve(o);
            }),
          (e: unknown) => batch.forEach((b) => b.reject(e)),
        )
        .finally(() => {
          this.running--;
          this.schedule();
        });
    }
  }
}

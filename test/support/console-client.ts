import { io, Socket } from 'socket.io-client';

export interface Envelope {
  seq: number;
  v: number;
  type: string;
  at: string;
  schoolId: string | null;
  payload: Record<string, unknown> & { incidentId?: string };
  late?: true;
}

export interface Snapshot {
  seq: number;
  incidents: { id: string; status: string }[];
  devices: unknown;
}

/**
 * A console as a browser would run it: remembers the last seq it saw, dedupes by seq, resumes
 * with `auth.lastSeq` on every (re)connect. Keeps what arrived, for assertions.
 */
export class TestConsole {
  socket: Socket;
  /** Every `event` as it arrived (duplicates included). */
  arrivals: Envelope[] = [];
  /** After dedupe by seq, in arrival order. */
  events: Envelope[] = [];
  snapshots: Snapshot[] = [];
  lives: number[] = [];
  /** An event arrived with a seq lower than one already seen and not seen before, not flagged late: a reorder. */
  reorders: number[] = [];
  /** Events flagged `late` (the server went on without them past console.gapMaxWaitMs) that arrived below lastSeq. */
  lateArrivals: number[] = [];
  lastSeq = 0;
  private seen = new Set<number>();
  /** Accounted for up to here (the initial lastSeq, the last snapshot's seq, or the server's `live`/`through`), but `watched`. */
  private floor = 0;
  /** Held seqs the server watches (its last `live`/`through`). */
  private watched: number[] = [];
  /** Every `through` as it arrived. */
  throughs: { seq: number; watched: number[] }[] = [];

  /** Seqs below lastSeq never received, within the server's window, watched ones first (as the web client sends them). */
  gaps(): number[] {
    const out = this.watched.filter((q) => q < this.lastSeq && q > this.lastSeq - 10_000 && !this.seen.has(q)).slice(-1000);
    for (let q = this.lastSeq - 1; q > Math.max(this.floor, this.lastSeq - 10_000) && out.length < 1000; q--) if (!this.seen.has(q)) out.push(q);
    return out;
  }
  private waiters: (() => void)[] = [];

  /**
   * `transports`: websocket only by default; `['polling']` polls as the web console does when a websocket cannot
   * get through (with cookies kept, as a browser would: a load balancer's stickiness cookie).
   */
  constructor(url: string, token: string, opts: { lastSeq?: number; reconnection?: boolean; transports?: ('websocket' | 'polling')[] } = {}) {
    this.lastSeq = opts.lastSeq ?? 0;
    this.floor = this.lastSeq;
    this.socket = io(`${url}/console`, {
      transports: opts.transports ?? ['websocket'],
      withCredentials: opts.transports?.includes('polling') ?? false,
      reconnection: opts.reconnection ?? false,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      auth: (cb) => cb({ token, lastSeq: this.lastSeq, gaps: this.gaps() }),
    });
    this.socket.on('event', (e: Envelope) => {
      this.arrivals.push(e);
      if (!this.seen.has(e.seq)) {
        if (e.seq < this.lastSeq) (e.late ? this.lateArrivals : this.reorders).push(e.seq);
        this.seen.add(e.seq);
        this.events.push(e);
        this.lastSeq = Math.max(this.lastSeq, e.seq);
      }
      this.notify();
    });
    this.socket.on('snapshot', (s: Snapshot) => {
      this.snapshots.push(s);
      this.lastSeq = s.seq;
      this.floor = s.seq;
      this.watched = [];
      this.notify();
    });
    this.socket.on('live', (m: { seq: number; watched?: number[] }) => {
      this.lives.push(m.seq);
      this.floor = Math.max(this.floor, m.seq);
      this.watched = m.watched ?? [];
      this.notify();
    });
    this.socket.on('through', (m: { seq: number; watched: number[] }) => {
      this.throughs.push(m);
      this.floor = Math.max(this.floor, m.seq);
      this.watched = m.watched;
      this.notify();
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `check()` holds (re-checked on every message), or rejects after timeoutMs. */
  async until(check: () => boolean, what = 'condition', timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`console: timed out waiting for ${what} (have ${this.events.length} events, lastSeq ${this.lastSeq})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Caught up `n` times (the n-th `live` marker arrived; one per connect or resume). */
  async ready(n = 1): Promise<this> {
    await this.until(() => this.lives.length >= n, `live #${n}`);
    return this;
  }

  emitAck<T = unknown>(name: string, ...args: unknown[]): Promise<T> {
    return new Promise((resolve) => this.socket.emit(name, ...args, (a: T) => resolve(a)));
  }

  close(): void {
    this.socket.close();
  }
}

/** Resolves with the connect_error message, or 'connected'. */
export function tryConnect(url: string, opts: object): Promise<string> {
  return new Promise((resolve) => {
    const s = io(`${url}/console`, { ...opts, transports: ['websocket'], reconnection: false });
    s.on('connect', () => {
      s.close();
      resolve('connected');
    });
    s.on('connect_error', (e) => {
      s.close();
      resolve(e.message);
    });
  });
}

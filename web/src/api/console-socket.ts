import { io, type Socket } from 'socket.io-client';
import type { RefreshResult } from './http';
import type {
  ActionAnswer,
  ActionName,
  ActionPayloads,
  AnyConsoleEvent,
  ClientToServerEvents,
  ServerToClientEvents,
  Snapshot,
  SystemState,
} from './console-protocol';

export type ConnState = 'offline' | 'connecting' | 'online';

export interface ConsoleConnectionOptions {
  token(): string | null;
  /** Get a fresh access token (the server refused or ended the session for an expired one). */
  refresh(): Promise<RefreshResult>;
  /** The server refused to renew the session: log out. */
  expired(): void;
  onState(s: ConnState): void;
  onSnapshot(s: Snapshot): void;
  /** Each event once, in seq order (replays and live delivery overlap; duplicates are dropped here). */
  onEvent(e: AnyConsoleEvent): void;
  /** The server's degraded state (Redis, database, queue backlog, police relay): on connect and on change. */
  onSystemState?(s: SystemState): void;
  /** Socket.IO path prefix (default same origin). */
  url?: string;
  actionTimeoutMs?: number;
  /** Wait before retrying a renewal the server could not answer. */
  renewRetryMs?: number;
}

/** The server's CONSOLE_GAPS_WINDOW / CONSOLE_GAPS_MAX (console.gateway.ts). */
const GAP_WINDOW = 10_000;
const GAPS_MAX = 1000;

const AUTH_CODES = new Set(['AUTH.TOKEN_EXPIRED', 'AUTH.TOKEN_REVOKED', 'AUTH.TOKEN_INVALID', 'AUTH.UNAUTHENTICATED']);

/**
 * The typed console socket (namespace /console). Delivery contract (see the gateway): every
 * event has a `seq`; on each (re)connect we send the highest seq we hold as `auth.lastSeq` and get
 * the events after it (a replay) or a snapshot, then `live`. Anything at or below our seq is a
 * duplicate and dropped, except an event flagged `late` (taken once); the seqs below lastSeq we
 * never got are sent as `auth.gaps`, and those that exist come back flagged late. `online` means caught up and live, not merely connected.
 */
export class ConsoleConnection {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
  private stopped = false;
  private renewTimer: ReturnType<typeof setTimeout> | null = null;
  lastSeq = 0;
  /** Seqs received within the last GAP_WINDOW (to name the gaps on a reconnect, and take a late one once). */
  private readonly seen = new Set<number>();
  /** Everything up to here is accounted for (the snapshot's seq, or the server's `live`/`through`), but `watched`. */
  private floor = 0;
  /** Seqs the server passed over (held, not committed yet) as of its last `live`/`through`: they may follow flagged late. */
  private watched: number[] = [];

  /**
   * Seqs below lastSeq we never got (rolled back, or held and delivered late while we were away):
   * asked for on reconnect. Those the server said it watches first, then any past its last
   * `through` — not every unseen seq: a school's console never gets the other schools' events, and
   * naming those crowded its own held ones out of the GAPS_MAX it may name.
   */
  private gaps(): number[] {
    const out = this.watched.filter((q) => q < this.lastSeq && q > this.lastSeq - GAP_WINDOW && !this.seen.has(q)).slice(-GAPS_MAX);
    for (let q = this.lastSeq - 1; q > Math.max(this.floor, this.lastSeq - GAP_WINDOW) && out.length < GAPS_MAX; q--) if (!this.seen.has(q)) out.push(q);
    return out;
  }

  /** The server's word on what was sent (`live`, `through`): below `seq`, only `watched` may still come. */
  private accounted(seq: number, watched: number[] = []): void {
    this.floor = Math.max(this.floor, seq);
    this.watched = watched;
  }

  constructor(private readonly opts: ConsoleConnectionOptions) {}

  start(): void {
    this.stopped = false;
    this.opts.onState('connecting');
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(`${this.opts.url ?? ''}/console`, {
      transports: ['websocket', 'polling'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      // Called on every (re)connect: the current token and the last seq we hold.
      auth: (cb) => cb({ token: this.opts.token(), lastSeq: this.lastSeq, gaps: this.gaps() }),
    });
    this.socket = socket;
    socket.on('connect', () => this.opts.onState('connecting')); // online once caught up (`live`)
    socket.on('live', (l) => {
      this.accounted(l.seq, l.watched);
      this.opts.onState('online');
    });
    socket.on('through', (t) => this.accounted(t.seq, t.watched));
    socket.on('system_state', (s) => this.opts.onSystemState?.(s));
    socket.on('snapshot', (s) => {
      this.lastSeq = s.seq;
      this.floor = s.seq; // the snapshot stands for everything up to its seq
      this.watched = [];
      this.seen.clear();
      this.opts.onSnapshot(s);
    });
    socket.on('event', (e) => {
      // Below our seq: a duplicate — unless flagged late (its transaction committed after later
      // events were sent; the server went on without it) and not seen yet: taken once.
      if (e.seq <= this.lastSeq && (!e.late || this.seen.has(e.seq))) return; // a late one may sit below the snapshot's seq too
      this.lastSeq = Math.max(this.lastSeq, e.seq);
      this.seen.add(e.seq);
      if (this.seen.size > 2 * GAP_WINDOW) for (const q of this.seen) if (q <= this.lastSeq - GAP_WINDOW) this.seen.delete(q);
      this.opts.onEvent(e);
    });
    socket.on('disconnect', (reason) => {
      this.opts.onState('offline');
      // The server ended the session (token expired or revoked, or catch-up failed): renew, then reconnect ourselves.
      if (reason === 'io server disconnect') void this.renewAndConnect();
    });
    socket.on('connect_error', (err) => {
      this.opts.onState('offline');
      const code = (err as Error & { data?: { code?: string } }).data?.code ?? err.message;
      if (AUTH_CODES.has(code)) void this.renewAndConnect();
      // Otherwise socket.io keeps retrying by itself (active), unless it gave up.
      else if (!socket.active) setTimeout(() => !this.stopped && socket.connect(), 2000);
    });
  }

  /** Renew the token, then reconnect; while the server cannot renew it (5xx, network), keep trying. */
  private async renewAndConnect(): Promise<void> {
    if (this.stopped || this.renewTimer) return;
    const r = await this.opts.refresh();
    if (this.stopped) return;
    if (r === 'ok') this.socket?.connect();
    else if (r === 'invalid') this.opts.expired();
    else {
      this.renewTimer = setTimeout(() => {
        this.renewTimer = null;
        void this.renewAndConnect();
      }, this.opts.renewRetryMs ?? 3000);
    }
  }

  /** The server keeps the session alive with the new token (same user). */
  reauth(token: string): void {
    if (this.socket?.connected) this.socket.emit('reauth', { token }, () => undefined);
  }

  get connected(): boolean {
    return !!this.socket?.connected;
  }

  /** An operator action; the server answers in the ack (same rules and errors as REST). */
  act<A extends ActionName>(name: A, payload: ActionPayloads[A]): Promise<ActionAnswer> {
    const socket = this.socket;
    if (!socket?.connected) return Promise.resolve({ ok: false, error: { status: 0, code: 'NETWORK', message: 'offline' } });
    return new Promise((resolve) => {
      const ack = (err: Error | null, answer: ActionAnswer) =>
        resolve(err ? { ok: false, error: { status: 0, code: 'TIMEOUT', message: err.message } } : answer);
      // The payload type is checked by this method's signature; socket.io's emit cannot follow a generic event name.
      socket.timeout(this.opts.actionTimeoutMs ?? 10000).emit(name as 'incident:note', payload as ActionPayloads['incident:note'], ack);
    });
  }

  /** Drops the transport as a network failure would (the client reconnects by itself). For tests and drills. */
  dropTransport(): void {
    this.socket?.io.engine?.close();
  }

  stop(): void {
    this.stopped = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.socket?.removeAllListeners();
    this.socket?.close();
    this.socket = null;
    this.opts.onState('offline');
  }
}

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { ConsoleConfig } from '../../config/sections';
import { CONSOLE_EVENTS_CHANNEL, ConsoleEventType, SCHOOL_ONLY_EVENTS } from '../console-events';
import { consoleMetrics } from './console.metrics';

/** A console event as sent to clients (one socket.io event name: `event`). */
export interface ConsoleEnvelope {
  seq: number;
  v: number;
  type: ConsoleEventType;
  at: string;
  schoolId: string | null;
  payload: unknown;
  /**
   * Set on an event delivered after later ones: its transaction held its seq longer than
   * console.gapMaxWaitMs, so the feed went on without it (a client takes it once, though its seq
   * is below the last it saw).
   */
  late?: true;
}

interface EventRow {
  seq: string;
  v: number;
  type: ConsoleEventType;
  at: Date;
  school_id: string | null;
  payload: unknown;
}

/** Running top-level xids of this database's other sessions (a transaction holding a seq has one). */
const RUNNING_XIDS_SQL = `SELECT coalesce(array_agg(backend_xid::text), '{}') AS running FROM pg_stat_activity
  WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()`;

const toEnvelope = (r: EventRow): ConsoleEnvelope => ({
  seq: Number(r.seq),
  v: r.v,
  type: r.type,
  at: new Date(r.at).toISOString(),
  schoolId: r.school_id,
  payload: r.payload,
});

/**
 * Reads console_events in seq order and hands each new event, exactly once and in order, to
 * its subscribers (the gateway of this api process). Woken by LISTEN (Postgres sends NOTIFY on
 * commit) and by a periodic poll (a NOTIFY sent while the listening connection was down is
 * lost; the poll catches up).
 *
 * Seqs are drawn when a row is inserted, not when it commits, so seq 11 can become visible
 * before seq 10. The feed therefore only advances over a contiguous prefix. A missing seq is
 * either still in flight (wait for it) or rolled back (never comes): it is skipped once every
 * transaction of this database that was running when the gap was seen has ended, and a read
 * begun after that was seen still lacks it. (That second read matters: the list of running
 * transactions is read a moment after the rows' snapshot, and a transaction committing in that
 * moment looks ended while its row was not visible yet — skipping then lost committed events.)
 * ConsoleEventsService makes sure a transaction owns an xid before it draws a seq, so the one
 * holding a missing seq is among them. Only this database's transactions count: a long
 * transaction elsewhere on the server does not hold up delivery.
 *
 * Nor may one slow transaction of ours hold up every console (GA/T 368: an alarm on screen within
 * 2 s): a gap still open after console.gapMaxWaitMs is passed over and its seqs are watched as
 * "late" — delivered (flagged `late`) when they commit, forgotten when every transaction that
 * could hold them has ended without them. Who held it is logged (pid, application, its query).
 *
 * Every api process runs its own feed and delivers to its own sockets only (see the gateway).
 */
@Injectable()
export class ConsoleFeed implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ConsoleFeed');
  private readonly cfg: ConsoleConfig;
  private listener?: Client;
  private timer?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private stopped = false;
  private started = false;
  private ready: Promise<void> = Promise.resolve();
  private running?: Promise<void>;
  private again = false;
  /** The first visible seq past a hole, the xids that may hold it, since when, and whether they were all seen ended (the next read decides). */
  private gap?: { upTo: number; running: string[]; since: number; ended: boolean };
  /** Seqs passed over while a transaction that may hold them was still running → those transactions' xids (empty once seen ended). */
  private readonly late = new Map<number, string[]>();
  private readonly subscribers: ((events: ConsoleEnvelope[]) => void)[] = [];
  /**
   * Committed rows read past a gap and not yet delivered, by seq. A gap is the rule in a burst (a
   * group of presses holds its seqs until its COMMIT), and each commit's NOTIFY starts a round:
   * reading every row past the gap again at each round parsed ~24 rows per event delivered (29,049
   * rows for 1,221 presses in a 300/s bench burst). Committed rows do not change, so a round reads
   * only the seqs it has not kept. At most 4 × console.deliveryBatchSize are kept (the highest
   * dropped: read again later).
   */
  private readonly ahead = new Map<number, EventRow>();
  /** The last seq handed to subscribers: everything up to it was delivered (or was a hole). */
  cursor = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
  ) {
    this.cfg = config.console;
  }

  /** Seqs passed over (held past console.gapMaxWaitMs) and still watched for. */
  get watchedLate(): number {
    return this.late.size;
  }

  /** The highest `max` seqs passed over and still watched for (they may yet commit and follow, flagged late), ascending. */
  watchedLateSeqs(max: number): number[] {
    return [...this.late.keys()].sort((a, b) => a - b).slice(-max);
  }

  subscribe(fn: (events: ConsoleEnvelope[]) => void): void {
    this.subscribers.push(fn);
  }

  async onApplicationBootstrap(): Promise<void> {
    // Start at the end: consoles get older events by replay (from the table), not from the feed.
    // But a transaction still running now (another process's) may hold a seq below that end and
    // commit later: the start is final only once every transaction running now has ended.
    const [{ max }] = await this.db.query(`SELECT coalesce(max(seq), 0)::bigint AS max FROM console_events`);
    const running = await this.runningXids();
    this.ready = this.waitUntilEnded(running).then(() => {
      this.cursor = Number(max);
      this.started = true;
      this.wake();
    });
    await this.listen().catch((e) => this.onListenerLost(e as Error));
    this.timer = setInterval(() => this.wake(), this.cfg.pollMs);
    this.timer.unref();
  }

  /** Resolves once the feed's start is final (normally at once; at most the longest transaction running at boot). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Top-level transaction ids now running in this database (other sessions). */
  private async runningXids(): Promise<string[]> {
    const [{ running }] = await this.db.query(RUNNING_XIDS_SQL);
    return running;
  }

  private async waitUntilEnded(xids: string[]): Promise<void> {
    while (xids.length && !this.stopped) {
      // A failed read (Postgres restarting, the pool busy) is tried again; one failing because we are shutting down ends it.
      const now = await this.runningXids().then(
        (r) => new Set(r),
        () => null,
      );
      if (now && !xids.some((x) => now.has(x))) return;
      await new Promise((r) => setTimeout(r, now ? 20 : 200));
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.reconnectTimer);
    await this.running?.catch(() => undefined);
    await this.listener?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const c = new Client({ connectionString: this.config.database.url, application_name: 'shouhu-console-feed' });
    this.listener = c;
    c.on('notification', () => this.wake());
    c.on('error', (e) => this.onListenerLost(e));
    c.on('end', () => this.onListenerLost(new Error('connection ended')));
    await c.connect();
    await c.query(`LISTEN ${CONSOLE_EVENTS_CHANNEL}`);
    this.wake(); // whatever committed while we were not listening
  }

  private onListenerLost(e: Error): void {
    if (this.stopped || this.reconnectTimer) return;
    this.logger.warn(`console feed listener lost (${e.message}); reconnecting`);
    const old = this.listener;
    this.listener = undefined;
    old?.removeAllListeners();
    old?.on('error', () => undefined);
    void old?.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped) this.listen().catch((err) => this.onListenerLost(err as Error));
    }, 1000);
    this.reconnectTimer.unref();
  }

  /** Runs a delivery round now, or once more after the one in progress. */
  wake(): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          while ((await this.round()) && !this.stopped);
        } catch (e) {
          if (!this.stopped) this.logger.warn(`console feed round failed: ${(e as Error).message}`);
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
  }

  /** One read; returns true when a full batch was delivered (more may be waiting). */
  private async round(): Promise<boolean> {
    const limit = this.cfg.deliveryBatchSize;
    // One statement: the rows not kept from an earlier round, and the transactions running when they were read.
    const kept = [...this.ahead.keys()];
    const fresh = await this.readWithRunning(`seq > $1 AND seq <> ALL($3::bigint[]) ORDER BY seq LIMIT $2`, [this.cursor, limit, kept]);
    const { running } = fresh[0];
    const read = fresh.filter((r) => r.seq !== null); // no new rows: the LEFT JOIN's empty side
    consoleMetrics.rowsRead.inc(read.length);
    // A full read may have stopped short of rows below kept ones: only seqs up to its last are known to be all there is.
    const full = read.length === limit;
    const upTo = full ? Number(read[read.length - 1].seq) : Infinity;
    const rows = [...read, ...[...this.ahead.values()].filter((r) => Number(r.seq) <= upTo)].sort((a, b) => Number(a.seq) - Number(b.seq));
    const out: ConsoleEnvelope[] = this.late.size ? await this.lateArrivals() : [];
    let blocked = false;
    for (const r of rows) {
      const seq = Number(r.seq);
      if (seq !== this.cursor + 1) {
        const g = this.gap?.upTo === seq ? this.gap : undefined;
        if (g?.ended) {
          // Its possible holders had all ended before this read began, and it still lacks the seqs: rolled back.
          this.gap = undefined;
        } else if (g && Date.now() - g.since >= this.cfg.gapMaxWaitMs) {
          // Held too long: go on without it, and watch for it.
          this.passOver(
            this.cursor + 1,
            seq - 1,
            g.running.filter((x) => running.includes(x)),
          );
          this.gap = undefined;
        } else {
          if (g)
            g.ended = !g.running.some((x) => running.includes(x)); // decided by the next read
          else this.gap = { upTo: seq, running, since: Date.now(), ended: false };
          blocked = true;
          break;
        }
      }
      this.cursor = seq;
      out.push(toEnvelope(r));
    }
    if (out.length) {
      for (const fn of this.subscribers) {
        try {
          fn(out);
        } catch (e) {
          this.logger.error(`console subscriber failed: ${(e as Error).message}`);
        }
      }
    }
    this.keepAhead(read);
    if (blocked && this.gap) this.scheduleGapCheck(50);
    else if (this.late.size) this.scheduleGapCheck(250); // held seqs: their commit's NOTIFY wakes us anyway
    return !blocked && full;
  }

  /** Keeps this round's rows past the cursor (not delivered: behind a gap) for the next rounds; forgets delivered ones. */
  private keepAhead(read: EventRow[]): void {
    for (const q of this.ahead.keys()) if (q <= this.cursor) this.ahead.delete(q);
    for (const r of read) if (Number(r.seq) > this.cursor) this.ahead.set(Number(r.seq), r);
    const max = this.cfg.deliveryBatchSize * 4;
    if (this.ahead.size > max) {
      const drop = [...this.ahead.keys()].sort((a, b) => b - a).slice(0, this.ahead.size - max);
      for (const q of drop) this.ahead.delete(q);
    }
  }

  /** Rows of console_events matching `where` (over $1…), with this database's xids running just after the rows' snapshot (a gap's possible holders). */
  private readWithRunning(where: string, params: unknown[]): Promise<(EventRow & { running: string[] })[]> {
    return this.db.query(
      `SELECT e.*, r.running
       FROM (${RUNNING_XIDS_SQL}) r
       LEFT JOIN LATERAL (SELECT seq, v, type, at, school_id, payload FROM console_events WHERE ${where}) e ON true`,
      params,
    );
  }

  /** Watch seqs from..to as late; log who held them. At most console.lateMax watched (the oldest dropped, said). */
  private passOver(from: number, to: number, holders: string[]): void {
    for (let q = Math.max(from, to - this.cfg.lateMax + 1); q <= to; q++) this.late.set(q, holders);
    let dropped = 0;
    for (const q of this.late.keys()) {
      if (this.late.size <= this.cfg.lateMax) break;
      this.late.delete(q);
      dropped++;
    }
    consoleMetrics.gapsPassedOver.inc();
    void this.describe(holders).then((who) =>
      this.logger.warn(
        `console events ${from}..${to} held longer than ${this.cfg.gapMaxWaitMs} ms by ${who}: later events go on, these follow when committed` +
          (dropped ? ` (${dropped} older watched seqs dropped)` : ''),
      ),
    );
  }

  /** The sessions holding these xids, for the log (best effort). */
  private async describe(xids: string[]): Promise<string> {
    if (!xids.length) return 'a transaction that has since ended';
    try {
      const rows: { pid: number; app: string; state: string; secs: number; query: string }[] = await this.db.query(
        `SELECT pid, application_name AS app, state, extract(epoch FROM now() - xact_start)::int AS secs, left(query, 120) AS query
         FROM pg_stat_activity WHERE backend_xid::text = ANY($1)`,
        [xids],
      );
      return rows.length
        ? rows.map((r) => `pid ${r.pid} (${r.app || '?'}, ${r.state}, ${r.secs} s: ${r.query})`).join('; ')
        : 'a transaction that has since ended';
    } catch (e) {
      return `xids ${xids.join(',')} (${(e as Error).message})`;
    }
  }

  /** Watched seqs that committed since (delivered, flagged late), and those whose holders all ended without them (forgotten). */
  private async lateArrivals(): Promise<ConsoleEnvelope[]> {
    const seqs = [...this.late.keys()];
    const rows = await this.readWithRunning(`seq = ANY($1::bigint[]) ORDER BY seq`, [seqs]);
    const { running } = rows[0];
    const out: ConsoleEnvelope[] = [];
    for (const r of rows) {
      if (r.seq === null) break;
      this.late.delete(Number(r.seq));
      out.push({ ...toEnvelope(r), late: true });
    }
    // Holders seen ended in an earlier read and still missing now: rolled back. Seen ended only now: the next read decides.
    for (const [q, holders] of this.late) {
      if (!holders.length) this.late.delete(q);
      else if (!holders.some((x) => running.includes(x))) this.late.set(q, []);
    }
    if (out.length) consoleMetrics.lateDelivered.inc(out.length);
    return out;
  }

  /** A gap usually closes within milliseconds (its transaction commits and NOTIFYs); re-check soon anyway. */
  private scheduleGapCheck(ms: number): void {
    setTimeout(() => this.wake(), ms).unref();
  }

  /** Events in (after, upTo], oldest first, optionally of one school only. */
  async read(after: number, upTo: number, schoolId: string | null, limit: number): Promise<ConsoleEnvelope[]> {
    const rows: EventRow[] = await this.db.query(
      `SELECT seq, v, type, at, school_id, payload FROM console_events
       WHERE seq > $1 AND seq <= $2 AND ($3::uuid IS NULL AND type <> ALL($5) OR school_id = $3) ORDER BY seq LIMIT $4`,
      [after, upTo, schoolId, limit, SCHOOL_ONLY_EVENTS],
    );
    return rows.map(toEnvelope);
  }

  /** The events with these seqs that exist (a console's gaps), oldest first, optionally of one school only. */
  async readSeqs(seqs: number[], schoolId: string | null): Promise<ConsoleEnvelope[]> {
    const rows: EventRow[] = await this.db.query(
      `SELECT seq, v, type, at, school_id, payload FROM console_events
       WHERE seq = ANY($1::bigint[]) AND ($2::uuid IS NULL AND type <> ALL($3) OR school_id = $2) ORDER BY seq`,
      [seqs, schoolId, SCHOOL_ONLY_EVENTS],
    );
    return rows.map(toEnvelope);
  }

  /**
   * Can a console that last saw `lastSeq` catch up by replay, or does it need a snapshot? It needs
   * one when its last event is older than the replay window or already pruned, or when it missed
   * more than replayMaxEvents events.
   */
  async canReplay(lastSeq: number, upTo: number, schoolId: string | null): Promise<boolean> {
    if (lastSeq <= 0) return false; // a fresh console: a snapshot is what it needs
    // Away longer than the replay window (its last event is older, or pruned): a snapshot — decided
    // before looking at this process's cursor, so the answer does not depend on whether the feed has
    // read the newest commits yet.
    const [last] = await this.db.query(`SELECT at FROM console_events WHERE seq <= $1 ORDER BY seq DESC LIMIT 1`, [lastSeq]);
    if (!last || new Date(last.at).getTime() < Date.now() - this.cfg.replayWindowSeconds * 1000) return false;
    // Count what it missed up to the newest stored event, not just up to this process's cursor (which
    // may lag the newest commits by a moment); a seq beyond anything stored comes from another
    // database (a reset): start over from a snapshot.
    const [{ max }] = await this.db.query(`SELECT coalesce(max(seq), 0)::bigint AS max FROM console_events`);
    if (lastSeq > Number(max)) return false;
    const [{ n }] = await this.db.query(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM console_events WHERE seq > $1 AND seq <= $2 AND ($3::uuid IS NULL AND type <> ALL($5) OR school_id = $3) LIMIT $4) x`,
      [lastSeq, Math.max(upTo, Number(max)), schoolId, this.cfg.replayMaxEvents + 1, SCHOOL_ONLY_EVENTS],
    );
    return n <= this.cfg.replayMaxEvents;
  }
}

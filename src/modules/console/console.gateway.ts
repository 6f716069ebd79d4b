import { Inject, Logger, OnApplicationShutdown } from '@nestjs/common';
import { OnGatewayInit, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Namespace, Socket } from 'socket.io';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { ConsoleConfig } from '../../config/sections';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { closing } from '../../infra/lifecycle/shutdown';
import { RepeatThrottle } from '../../infra/observability/repeat-throttle';
import { createRedis, quitWithin, type RedisClient, redisKey } from '../../infra/redis/redis.module';
import { IncidentLifecycleService, IncidentQueriesService, OPEN_STATUSES } from '../alarms';
import { scopedSchoolId } from '../../infra/access/scope';
import { RevocationsService, TokenService } from '../auth';
import type { AuthUser } from '../../infra/access/roles';
import { DeviceHealthQueries } from '../device-health';
import { ActionAnswer, CONSOLE_ACTIONS, toActionError, validatePayload } from './console-actions';
import { ConsoleEnvelope, ConsoleFeed } from './console-feed.service';
import { SCHOOL_ONLY_EVENTS } from '../console-events';
import { consoleMetrics } from './console.metrics';
import { ConsoleLimits } from './console-limits';
import { ConsoleStateService, SystemState } from './console-state';

export const DISTRICT_ROOM = 'district';
export const schoolRoom = (schoolId: string) => `school:${schoolId}`;

type SessionUser = AuthUser & { exp: number };

/** One connected console. */
interface Session {
  socket: Socket;
  user: SessionUser;
  /** The room it belongs to once live (district, or its school). */
  room: string;
  /** School filter for replays and buffered events (null = district-wide). */
  scope: string | null;
  /** While it catches up (replay or snapshot): the live events that arrive meanwhile. */
  buffer: ConsoleEnvelope[] | null;
  /** Resumes of one socket run one after another. */
  chain: Promise<void>;
  generation: number;
  expiry?: NodeJS.Timeout;
  /** The access token in use: re-verified for revocation before actions and periodically. */
  token: string;
  revocationCheck?: NodeJS.Timeout;
}

const fail = (e: unknown): ActionAnswer => ({ ok: false, error: toActionError(e) });

/** Client-reported gaps (`gaps`: seqs below lastSeq it never received), at most CONSOLE_GAPS_MAX within CONSOLE_GAPS_WINDOW of lastSeq; anything else is ignored. */
export const CONSOLE_GAPS_MAX = 1000;
export const CONSOLE_GAPS_WINDOW = 10_000;
function readGaps(raw: unknown, lastSeq: number): number[] {
  if (!Array.isArray(raw) || lastSeq <= 0) return [];
  const out = new Set<number>();
  for (const g of raw.slice(0, CONSOLE_GAPS_MAX))
    if (typeof g === 'number' && Number.isSafeInteger(g) && g < lastSeq && g > lastSeq - CONSOLE_GAPS_WINDOW && g > 0) out.add(g);
  return [...out];
}

/**
 * The console's socket.io endpoint (namespace /console).
 *
 * Authentication: in the handshake (`auth: { token, lastSeq?, gaps? }` or an Authorization: Bearer
 * header); anything else is refused before the connection opens. Control-center roles join the
 * district room, school staff their school's room only. When the access token's `exp` passes,
 * the server sends `auth_expired` and disconnects; a console refreshes its token before that and
 * sends `reauth { token }` (same user) to extend the session.
 *
 * Delivery (at least once, in order, no gaps; clients dedupe by `seq`): every event is
 * persisted in console_events before it is sent. On connect (or `resume { lastSeq }`) a console
 * first catches up — the events after its lastSeq from the table, in order, or a `snapshot`
 * (open incidents, device summary, the seq it stands for) when it was away too long or has no
 * lastSeq — while the live events arriving meanwhile are buffered; then the buffer (events
 * newer than what it was sent) and `live { seq }`, and it joins its room for live events.
 * An event whose transaction held its seq past console.gapMaxWaitMs arrives after later ones,
 * flagged `late`; a console that was away meanwhile names the seqs below its lastSeq it never got
 * (`gaps`, the last CONSOLE_GAPS_WINDOW seqs) and gets those that exist first, flagged late —
 * the only way to catch one it missed, since its lastSeq is past it (and another process may
 * never have seen it late). `live { seq, watched }` and, at most every console.throughMs while
 * events flow, `through { seq, watched }` say which seqs a console has no reason to name: every
 * event of its scope up to `seq` was sent to it, except the `watched` seqs (passed over, not
 * committed yet). A school's console skips the other schools' seqs, and naming those crowded its
 * own held seqs out of the CONSOLE_GAPS_MAX it may name.
 *
 * Known limitation, kept on purpose (issue 12 review): seqs are district-wide, so a school's console
 * learns how many events the district had — from `through` (sent to every live room while any
 * event flows: the district's volume about once a second), from `live`/`snapshot` (the cursor; a
 * `resume {}` asks for one), and from the distance between its own events' seqs. Never which school,
 * type or content. Giving school sessions their own last seq instead of the cursor would stop the
 * first two only, at a price in delivery: a quiet school (no event of its own in the replay window)
 * would get a snapshot on every reconnect instead of a replay, and a held seq of its own could again
 * be crowded out of the gaps it names in the moment between its next event and the next `through`.
 * The real fix is a sequence per school for school sessions (seq, gaps and replay per scope).
 *
 * Several api processes: each runs its own ConsoleFeed and emits to its own sockets only
 * (`server.local`). Every process reads the table anyway (for replays), nothing depends on a
 * leader being alive, and since a socket lives on exactly one process, each event reaches each
 * socket once. Emitting through the Redis adapter instead would deliver it once per process.
 * The Redis adapter is still attached so that rooms span processes for anything that is not an
 * event of the log (fetchSockets, disconnecting a user everywhere, the Redis emitter).
 */
@WebSocketGateway({ namespace: '/console', cors: { origin: true, credentials: true } })
export class ConsoleGateway implements OnGatewayInit, OnApplicationShutdown {
  private readonly logger = new Logger('ConsoleGateway');
  private readonly cfg: ConsoleConfig;
  private readonly catchingUp = new Set<Session>();
  private readonly sessions = new Set<Session>();
  private readonly adapterClients: RedisClient[] = [];
  private readonly limits: ConsoleLimits;
  /** The pending `through` (console.throughMs after the first batch delivered since the last one). */
  private throughTimer?: NodeJS.Timeout;
  @WebSocketServer() server: Namespace;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(RevocationsService) private readonly revocations: RevocationsService,
    private readonly feed: ConsoleFeed,
    private readonly lifecycle: IncidentLifecycleService,
    private readonly incidents: IncidentQueriesService,
    private readonly devices: DeviceHealthQueries,
    private readonly state: ConsoleStateService,
  ) {
    this.cfg = config.console;
    this.limits = new ConsoleLimits(config.console);
  }

  afterInit(nsArg: unknown): void {
    const ns = nsArg as Namespace;
    this.server ??= ns;
    if (this.cfg.redisAdapter) {
      // The publisher is bounded (a broadcast with Redis down fails rather than piles up); the subscriber waits.
      // On a Redis Cluster the adapter uses sharded pub/sub (Redis ≥ 7: SPUBLISH/SSUBSCRIBE): a message
      // goes to the one master owning its channel's slot instead of being broadcast over the cluster
      // bus to every node — the classic PUBLISH would make every node carry every console broadcast.
      const sharded = this.config.redis.mode === 'cluster';
      const pub = createRedis(this.config.redis, `shouhu-${this.config.role}-io-pub`, this.config.redis);
      const sub = createRedis(this.config.redis, `shouhu-${this.config.role}-io-sub`, undefined, { shardedSubscribers: sharded });
      // Both report every reconnect attempt while Redis is down: the first, then a summary per log.repeatSummaryMs.
      const warnings = new RepeatThrottle(this.logger, 'socket.io redis adapter', this.config.log.repeatSummaryMs);
      for (const c of [pub, sub]) {
        c.on('error', (e) => warnings.warn(`socket.io redis adapter: ${e.message}`));
        c.on('ready', () => warnings.recovered('socket.io redis adapter: connected to redis again'));
      }
      this.adapterClients.push(pub, sub);
      const key = redisKey(this.config, this.cfg.adapterKey);
      ns.server.adapter(sharded ? createShardedAdapter(pub, sub, { channelPrefix: key }) : createAdapter(pub, sub, { key }));
    }
    ns.use(async (socket: Socket, next) => {
      const fromAuth = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      const header = socket.handshake.headers.authorization;
      const token = typeof fromAuth === 'string' ? fromAuth : header?.startsWith('Bearer ') ? header.slice(7) : undefined;
      if (!token) return next(Object.assign(new Error(ErrorCode.AUTH.UNAUTHENTICATED), { data: { code: ErrorCode.AUTH.UNAUTHENTICATED } }));
      try {
        const user = await this.tokens.verifyAccess(token);
        if (user.role === 'school_security' && !user.schoolId) throw Errors.forbidden(ErrorCode.AUTH.FORBIDDEN, 'school staff without a school');
        const refused = this.limits.admit(user.jti, user.id);
        if (refused) return next(Object.assign(new Error(refused.code), { data: { code: refused.code, ...refused.details } }));
        socket.data.user = user;
        socket.data.token = token;
        next();
      } catch (e) {
        const code = (e as { code?: string }).code ?? ErrorCode.AUTH.TOKEN_INVALID;
        next(Object.assign(new Error(code), { data: { code } }));
      }
    });
    ns.on('connection', (socket: Socket) => this.onConnection(socket));
    // The degraded-state banner: every console hears of a change at once.
    this.state.onChange((st) => {
      for (const s of this.sessions) s.socket.emit('system_state', this.stateFor(s, st));
    });
    // A logout, password change or disabled account (in any api process: pushed by Postgres NOTIFY,
    // auth.revocationSyncMs at worst) closes the affected consoles at once (issue 12 §12).
    this.revocations.onRevoked((r) => {
      for (const s of this.sessions)
        if (r.kind === 'token' ? s.user.jti === r.jti || s.user.session === r.jti : s.user.id === r.userId) void this.stillValid(s);
    });
    this.feed.subscribe((events) => this.deliver(events));
    this.logger.log('console gateway ready on /console');
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.throughTimer);
    await closing('socket.io redis adapter', () => Promise.all(this.adapterClients.map((c) => quitWithin(c, this.config.redis.commandTimeoutMs))));
  }

  private onConnection(socket: Socket): void {
    const user = socket.data.user as SessionUser;
    const scope = scopedSchoolId(user);
    const s: Session = {
      socket,
      user,
      token: socket.data.token as string,
      scope,
      room: scope ? schoolRoom(scope) : DISTRICT_ROOM,
      buffer: null,
      chain: Promise.resolve(),
      generation: 0,
    };
    consoleMetrics.connected.inc();
    this.sessions.add(s);
    this.armExpiry(s);
    // Revocations close the session as they are heard of (afterInit); this check is the backstop.
    s.revocationCheck = setInterval(() => void this.stillValid(s), this.cfg.revocationCheckSeconds * 1000).unref();
    socket.emit('system_state', this.stateFor(s, this.state.current));
    socket.emit('session', {
      v: 1,
      user: { id: user.id, username: user.username, role: user.role, schoolId: user.schoolId },
      tokenExpiresAt: new Date(user.exp * 1000).toISOString(),
    });
    socket.on('disconnect', () => {
      consoleMetrics.connected.dec();
      this.sessions.delete(s);
      this.limits.release(user.jti, user.id);
      clearTimeout(s.expiry);
      clearInterval(s.revocationCheck);
      this.catchingUp.delete(s);
      s.buffer = null;
    });
    socket.on('resume', (p: unknown) => {
      const limited = this.limits.take(socket.id, user.id); // a catch-up reads the event log: not on every whim
      if (limited) socket.emit('rate_limited', { code: limited.code, message: limited.message, ...limited.details });
      else this.resume(s, (p as { lastSeq?: unknown } | null)?.lastSeq, (p as { gaps?: unknown } | null)?.gaps);
    });
    socket.on('reauth', (p: unknown, ack?: unknown) => void this.reauth(s, p, ack));
    for (const [name, action] of Object.entries(CONSOLE_ACTIONS)) {
      socket.on(name, async (payload: unknown, ack?: unknown) => {
        // A client that sends only a callback: the payload is missing.
        if (typeof payload === 'function' && ack === undefined) [payload, ack] = [undefined, payload];
        const answer = typeof ack === 'function' ? (ack as (a: ActionAnswer) => void) : () => undefined;
        const limited = this.limits.take(socket.id, s.user.id);
        if (limited) {
          consoleMetrics.actions.inc({ action: name, result: limited.code });
          return answer(fail(limited));
        }
        try {
          const invalid = await this.stillValid(s, false);
          if (invalid) {
            answer(fail(invalid));
            if ((invalid as { code?: string }).code === ErrorCode.AUTH.TOKEN_REVOKED) this.endRevoked(s); // after the answer is on its way
            return;
          }
          const dto = await validatePayload(action.dto as never, payload);
          answer({ ok: true, incident: await action.run(this.lifecycle, s.user, dto) });
          consoleMetrics.actions.inc({ action: name, result: 'ok' });
        } catch (e) {
          const a = fail(e);
          if (!a.ok && a.error.status >= 500) this.logger.error(`console action ${name} failed: ${(e as Error).stack ?? e}`);
          consoleMetrics.actions.inc({ action: name, result: a.ok ? 'ok' : a.error.code });
          answer(a);
        }
      });
    }
    const hello = socket.handshake.auth as { lastSeq?: unknown; gaps?: unknown } | undefined;
    this.resume(s, hello?.lastSeq, hello?.gaps);
  }

  /**
   * Re-verifies the session's token (expiry and revocation, from memory: RevocationsService). A revoked one ends
   * the session; the error is returned for an action's answer.
   */
  private async stillValid(s: Session, endIfRevoked = true): Promise<unknown> {
    try {
      await this.tokens.verifyAccess(s.token);
      return null;
    } catch (e) {
      if (endIfRevoked && (e as { code?: string }).code === ErrorCode.AUTH.TOKEN_REVOKED) this.endRevoked(s);
      return e;
    }
  }

  /** School staff see whether the system is degraded, not the district's police-relay count. */
  private stateFor(s: Session, st: SystemState): SystemState {
    return s.scope ? { ...st, policeRelayFailing: 0 } : st;
  }

  private endRevoked(s: Session): void {
    if (!s.socket.connected) return;
    s.socket.emit('auth_expired', { code: ErrorCode.AUTH.TOKEN_REVOKED, message: 'Session revoked: log in again' });
    // Let the notice (and any action answer) flush before closing.
    setImmediate(() => s.socket.disconnect(true));
  }

  /** Disconnects the console when its token expires (unless it re-authenticated before). */
  private armExpiry(s: Session): void {
    clearTimeout(s.expiry);
    const ms = Math.max(0, s.user.exp * 1000 - Date.now());
    s.expiry = setTimeout(
      () => {
        s.socket.emit('auth_expired', { code: ErrorCode.AUTH.TOKEN_EXPIRED, message: 'Access token expired: log in or refresh, then reconnect' });
        s.socket.disconnect(true);
      },
      Math.min(ms, 2 ** 31 - 1),
    );
    s.expiry.unref();
  }

  private async reauth(s: Session, payload: unknown, ack: unknown): Promise<void> {
    const answer = typeof ack === 'function' ? (ack as (a: unknown) => void) : () => undefined;
    try {
      const token = (payload as { token?: unknown } | null)?.token;
      if (typeof token !== 'string') throw Errors.validation([{ field: 'token', reason: 'must be a string' }]);
      const user = await this.tokens.verifyAccess(token);
      // A session keeps its identity and scope; another user connects anew.
      if (user.id !== s.user.id || user.role !== s.user.role || user.schoolId !== s.user.schoolId)
        throw Errors.forbidden(ErrorCode.AUTH.FORBIDDEN, 'token of another user');
      s.user = user;
      s.token = token;
      this.armExpiry(s);
      answer({ ok: true, tokenExpiresAt: new Date(user.exp * 1000).toISOString() });
    } catch (e) {
      answer(fail(e));
    }
  }

  /** Catch-up, then live. A later resume supersedes an earlier one still running. */
  private resume(s: Session, lastSeqRaw: unknown, gapsRaw?: unknown): void {
    const lastSeq = typeof lastSeqRaw === 'number' && Number.isSafeInteger(lastSeqRaw) && lastSeqRaw > 0 ? lastSeqRaw : 0;
    const gaps = readGaps(gapsRaw, lastSeq);
    const gen = ++s.generation;
    // Leave the room now: from here on, live events for this console go to its buffer.
    void s.socket.leave(s.room);
    s.buffer = [];
    this.catchingUp.add(s);
    s.chain = s.chain
      .then(() => this.catchUp(s, lastSeq, gen, gaps))
      .catch((e) => {
        this.logger.warn(`console catch-up failed for ${s.user.username}: ${(e as Error).message}`);
        s.socket.emit('resync_failed', { code: ErrorCode.CONSOLE.RESYNC_FAILED, message: 'Catch-up failed; reconnecting' });
        s.socket.disconnect(true);
      });
  }

  private async catchUp(s: Session, lastSeq: number, gen: number, gaps: number[] = []): Promise<void> {
    await this.feed.whenReady();
    if (gen !== s.generation || !s.socket.connected) return;
    const target = this.feed.cursor;
    let sent: number;
    const replayed = new Set<number>();
    if (await this.feed.canReplay(lastSeq, target, s.scope)) {
      // Seqs below its lastSeq the console never got (held past console.gapMaxWaitMs and delivered
      // late while it was away, or by a process that never saw them as late): those that exist now, flagged late.
      if (gaps.length) {
        const missed = await this.feed.readSeqs(gaps, s.scope);
        if (gen !== s.generation || !s.socket.connected) return;
        for (const e of missed) {
          s.socket.emit('event', { ...e, late: true });
          replayed.add(e.seq);
        }
      }
      let after = lastSeq;
      for (;;) {
        const page = await this.feed.read(after, target, s.scope, this.cfg.replayPageSize);
        if (gen !== s.generation || !s.socket.connected) return;
        for (const e of page) {
          s.socket.emit('event', e);
          replayed.add(e.seq);
        }
        consoleMetrics.replayed.inc(page.length);
        if (page.length < this.cfg.replayPageSize) break;
        after = page[page.length - 1].seq;
      }
      sent = Math.max(lastSeq, target);
    } else {
      const snapshot = await this.snapshot(s.user, target);
      if (gen !== s.generation || !s.socket.connected) return;
      s.socket.emit('snapshot', snapshot);
      consoleMetrics.snapshots.inc();
      sent = target;
    }
    // From here to join, nothing awaits: no live event can slip between the buffer and the room.
    // A late event (held past console.gapMaxWaitMs) may sit below what was sent: it goes too, unless
    // the replay already had it; the client takes a late seq once.
    for (const e of s.buffer ?? []) {
      if (e.seq > sent) {
        s.socket.emit('event', e);
        sent = e.seq;
      } else if (e.late && !replayed.has(e.seq)) s.socket.emit('event', e); // below lastSeq too: it may be one of its gaps, committed after they were read (the client takes a seq once)
    }
    s.buffer = null;
    this.catchingUp.delete(s);
    void s.socket.join(s.room);
    // Everything of its scope up to the feed's cursor was sent, but held seqs (they follow flagged late).
    s.socket.emit('live', { seq: Math.max(sent, target), watched: this.feed.watchedLateSeqs(CONSOLE_GAPS_MAX) });
  }

  /** What a console starts from when it cannot replay: open incidents and the device summary. */
  private async snapshot(user: SessionUser, seq: number) {
    const [incidents, devices] = await Promise.all([
      this.incidents.list(user, { status: OPEN_STATUSES, limit: this.cfg.snapshotMaxIncidents }, this.cfg.snapshotMaxIncidents, this.cfg.snapshotMaxIncidents),
      this.devices.summary({ schoolId: scopedSchoolId(user) ?? undefined }, 200, 0),
    ]);
    return { v: 1, seq, at: new Date().toISOString(), incidents: incidents.items, incidentsTotal: incidents.total, devices };
  }

  /** Live delivery of one feed batch to this process's sockets; empty rooms cost nothing. */
  private deliver(events: ConsoleEnvelope[]): void {
    const ns = this.server;
    const rooms = ns.adapter.rooms;
    const districtLive = (rooms.get(DISTRICT_ROOM)?.size ?? 0) > 0;
    for (const e of events) {
      const schoolOnly = SCHOOL_ONLY_EVENTS.includes(e.type);
      const targets: string[] = districtLive && !schoolOnly ? [DISTRICT_ROOM] : [];
      if (e.schoolId && (rooms.get(schoolRoom(e.schoolId))?.size ?? 0) > 0) targets.push(schoolRoom(e.schoolId));
      // One emit for both rooms: encoded once, each socket gets it once.
      if (targets.length) ns.local.to(targets).emit('event', e);
      for (const s of this.catchingUp) if (s.buffer && (s.scope === null ? !schoolOnly : s.scope === e.schoolId)) s.buffer.push(e);
    }
    consoleMetrics.delivered.inc(events.length);
    this.throughTimer ??= setTimeout(() => this.sendThrough(), this.cfg.throughMs);
  }

  /**
   * `through { seq, watched }` to every live console of this process (in its room: one catching up
   * gets `live` instead — told earlier, it could stop naming gaps its replay has not sent yet).
   */
  private sendThrough(): void {
    this.throughTimer = undefined;
    const rooms = [...this.server.adapter.rooms.keys()].filter((r) => r === DISTRICT_ROOM || r.startsWith(schoolRoom('')));
    if (rooms.length) this.server.local.to(rooms).emit('through', { seq: this.feed.cursor, watched: this.feed.watchedLateSeqs(CONSOLE_GAPS_MAX) });
  }
}

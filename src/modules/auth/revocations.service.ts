import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';

/** A revocation learned from Postgres or made here: one token (a logout) or every token of a user issued at or before `revokedBeforeMs`. */
export type Revocation = { kind: 'token'; jti: string; expiresAtMs: number } | { kind: 'user'; userId: string; revokedBeforeMs: number; expiresAtMs: number };

interface Row {
  id: string;
  kind: 'token' | 'user';
  subject: string;
  revoked_before_ms: string | null;
  expires_ms: string;
}

/** Rows written this long ago are read again on every sync: ids of concurrent transactions may commit out of order. */
const OVERLAP_SECONDS = 10;

/** The Postgres channel a revocation is announced on (NOTIFY in the transaction that writes it: heard only once it commits). Stored in no data: may be renamed with all processes. */
export const REVOCATIONS_CHANNEL = 'shouhu_token_revocations';

/**
 * Access-token revocations: Postgres (token_revocations) is the truth, this process's memory the
 * cache every request checks — no request waits on Redis or Postgres to verify a token.
 *
 * - A revocation is written to Postgres (in the caller's transaction when it has one) and applied
 *   to this process's memory at once. It is pushed to the other api processes (issue 12 §12): the
 *   same statement NOTIFYs REVOCATIONS_CHANNEL, delivered when the transaction commits, and every
 *   api process LISTENs on a connection of its own and reads the new rows as it hears one — its
 *   consoles of that token or user close at once. Reading every auth.revocationSyncMs stays as the
 *   backstop (a listener reconnecting after Postgres went away hears nothing of the meantime).
 * - Failure direction: while Postgres cannot be read, the cache keeps what it knew (revocations
 *   made elsewhere during that time take effect when the read succeeds again, at worst when the
 *   tokens expire: auth.accessTtlSeconds). A Redis outage or a Redis that comes back empty
 *   changes nothing: a logged-out token stays rejected.
 * - `onRevoked` listeners hear of each revocation once per process (the console closes the
 *   affected sockets at once).
 */
@Injectable()
export class RevocationsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Revocations');
  private readonly tokens = new Map<string, number>(); // jti → expires (ms)
  private readonly users = new Map<string, { before: number; expires: number }>();
  private readonly listeners: ((r: Revocation) => void)[] = [];
  private lastId = '0';
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private failing = false;
  private stopped = false;
  /** A notification arrived while a read ran (that read may have begun before the commit): read once more. */
  private again = false;
  private listener?: Client;
  private listening = false;
  private reconnectTimer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.role === 'worker') return; // workers verify no tokens
    // Listening first: a revocation committed between the first read and the LISTEN would otherwise wait for the poll.
    await this.listen().catch((e: Error) => this.onListenerLost(e));
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.config.auth.revocationSyncMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.reconnectTimer);
    await this.syncing;
    await this.listener?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const c = new Client({
      connectionString: this.config.database.url,
      application_name: 'shouhu-revocations',
      connectionTimeoutMillis: this.config.database.connectTimeoutMs,
    });
    this.listener = c;
    c.on('notification', () => void this.sync());
    c.on('error', (e) => this.onListenerLost(e));
    c.on('end', () => this.onListenerLost(new Error('connection ended')));
    await c.connect();
    await c.query(`LISTEN ${REVOCATIONS_CHANNEL}`);
    if (!this.listening) this.logger.log('listening for revocations from other processes');
    this.listening = true;
    void this.sync(); // whatever committed while nobody listened
  }

  /** Reconnects every second (said once per loss); meanwhile the periodic read carries revocations. */
  private onListenerLost(e: Error): void {
    if (this.stopped || this.reconnectTimer) return;
    if (this.listening) this.logger.warn(`revocation listener lost (${e.message}): reconnecting; read every ${this.config.auth.revocationSyncMs} ms meanwhile`);
    this.listening = false;
    const old = this.listener;
    this.listener = undefined;
    old?.removeAllListeners();
    old?.on('error', () => undefined);
    void old?.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped) this.listen().catch((err: Error) => this.onListenerLost(err));
    }, 1000);
    this.reconnectTimer.unref();
  }

  /** Is a token with this jti, of this user, issued at `issuedAtMs`, revoked? (memory only) */
  isRevoked(jti: string, userId: string, issuedAtMs: number): boolean {
    if (this.tokens.has(jti)) return true;
    const u = this.users.get(userId);
    return !!u && issuedAtMs <= u.before;
  }

  onRevoked(listener: (r: Revocation) => void): void {
    this.listeners.push(listener);
  }

  /** Revokes one access token until it would expire (`exp`, seconds). */
  async revokeToken(jti: string, exp: number, m?: EntityManager): Promise<void> {
    const expiresAtMs = exp * 1000;
    await (m ?? this.db).query(
      `WITH r AS (INSERT INTO token_revocations (kind, subject, expires_at) VALUES ('token', $1, to_timestamp($2 / 1000.0)) RETURNING id)
       SELECT pg_notify($3, r.id::text) FROM r`,
      [jti, expiresAtMs, REVOCATIONS_CHANNEL],
    );
    this.apply({ kind: 'token', jti, expiresAtMs });
  }

  /** Every access token of the user issued until now stops working. */
  async revokeUser(userId: string, m?: EntityManager): Promise<void> {
    const revokedBeforeMs = Date.now();
    const expiresAtMs = revokedBeforeMs + (this.config.auth.accessTtlSeconds + 5) * 1000;
    await (m ?? this.db).query(
      `WITH r AS (INSERT INTO token_revocations (kind, subject, revoked_before_ms, expires_at) VALUES ('user', $1, $2, to_timestamp($3 / 1000.0)) RETURNING id)
       SELECT pg_notify($4, r.id::text) FROM r`,
      [userId, revokedBeforeMs, expiresAtMs, REVOCATIONS_CHANNEL],
    );
    this.apply({ kind: 'user', userId, revokedBeforeMs, expiresAtMs });
  }

  /**
   * Reads revocations other processes wrote (one read at a time; failures keep the cache as it is).
   * Asked while a read runs — a notification, whose commit that read may not have seen — it reads once
   * more after it.
   */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        await this.readNew()
          .then(() => {
            if (this.failing) this.logger.log('revocations read again from Postgres');
            this.failing = false;
          })
          .catch((e: Error) => {
            if (!this.failing && !this.stopped) this.logger.warn(`revocations not read (the cache keeps what it knew): ${e.message}`);
            this.failing = true;
          });
      } while (this.again && !this.stopped && !this.failing);
    })().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async readNew(): Promise<void> {
    const rows: Row[] = await this.db.query(
      `SELECT id, kind, subject, revoked_before_ms, (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms FROM token_revocations
       WHERE (id > $1 OR created_at > now() - make_interval(secs => $2)) AND expires_at > now() ORDER BY id`,
      [this.lastId, OVERLAP_SECONDS],
    );
    for (const r of rows) {
      if (BigInt(r.id) > BigInt(this.lastId)) this.lastId = r.id;
      const expiresAtMs = Number(r.expires_ms);
      this.apply(
        r.kind === 'token'
          ? { kind: 'token', jti: r.subject, expiresAtMs }
          : { kind: 'user', userId: r.subject, revokedBeforeMs: Number(r.revoked_before_ms), expiresAtMs },
      );
    }
    const now = Date.now();
    for (const [jti, exp] of this.tokens) if (exp < now) this.tokens.delete(jti);
    for (const [id, u] of this.users) if (u.expires < now) this.users.delete(id);
  }

  private apply(r: Revocation): void {
    if (r.kind === 'token') {
      if (this.tokens.has(r.jti)) return;
      this.tokens.set(r.jti, r.expiresAtMs);
    } else {
      const known = this.users.get(r.userId);
      if (known && known.before >= r.revokedBeforeMs) return;
      this.users.set(r.userId, { before: r.revokedBeforeMs, expires: Math.max(r.expiresAtMs, known?.expires ?? 0) });
    }
    for (const l of this.listeners) {
      try {
        l(r);
      } catch (e) {
        this.logger.warn(`revocation listener failed: ${(e as Error).message}`);
      }
    }
  }

  /** Daily (with the refresh-token prune): rows past their expiry protect nothing. */
  async prune(): Promise<number> {
    const res = await this.db.query(`DELETE FROM token_revocations WHERE expires_at < now()`);
    return (res as [unknown, number])[1] ?? 0;
  }
}

import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
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

/**
 * Access-token revocations: Postgres (token_revocations) is the truth, this process's memory the
 * cache every request checks — no request waits on Redis or Postgres to verify a token.
 *
 * - A revocation is written to Postgres (in the caller's transaction when it has one) and applied
 *   to this process's memory at once; other api processes read it within auth.revocationSyncMs.
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

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.role === 'worker') return; // workers verify no tokens
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.config.auth.revocationSyncMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
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
    await (m ?? this.db).query(`INSERT INTO token_revocations (kind, subject, expires_at) VALUES ('token', $1, to_timestamp($2 / 1000.0))`, [jti, expiresAtMs]);
    this.apply({ kind: 'token', jti, expiresAtMs });
  }

  /** Every access token of the user issued until now stops working. */
  async revokeUser(userId: string, m?: EntityManager): Promise<void> {
    const revokedBeforeMs = Date.now();
    const expiresAtMs = revokedBeforeMs + (this.config.auth.accessTtlSeconds + 5) * 1000;
    await (m ?? this.db).query(
      `INSERT INTO token_revocations (kind, subject, revoked_before_ms, expires_at) VALUES ('user', $1, $2, to_timestamp($3 / 1000.0))`,
      [userId, revokedBeforeMs, expiresAtMs],
    );
    this.apply({ kind: 'user', userId, revokedBeforeMs, expiresAtMs });
  }

  /** Reads revocations other processes wrote (one at a time; failures keep the cache as it is). */
  sync(): Promise<void> {
    this.syncing ??= this.readNew()
      .then(() => {
        if (this.failing) this.logger.log('revocations read again from Postgres');
        this.failing = false;
      })
      .catch((e: Error) => {
        if (!this.failing && !this.stopped) this.logger.warn(`revocations not read (the cache keeps what it knew): ${e.message}`);
        this.failing = true;
      })
      .finally(() => (this.syncing = undefined));
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

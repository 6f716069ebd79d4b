import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, IsNull } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { currentContext } from '../../infra/http/request-context';
import { AuditService } from '../audit-log';
import { RefreshToken } from './entities/refresh-token.entity';
import { User } from './entities/user.entity';
import { dummyHash, verifyPassword } from './password';
import type { AuthUser, UserRole } from '../../infra/access/roles';
import { sha256, TokenService } from './token.service';
import { visibleName } from '../../infra/text/person-name';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: { id: string; username: string; displayName: string; role: UserRole; schoolId: string | null };
}

/** Login, refresh-token rotation and logout. */
@Injectable()
export class AuthService {
  private readonly logger = new Logger('Auth');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
  ) {}

  /**
   * Attempts are counted in Postgres (login_attempts, fixed windows of auth.loginWindowSeconds)
   * BEFORE the password is checked, in one atomic statement, so parallel attempts cannot slip past
   * the limit. Three counters: the (account, address) pair (auth.loginMaxAttemptsPerAccount), the
   * account from all addresses (auth.loginMaxAttemptsPerAccountGlobal, higher: one address cannot
   * lock an account out for everyone) and the address (auth.loginMaxAttemptsPerAddress, against
   * password spraying). Past a limit the attempt is refused with 429 AUTH.TOO_MANY_ATTEMPTS and
   * Retry-After (even with the right password) until that window ends. A successful login takes
   * its own attempt back and clears the pair. The address is the socket's, or the one the proxy
   * names when http.trustProxy is set (Express `trust proxy`: X-Forwarded-For). No Redis: logins
   * work while Redis is down.
   */
  async login(username: string, password: string, ip: string | null): Promise<TokenPair> {
    const acct = username.toLowerCase();
    const addr = ip ?? 'unknown';
    const { loginMaxAttemptsPerAccount, loginMaxAttemptsPerAccountGlobal, loginMaxAttemptsPerAddress, loginWindowSeconds } = this.config.auth;
    const keys = { pair: `pair:${acct}|${addr}`, acct: `acct:${acct}`, addr: `addr:${addr}` };
    const counted: { key: string; count: number; retry_after: number }[] = await this.db.query(
      `INSERT INTO login_attempts (key, count, window_ends)
       SELECT k, 1, now() + make_interval(secs => $2) FROM unnest($1::text[]) k
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN login_attempts.window_ends <= now() THEN 1 ELSE login_attempts.count + 1 END,
         window_ends = CASE WHEN login_attempts.window_ends <= now() THEN excluded.window_ends ELSE login_attempts.window_ends END
       RETURNING key, count, ceil(extract(epoch FROM window_ends - now()))::int AS retry_after`,
      [[keys.pair, keys.acct, keys.addr], loginWindowSeconds],
    );
    const limit: Record<string, number> = {
      [keys.pair]: loginMaxAttemptsPerAccount,
      [keys.acct]: loginMaxAttemptsPerAccountGlobal,
      [keys.addr]: loginMaxAttemptsPerAddress,
    };
    const over = counted.filter((c) => c.count > limit[c.key]);
    if (over.length) {
      const ttl = Math.max(1, ...over.map((c) => c.retry_after));
      throw Errors.tooMany(ErrorCode.AUTH.TOO_MANY_ATTEMPTS, `Too many failed logins; try again in ${ttl} s`, ttl);
    }
    const user = await this.db
      .getRepository(User)
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('lower(u.username) = lower(:username)', { username })
      .getOne();
    const ok = user ? await verifyPassword(user.passwordHash, password) : await verifyPassword(await dummyHash(), password);
    if (!user || !ok || user.disabled) {
      await this.db.transaction((m) => this.audit.record(m, { action: 'login_failed', entity: 'user', entityId: user?.id ?? null, after: { username } }));
      throw Errors.unauthorized(ErrorCode.AUTH.INVALID_CREDENTIALS, 'Wrong username or password');
    }
    await this.db.query(
      `WITH p AS (DELETE FROM login_attempts WHERE key = $1)
       UPDATE login_attempts SET count = greatest(count - 1, 0) WHERE key = ANY($2::text[])`,
      [keys.pair, [keys.acct, keys.addr]],
    );
    const ctx = currentContext();
    if (ctx) ctx.actor = { type: 'user', id: user.id, name: user.username };
    return this.db.transaction(async (m) => {
      await m.update(User, { id: user.id }, { lastLoginAt: new Date() });
      await this.audit.record(m, { action: 'login', entity: 'user', entityId: user.id, schoolId: user.schoolId });
      return this.issue(m.getRepository(RefreshToken), user, randomUUID(), ip);
    });
  }

  /**
   * Rotates the refresh token. Presenting a spent token revokes its whole family (theft), unless it was
   * spent within auth.refreshReuseGraceSeconds (a retry: refused, nothing revoked). Serialised with a
   * logout of the same session by the family's lock (lockFamily), so a refresh racing a logout either
   * finishes first — and the logout then ends what it issued — or finds the session ended.
   */
  async refresh(refreshToken: string, ip: string | null): Promise<TokenPair> {
    const result = await this.db.transaction(async (m): Promise<TokenPair | { reusedBy: string }> => {
      const repo = m.getRepository(RefreshToken);
      const invalid = () => Errors.unauthorized(ErrorCode.AUTH.REFRESH_INVALID, 'Refresh token invalid or expired');
      const hash = sha256(refreshToken);
      const found = await repo.findOne({ where: { tokenHash: hash }, select: { id: true, familyId: true } });
      if (!found) throw invalid();
      await this.lockFamily(m, found.familyId);
      // Read again under the family's lock: a logout that held it has committed, and this statement sees it.
      const row = await repo.createQueryBuilder('r').setLock('pessimistic_write').where('r.token_hash = :h', { h: hash }).getOne();
      if (!row || row.expiresAt.getTime() <= Date.now()) throw invalid();
      if (row.revokedAt && Date.now() - row.revokedAt.getTime() < this.config.auth.refreshReuseGraceSeconds * 1000)
        throw Errors.unauthorized(ErrorCode.AUTH.REFRESH_INVALID, 'Refresh token already renewed moments ago; sign in again if this client lost the answer');
      if (row.revokedAt) {
        // Commit the family revocation; the 401 is thrown after the transaction (a throw would roll it back).
        await repo.update({ familyId: row.familyId, revokedAt: IsNull() }, { revokedAt: new Date() });
        await this.audit.record(m, { action: 'refresh_reuse', entity: 'user', entityId: row.userId });
        return { reusedBy: row.userId };
      }
      const user = await m.findOneBy(User, { id: row.userId });
      if (!user || user.disabled) throw Errors.unauthorized(ErrorCode.AUTH.REFRESH_INVALID, 'Account disabled');
      await repo.update({ id: row.id }, { revokedAt: new Date() });
      return this.issue(repo, user, row.familyId, ip);
    });
    if ('reusedBy' in result) {
      await this.tokens.revokeAllForUser(result.reusedBy);
      this.logger.warn(`refresh token reuse for user ${result.reusedBy}: family revoked`);
      throw Errors.unauthorized(ErrorCode.AUTH.REFRESH_REUSED, 'Refresh token already used; sign in again');
    }
    return result;
  }

  /**
   * Ends the login session: every refresh token of its family (the access token's session, and the
   * family of `refreshToken` when one is sent) and every access token of it — the one in use and those
   * issued before the last refresh. A client that sends only its Bearer is logged out as well (attack
   * pass 7: the console's silent refresh kept such a session alive). Tokens issued before sessions were
   * carried (no fam) fall back to the token in use and the refresh token sent.
   */
  async logout(user: AuthUser & { exp?: number }, refreshToken?: string): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    await this.db.transaction(async (m) => {
      const repo = m.getRepository(RefreshToken);
      const families = new Set<string>(user.session ? [user.session] : []);
      if (refreshToken) {
        const row = await repo.findOneBy({ tokenHash: sha256(refreshToken), userId: user.id });
        if (row) families.add(row.familyId);
      }
      // Sorted: two logouts locking the same families never wait on each other in a circle.
      for (const familyId of [...families].sort()) {
        // A refresh of this session in flight finishes first; the UPDATE below (a statement begun after the
        // lock) then sees the token it issued (attack pass 8 F1: a refresh racing the logout kept the session).
        await this.lockFamily(m, familyId);
        // Ended, not stolen: the family's tokens also expire now, so a late silent refresh from the logged-out
        // page is 401 REFRESH_INVALID instead of a "reuse" that would revoke the user's other sessions.
        await m.query(
          `UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()), expires_at = least(expires_at, now())
            WHERE family_id = $1 AND user_id = $2`,
          [familyId, user.id],
        );
        await this.tokens.denyAccessToken(familyId, now + this.config.auth.accessTtlSeconds, m);
      }
      await this.tokens.denyAccessToken(user.jti, user.exp ?? now + this.config.auth.accessTtlSeconds, m);
      await this.audit.record(m, { action: 'logout', entity: 'user', entityId: user.id });
    });
  }

  /** The transaction lock of one login session (refresh-token family): refresh and logout of it take turns. */
  private async lockFamily(m: EntityManager, familyId: string): Promise<void> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtext('refresh_family:' || $1))`, [familyId]);
  }

  private async issue(repo: import('typeorm').Repository<RefreshToken>, user: User, familyId: string, ip: string | null): Promise<TokenPair> {
    const access = this.tokens.signAccess(user, familyId);
    const refresh = this.tokens.newRefreshToken();
    await repo.insert({
      userId: user.id,
      familyId,
      tokenHash: refresh.hash,
      expiresAt: new Date(Date.now() + this.config.auth.refreshTtlSeconds * 1000),
      createdIp: ip,
    });
    return {
      accessToken: access.token,
      refreshToken: refresh.token,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
      user: { id: user.id, username: user.username, displayName: visibleName(user.displayName), role: user.role, schoolId: user.schoolId },
    };
  }

  /** Daily job: spent and expired refresh tokens are of no further use. */
  async pruneRefreshTokens(olderThanDays = 1): Promise<number> {
    const res = await this.db.query(`DELETE FROM refresh_tokens WHERE expires_at < now() - make_interval(days => $1)`, [olderThanDays]);
    // Access-token revocations past the tokens' expiry, and attempt counters of ended windows, protect nothing.
    await this.db.query(`DELETE FROM token_revocations WHERE expires_at < now()`);
    await this.db.query(`DELETE FROM login_attempts WHERE window_ends < now()`);
    return (res as [unknown, number])[1] ?? 0;
  }
}

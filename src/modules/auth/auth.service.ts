import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { DataSource, IsNull } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { currentContext } from '../../infra/http/request-context';
import { REDIS, redisKey } from '../../infra/redis/redis.module';
import { AuditService } from '../audit-log';
import { RefreshToken } from './entities/refresh-token.entity';
import { User } from './entities/user.entity';
import { dummyHash, verifyPassword } from './password';
import type { AuthUser } from '../../infra/access/roles';
import { sha256, TokenService } from './token.service';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: { id: string; username: string; displayName: string; role: string; schoolId: string | null };
}

/** Login, refresh-token rotation and logout. */
@Injectable()
export class AuthService {
  private readonly logger = new Logger('Auth');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis,
    @InjectDataSource() private readonly db: DataSource,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
  ) {}

  /**
   * Failed attempts are counted per account and per address in fixed windows; past the limit
   * every attempt is refused with 429 (even with the right password) until the window ends.
   */
  async login(username: string, password: string, ip: string | null): Promise<TokenPair> {
    const acctKey = redisKey(this.config, 'auth', 'fail', 'acct', username.toLowerCase());
    const ipKey = redisKey(this.config, 'auth', 'fail', 'ip', ip ?? 'unknown');
    const [acct, addr] = await this.redis.mget(acctKey, ipKey);
    const { loginMaxAttemptsPerAccount, loginMaxAttemptsPerAddress, loginWindowSeconds } = this.config.auth;
    if (Number(acct ?? 0) >= loginMaxAttemptsPerAccount || Number(addr ?? 0) >= loginMaxAttemptsPerAddress) {
      const ttl = Math.max(await this.redis.ttl(Number(acct ?? 0) >= loginMaxAttemptsPerAccount ? acctKey : ipKey), 1);
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
      await this.redis.multi().incr(acctKey).expire(acctKey, loginWindowSeconds, 'NX').incr(ipKey).expire(ipKey, loginWindowSeconds, 'NX').exec();
      await this.db.transaction((m) => this.audit.record(m, { action: 'login_failed', entity: 'user', entityId: user?.id ?? null, after: { username } }));
      throw Errors.unauthorized(ErrorCode.AUTH.INVALID_CREDENTIALS, 'Wrong username or password');
    }
    await this.redis.del(acctKey);
    const ctx = currentContext();
    if (ctx) ctx.actor = { type: 'user', id: user.id, name: user.username };
    return this.db.transaction(async (m) => {
      await m.update(User, { id: user.id }, { lastLoginAt: new Date() });
      await this.audit.record(m, { action: 'login', entity: 'user', entityId: user.id, schoolId: user.schoolId });
      return this.issue(m.getRepository(RefreshToken), user, randomUUID(), ip);
    });
  }

  /** Rotates the refresh token. Presenting a spent token revokes its whole family (theft). */
  async refresh(refreshToken: string, ip: string | null): Promise<TokenPair> {
    const result = await this.db.transaction(async (m): Promise<TokenPair | { reusedBy: string }> => {
      const repo = m.getRepository(RefreshToken);
      const row = await repo
        .createQueryBuilder('r')
        .setLock('pessimistic_write')
        .where('r.token_hash = :h', { h: sha256(refreshToken) })
        .getOne();
      if (!row || row.expiresAt.getTime() < Date.now()) throw Errors.unauthorized(ErrorCode.AUTH.REFRESH_INVALID, 'Refresh token invalid or expired');
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

  /** Revokes the refresh token (if given) and the access token in use. */
  async logout(user: AuthUser & { exp?: number }, refreshToken?: string): Promise<void> {
    if (refreshToken) {
      await this.db.getRepository(RefreshToken).update({ tokenHash: sha256(refreshToken), userId: user.id, revokedAt: IsNull() }, { revokedAt: new Date() });
    }
    await this.tokens.denyAccessToken(user.jti, user.exp ?? Math.floor(Date.now() / 1000) + this.config.auth.accessTtlSeconds);
    await this.db.transaction((m) => this.audit.record(m, { action: 'logout', entity: 'user', entityId: user.id }));
  }

  private async issue(repo: import('typeorm').Repository<RefreshToken>, user: User, familyId: string, ip: string | null): Promise<TokenPair> {
    const access = this.tokens.signAccess(user);
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
      user: { id: user.id, username: user.username, displayName: user.displayName, role: user.role, schoolId: user.schoolId },
    };
  }

  /** Daily job: spent and expired refresh tokens are of no further use. */
  async pruneRefreshTokens(olderThanDays = 1): Promise<number> {
    const res = await this.db.query(`DELETE FROM refresh_tokens WHERE expires_at < now() - make_interval(days => $1)`, [olderThanDays]);
    return (res as [unknown, number])[1] ?? 0;
  }
}

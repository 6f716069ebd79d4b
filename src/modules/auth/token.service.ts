import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuthUser, ROLE_NAMES, UserRole } from '../../infra/access/roles';
import { RevocationsService } from './revocations.service';

interface AccessClaims {
  sub: string;
  usr: string;
  /** Display name at issue time (absent in tokens issued before it was carried). */
  dn?: string;
  role: UserRole;
  sch: string | null;
  jti: string;
  /** Issue time in milliseconds: revocation compares against it (iat has only seconds). */
  ims: number;
  exp: number;
  /** The login session (refresh-token family id); a logout revokes it as a whole. Absent on older tokens. */
  fam?: string;
  /** Set only on tokens for one narrow use (QUEUE_BOARD_AUDIENCE): never an API access token. */
  aud?: string | string[];
}

/** The audience of a queue dashboard token: valid at /admin/queues only, refused by verifyAccess (and so by /api). */
export const QUEUE_BOARD_AUDIENCE = 'shouhu:queue-board';

interface QueueBoardClaims extends AccessClaims {
  /** What the token is for (with aud): 'queue-board'. */
  pur: 'queue-board';
  /** The jti of the access token (session) it was issued to: that session's logout revokes it too. */
  sid: string;
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Short-lived access JWTs (HS256). Revocation: a logout denies the token's jti until it would
 * expire; disabling a user or a password change sets a "revoked before" time for all their tokens.
 * Both are kept by RevocationsService: Postgres the truth, each process's memory the cache a
 * request checks (no Redis on this path; see its failure direction).
 */
@Injectable()
export class TokenService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly revocations: RevocationsService,
  ) {}

  /** An access token for `user` in the login session `session` (its refresh-token family id). */
  signAccess(
    user: { id: string; username: string; displayName?: string; role: UserRole; schoolId: string | null },
    session: string,
  ): {
    token: string;
    expiresIn: number;
    jti: string;
  } {
    const jti = randomUUID();
    const expiresIn = this.config.auth.accessTtlSeconds;
    const token = jwt.sign(
      { usr: user.username, dn: user.displayName ?? '', role: user.role, sch: user.schoolId, ims: Date.now(), fam: session },
      this.config.auth.jwtSecret,
      {
        algorithm: 'HS256',
        subject: user.id,
        jwtid: jti,
        expiresIn,
        issuer: 'shouhu',
      },
    );
    return { token, expiresIn, jti };
  }

  /** Verifies signature, expiry and revocation; throws 401 with a reason code. */
  async verifyAccess(token: string): Promise<AuthUser & { exp: number }> {
    let claims: AccessClaims;
    try {
      claims = jwt.verify(token, this.config.auth.jwtSecret, { algorithms: ['HS256'], issuer: 'shouhu' }) as AccessClaims;
    } catch (e) {
      const expired = (e as Error).name === 'TokenExpiredError';
      throw Errors.unauthorized(
        expired ? ErrorCode.AUTH.TOKEN_EXPIRED : ErrorCode.AUTH.TOKEN_INVALID,
        expired ? 'Access token expired' : 'Access token invalid',
      );
    }
    // A token for one narrow use (the queue dashboard's) is not an API token.
    if (claims.aud !== undefined || (claims as Partial<QueueBoardClaims>).pur !== undefined)
      throw Errors.unauthorized(ErrorCode.AUTH.TOKEN_INVALID, 'Access token invalid');
    if (!ROLE_NAMES.includes(claims.role)) throw Errors.unauthorized(ErrorCode.AUTH.TOKEN_INVALID, 'Access token invalid');
    if (this.revoked(claims)) throw Errors.unauthorized(ErrorCode.AUTH.TOKEN_REVOKED, 'Access token revoked');
    return this.user(claims);
  }

  /**
   * A token for the queue dashboard only (audience QUEUE_BOARD_AUDIENCE, purpose 'queue-board'),
   * issued to the access token `session`: it lives ops.queueBoardTtlSeconds and never past that
   * session's expiry, and stops working when the session is revoked (logout, user disabled,
   * password change). verifyAccess refuses it, so it is no API token.
   */
  signQueueBoard(session: AuthUser & { exp: number }): { token: string; exp: number } {
    const now = Math.floor(Date.now() / 1000);
    const exp = Math.min(session.exp, now + this.config.ops.queueBoardTtlSeconds);
    const token = jwt.sign(
      {
        usr: session.username,
        dn: session.displayName,
        role: session.role,
        sch: session.schoolId,
        ims: Date.now(),
        pur: 'queue-board',
        sid: session.jti,
        fam: session.session,
        exp,
      },
      this.config.auth.jwtSecret,
      { algorithm: 'HS256', subject: session.id, jwtid: randomUUID(), issuer: 'shouhu', audience: QUEUE_BOARD_AUDIENCE },
    );
    return { token, exp };
  }

  /** Verifies a queue dashboard token: signature, expiry, audience and purpose, its own and its session's revocation; 401 otherwise (an API token too). */
  async verifyQueueBoard(token: string): Promise<AuthUser & { exp: number }> {
    let claims: QueueBoardClaims;
    try {
      claims = jwt.verify(token, this.config.auth.jwtSecret, { algorithms: ['HS256'], issuer: 'shouhu', audience: QUEUE_BOARD_AUDIENCE }) as QueueBoardClaims;
    } catch (e) {
      const expired = (e as Error).name === 'TokenExpiredError';
      throw Errors.unauthorized(
        expired ? ErrorCode.AUTH.TOKEN_EXPIRED : ErrorCode.AUTH.TOKEN_INVALID,
        expired ? 'Queue dashboard session expired: open it again from the console' : 'Queue dashboard token invalid',
      );
    }
    if (claims.pur !== 'queue-board' || typeof claims.sid !== 'string' || !ROLE_NAMES.includes(claims.role))
      throw Errors.unauthorized(ErrorCode.AUTH.TOKEN_INVALID, 'Queue dashboard token invalid');
    if (this.revoked(claims) || this.revocations.isRevoked(claims.sid, claims.sub, claims.ims))
      throw Errors.unauthorized(ErrorCode.AUTH.TOKEN_REVOKED, 'Queue dashboard session revoked');
    return this.user(claims);
  }

  /** Revoked by its own jti, by its user's "revoked before" time, or with its whole login session (fam). */
  private revoked(claims: AccessClaims): boolean {
    return (
      this.revocations.isRevoked(claims.jti, claims.sub, claims.ims) ||
      (typeof claims.fam === 'string' && this.revocations.isRevoked(claims.fam, claims.sub, claims.ims))
    );
  }

  private user(claims: AccessClaims): AuthUser & { exp: number } {
    const u: AuthUser & { exp: number } = {
      id: claims.sub,
      username: claims.usr,
      displayName: claims.dn ?? '',
      role: claims.role,
      schoolId: claims.sch,
      jti: claims.jti,
      exp: claims.exp,
    };
    if (typeof claims.fam === 'string') u.session = claims.fam;
    return u;
  }

  /**
   * The access token stops working (in `m`'s transaction when given). Also used with a login session's
   * id (refresh-token family): every access token carrying it (fam) stops working; `exp` is then the
   * latest expiry any of them can have (now + auth.accessTtlSeconds).
   */
  async denyAccessToken(jti: string, exp: number, m?: EntityManager): Promise<void> {
    await this.revocations.revokeToken(jti, exp, m);
  }

  /** Every access token of the user issued before now stops working (in `m`'s transaction when given). */
  async revokeAllForUser(userId: string, m?: EntityManager): Promise<void> {
    await this.revocations.revokeUser(userId, m);
  }

  newRefreshToken(): { token: string; hash: string } {
    const token = randomBytes(32).toString('base64url');
    return { token, hash: sha256(token) };
  }
}

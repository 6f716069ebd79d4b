import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived stream tokens: whoever opens the video WebSocket must show one, minted by
 * `POST /cameras/:id/stream` after the roles and school scope checks. HMAC-SHA256 over
 * (user, camera, school, expiry, nonce) with a key of its own, derived (HKDF) from
 * `video.tokenSecret` or else `auth.jwtSecret` — so a stream token is never a valid access
 * token and the other way round. Stateless: any process with the same config verifies it.
 */
export interface StreamClaims {
  /** User id. */
  u: string;
  /** Camera id. */
  c: string;
  /** School of the camera (recorded for audit and for the viewer list). */
  s: string;
  /** Expiry, Unix seconds. */
  e: number;
  n: string;
  /** A playback session of that camera (POST /cameras/:id/playback) instead of its live picture. */
  p?: string;
}

export type TokenProblem = 'malformed' | 'bad_signature' | 'expired' | 'wrong_camera';

export class StreamTokens {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'shouhu', 'video-stream-token-v1', 32));
  }

  mint(userId: string, cameraId: string, schoolId: string, playbackId?: string): { token: string; expiresAt: Date } {
    const e = Math.floor(this.now() / 1000) + this.ttlSeconds;
    const claims: StreamClaims = { u: userId, c: cameraId, s: schoolId, e, n: randomBytes(6).toString('base64url'), ...(playbackId ? { p: playbackId } : {}) };
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return { token: `${body}.${this.sign(body)}`, expiresAt: new Date(e * 1000) };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }

  /** The claims, or why the token is refused. `cameraId`: the camera the caller wants to play. */
  verify(token: string, cameraId?: string): StreamClaims | TokenProblem {
    if (typeof token !== 'string' || token.length > 1024) return 'malformed';
    const dot = token.indexOf('.');
    if (dot <= 0) return 'malformed';
    const body = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1));
    const want = Buffer.from(this.sign(body));
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return 'bad_signature';
    let claims: StreamClaims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return 'malformed';
    }
    if (typeof claims?.e !== 'number' || typeof claims.c !== 'string' || typeof claims.u !== 'string') return 'malformed';
    if (claims.p !== undefined && typeof claims.p !== 'string') return 'malformed';
    if (claims.e * 1000 <= this.now()) return 'expired';
    if (cameraId !== undefined && claims.c !== cameraId) return 'wrong_camera';
    return claims;
  }
}

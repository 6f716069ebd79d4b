import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * HTTP Digest (RFC 2617, as used by SIP RFC 3261 §22 and GB/T 28181 §9.1.2.1), MD5 only.
 * Passwords are stored as HA1 = MD5(user:realm:password), which is all verification needs.
 */

export const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

export function ha1(username: string, realm: string, password: string): string {
  return md5(`${username}:${realm}:${password}`);
}

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm?: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
}

/** Parses `Digest k="v", k=v, …`; null when it is not a Digest header or misses a field. */
export function parseDigest(header: string): DigestCredentials | null {
  const m = /^\s*Digest\s+(.*)$/is.exec(header);
  if (!m) return null;
  const out: Record<string, string> = {};
  const re = /([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*(?:,|$)/g;
  let match: RegExpExecArray | null;
  while ((match = re.exec(m[1])) !== null) out[match[1].toLowerCase()] = match[2] ?? match[3];
  for (const k of ['username', 'realm', 'nonce', 'uri', 'response']) if (typeof out[k] !== 'string') return null;
  if (!/^[0-9a-f]{32}$/i.test(out.response)) return null;
  // nc is 8 hex digits in RFC 2617 §3.2.2, but some firmware sends `nc=1` (issue 16 §5): 1–8 hex digits, used in the
  // response exactly as sent (the device hashed its own spelling) and compared by value for replays.
  if (out.qop !== undefined && (out.nc === undefined || out.cnonce === undefined || !/^[0-9a-f]{1,8}$/i.test(out.nc))) return null;
  return out as unknown as DigestCredentials;
}

/**
 * The response a client with HA1 must send: qop=auth, qop=auth-int (RFC 2617 §3.2.2.3: HA2 also
 * hashes the body, `body` — empty for a REGISTER), or the RFC 2069 form without qop.
 */
export function expectedResponse(h1: string, method: string, c: Pick<DigestCredentials, 'nonce' | 'uri' | 'qop' | 'nc' | 'cnonce'>, body?: Buffer): string {
  const h2 =
    c.qop?.toLowerCase() === 'auth-int'
      ? md5(
          `${method}:${c.uri}:${createHash('md5')
            .update(body ?? Buffer.alloc(0))
            .digest('hex')}`,
        )
      : md5(`${method}:${c.uri}`);
  return c.qop ? md5(`${h1}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${h2}`) : md5(`${h1}:${c.nonce}:${h2}`);
}

export function responseMatches(h1: string, method: string, c: DigestCredentials, body?: Buffer): boolean {
  const want = Buffer.from(expectedResponse(h1, method, c, body), 'latin1');
  const got = Buffer.from(c.response.toLowerCase(), 'latin1');
  return want.length === got.length && timingSafeEqual(want, got);
}

export type NonceCheck = 'ok' | 'unknown' | 'stale' | 'replay';

/**
 * Issues nonces the server can recognise (time + random + HMAC with a per-process key, so an
 * unissued or tampered nonce is refused without a table lookup) and tracks the use of each nonce
 * until it expires: with qop the highest nonce count (a repeated or lower count is a replay, RFC
 * 2617 §3.2.2), without qop (RFC 2069 form, no count to tell a replay by) a nonce is taken once —
 * a captured Authorization header replayed later got 200 and took over the device's registration
 * (attack pass 4 #3); the device answers the next 401 (stale=true) as devices do.
 *
 * A nonce is bound to what it was issued for (`bind`: the From id and the source address): the
 * HMAC covers it, so a nonce from one challenge cannot be spent on another id or from another host —
 * one 401 no longer lets a flood of REGISTERs for made-up ids each reach the device look-up (attack
 * pass 4 #1); such a REGISTER is challenged again at the cost of a hash.
 */
export class NonceTracker {
  private readonly key = randomBytes(32);
  private readonly used = new Map<string, { nc: number; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  issue(bind = ''): string {
    const t = this.now().toString(36);
    const r = randomBytes(8).toString('hex');
    return `${t}${r}${this.sign(t + r, bind)}`;
  }

  private sign(s: string, bind: string): string {
    return createHmac('sha256', this.key).update(`${s}\n${bind}`).digest('hex').slice(0, 16);
  }

  private issuedAt(nonce: string, bind: string): number | null {
    if (nonce.length < 33 || nonce.length > 64 || !/^[0-9a-z]+$/.test(nonce)) return null;
    const body = nonce.slice(0, -16);
    const mac = Buffer.from(nonce.slice(-16));
    const want = Buffer.from(this.sign(body, bind));
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return null;
    const t = parseInt(body.slice(0, -16), 36);
    return Number.isFinite(t) ? t : null;
  }

  /**
   * Validates a nonce issued for `bind` and its use: with qop its count, without qop that it was
   * not used before. Call `commit` only once the response has been verified, so a wrong guess does
   * not burn a legitimate client's nonce.
   */
  check(nonce: string, nc: string | undefined, bind = ''): NonceCheck {
    const at = this.issuedAt(nonce, bind);
    if (at === null) return 'unknown';
    if (this.now() - at > this.ttlMs) return 'stale';
    const seen = this.used.get(nonce);
    if (seen && (nc === undefined || seen.nc < 0 || parseInt(nc, 16) <= seen.nc)) return 'replay';
    return 'ok';
  }

  /** The nonce was used (verified): without qop it is spent, with qop its count recorded. */
  commit(nonce: string, nc: string | undefined, bind = ''): void {
    const at = this.issuedAt(nonce, bind) ?? this.now();
    this.used.set(nonce, { nc: nc === undefined ? -1 : parseInt(nc, 16), expiresAt: at + this.ttlMs });
  }

  /** Forgets counts of expired nonces (called by the module's housekeeping timer). */
  prune(): void {
    const now = this.now();
    for (const [k, v] of this.used) if (v.expiresAt < now) this.used.delete(k);
  }

  get tracked(): number {
    return this.used.size;
  }
}

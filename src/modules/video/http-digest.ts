import { createHash, randomBytes } from 'node:crypto';

/**
 * HTTP authentication towards cameras' snapshot URIs: Digest (RFC 7616, with RFC 2069's form when
 * the camera offers no qop) and Basic (RFC 7617), and the memory of what each camera asked last so
 * that the next picture needs one request instead of two (401, then the answer).
 *
 * Ours rather than the `onvif` package's digestAuth (which the probe still uses for its SOAP calls):
 * reusing a nonce needs a nonce count per nonce, and the package keeps one counter per Cam object,
 * never reset for a new nonce, and writes it in decimal where RFC 7616 §3.4 asks 8 hex digits
 * (request 10 would be sent as 00000010, i.e. 16).
 */

/** One Digest challenge of a WWW-Authenticate header (RFC 7616 §3.3), as far as we answer it. */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque?: string;
  /** As the camera named it (echoed back); absent: MD5. */
  algorithm?: string;
  /** 'auth' when the camera offers it; absent: RFC 2069 (no nc, no cnonce). auth-int alone is not answered. */
  qop?: 'auth';
  userhash: boolean;
  /** RFC 7616 stale=true: the nonce expired, the account was right. */
  stale: boolean;
}

/** Node's hash for each algorithm we answer (RFC 7616 §6.1); the -sess variants hash the same way. */
const HASHES: Record<string, string> = { MD5: 'md5', 'SHA-256': 'sha256', 'SHA-512-256': 'sha512-256' };
/** Stronger first, when a camera offers several (Hikvision offers MD5 and SHA-256). */
const STRENGTH = ['SHA-512-256', 'SHA-256', 'MD5'];

function baseAlgorithm(a: string | undefined): { hash: string; sess: boolean; rank: number } | null {
  const name = (a ?? 'MD5').toUpperCase();
  const sess = name.endsWith('-SESS');
  const base = sess ? name.slice(0, -5) : name;
  const hash = HASHES[base];
  return hash ? { hash, sess, rank: STRENGTH.indexOf(base) } : null;
}

/**
 * The challenges of WWW-Authenticate header values (each value may hold several: `Digest realm=…,
 * nonce=…, Basic realm=…`): the Digest ones we can answer (an algorithm we hash, qop auth or none),
 * and whether Basic is offered.
 */
export function parseChallenges(values: readonly string[]): { digest: DigestChallenge[]; basic: boolean } {
  const digest: DigestChallenge[] = [];
  let basic = false;
  for (const value of values) {
    for (const { scheme, params } of splitChallenges(value)) {
      if (scheme === 'basic') basic = true;
      if (scheme !== 'digest' || !params.realm || !params.nonce) continue;
      const alg = baseAlgorithm(params.algorithm);
      if (!alg) continue;
      let qop: 'auth' | undefined;
      if (params.qop !== undefined) {
        const offered = params.qop.split(',').map((q) => q.trim().toLowerCase());
        if (!offered.includes('auth')) continue; // auth-int only: we do not hash bodies
        qop = 'auth';
      }
      if (alg.sess && !qop) continue; // a -sess hash needs the cnonce, which only goes with a qop
      digest.push({
        realm: params.realm,
        nonce: params.nonce,
        ...(params.opaque !== undefined ? { opaque: params.opaque } : {}),
        ...(params.algorithm !== undefined ? { algorithm: params.algorithm } : {}),
        ...(qop ? { qop } : {}),
        userhash: params.userhash?.toLowerCase() === 'true',
        stale: params.stale?.toLowerCase() === 'true',
      });
    }
  }
  return { digest, basic };
}

/** The challenge to answer among several: the strongest algorithm we hash. */
export function strongest(list: readonly DigestChallenge[]): DigestChallenge | null {
  let best: DigestChallenge | null = null;
  for (const c of list) if (!best || baseAlgorithm(c.algorithm)!.rank < baseAlgorithm(best.algorithm)!.rank) best = c;
  return best;
}

/** A header value's challenges: auth-scheme tokens, each followed by its name=value parameters (quoted strings unescaped). */
function splitChallenges(value: string): { scheme: string; params: Record<string, string> }[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = value.length;
  const skip = (chars: RegExp) => {
    while (i < n && chars.test(value[i])) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(value[i])) i++;
    return value.slice(start, i);
  };
  while (i < n) {
    skip(/[\s,]/);
    const name = token();
    if (!name) {
      i++; // a character no grammar allows here: step over it
      continue;
    }
    skip(/\s/);
    if (value[i] !== '=' || !out.length) {
      out.push({ scheme: name.toLowerCase(), params: {} });
      continue;
    }
    i++; // '='
    skip(/\s/);
    let v = '';
    if (value[i] === '"') {
      i++;
      while (i < n && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < n) i++;
        v += value[i++];
      }
      i++; // closing quote
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && !/\s/.test(value[i])) i++;
      v = value.slice(start, i);
    }
    out[out.length - 1].params[name.toLowerCase()] = v;
  }
  return out;
}

const quote = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * The Authorization header answering `c` for a GET (or `method`) of `uri` (path and query), with
 * nonce count `nc` (1 for a fresh challenge, counting up while it is reused) — RFC 7616 §3.4.
 */
export function digestAuthorization(
  c: DigestChallenge,
  account: { username: string; password: string },
  method: string,
  uri: string,
  nc: number,
  cnonce = randomBytes(8).toString('hex'),
): string {
  const alg = baseAlgorithm(c.algorithm)!;
  const H = (s: string) => createHash(alg.hash).update(s, 'utf8').digest('hex');
  let ha1 = H(`${account.username}:${c.realm}:${account.password}`);
  if (alg.sess) ha1 = H(`${ha1}:${c.nonce}:${cnonce}`);
  const ha2 = H(`${method}:${uri}`);
  const ncHex = nc.toString(16).padStart(8, '0');
  const response = c.qop ? H(`${ha1}:${c.nonce}:${ncHex}:${cnonce}:${c.qop}:${ha2}`) : H(`${ha1}:${c.nonce}:${ha2}`);
  const parts = [
    `username=${quote(c.userhash ? H(`${account.username}:${c.realm}`) : account.username)}`,
    `realm=${quote(c.realm)}`,
    `uri=${quote(uri)}`,
    ...(c.algorithm !== undefined ? [`algorithm=${c.algorithm}`] : []),
    `nonce=${quote(c.nonce)}`,
    ...(c.qop ? [`nc=${ncHex}`, `cnonce=${quote(cnonce)}`, `qop=${c.qop}`] : []),
    `response=${quote(response)}`,
    ...(c.opaque !== undefined ? [`opaque=${quote(c.opaque)}`] : []),
    ...(c.userhash ? ['userhash=true'] : []),
  ];
  return `Digest ${parts.join(', ')}`;
}

export const basicAuthorization = (account: { username: string; password: string }) =>
  `Basic ${Buffer.from(`${account.username}:${account.password}`, 'utf8').toString('base64')}`;

/** What a camera asked last, kept for its next picture. */
type Asked =
  | { origin: string; scheme: 'basic' }
  | { origin: string; scheme: 'digest'; challenge: DigestChallenge; nc: number }
  /** The camera failed a remembered answer other than with a 401 (refusesReuse): it is asked afresh every time. */
  | { origin: string; scheme: 'fresh' };

/** The largest nonce count (8 hex digits): past it the challenge is dropped and the camera asks again. */
const MAX_NC = 0xffffffff;

/**
 * Per camera (its id), the last challenge it answered us with — a Digest nonce with its count, or
 * that it takes Basic — so the next picture is sent with an answer at once: one request instead of
 * a 401 and a second request. Kept only for the origin (scheme, host, port) that asked: a snapshot
 * URI moved to another host gets no account before it asks. Bounded: the `max` cameras used most
 * recently (a Map in use order); 0 keeps nothing. Holds nonces, never an account. Per process:
 * another process's first picture of a camera costs its own 401.
 */
export class CameraAuthMemory {
  private readonly asked = new Map<string, Asked>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.asked.size;
  }

  /**
   * The Authorization to send with a request of `u` before the camera asks, from what it asked
   * last; undefined when nothing is kept for that origin. A Digest answer spends the next nonce count.
   */
  authorization(camera: string, u: URL, account: { username: string; password: string }, method = 'GET'): string | undefined {
    const a = this.asked.get(camera);
    if (!a || a.origin !== u.origin) return undefined;
    this.asked.delete(camera); // re-inserted: most recently used last
    if (a.scheme !== 'digest') {
      this.asked.set(camera, a);
      return a.scheme === 'basic' ? basicAuthorization(account) : undefined;
    }
    if (a.nc >= MAX_NC) return undefined;
    a.nc += 1;
    this.asked.set(camera, a);
    return digestAuthorization(a.challenge, account, method, `${u.pathname}${u.search}`, a.nc);
  }

  /** Keeps what `u`'s origin asked for `camera` (a Digest challenge answered with nonce count 1, or Basic). */
  remember(camera: string, u: URL, asked: { scheme: 'basic' } | { scheme: 'digest'; challenge: DigestChallenge }): void {
    if (this.max <= 0) return;
    const was = this.asked.get(camera);
    if (was?.scheme === 'fresh' && was.origin === u.origin) return; // it refuses reused answers: nothing to keep
    this.asked.delete(camera);
    this.asked.set(camera, asked.scheme === 'basic' ? { origin: u.origin, scheme: 'basic' } : { origin: u.origin, ...asked, nc: 1 });
    if (this.asked.size > this.max) this.asked.delete(this.asked.keys().next().value!);
  }

  /** Drops what is kept for `camera` (its account was refused). */
  forget(camera: string): void {
    this.asked.delete(camera);
  }

  /**
   * `camera` failed a remembered answer with something other than a 401 (400, 403, a page: cameras that
   * refuse a reused nonce so): from now on it is asked afresh every time (two requests a picture, as
   * before answers were remembered), until it drops out of the memory.
   */
  refusesReuse(camera: string, u: URL): void {
    if (this.max <= 0) return;
    this.asked.delete(camera);
    this.asked.set(camera, { origin: u.origin, scheme: 'fresh' });
    if (this.asked.size > this.max) this.asked.delete(this.asked.keys().next().value!);
  }
}

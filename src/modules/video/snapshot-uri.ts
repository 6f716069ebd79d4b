import { HttpStatus } from '@nestjs/common';
import { ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError } from '../../infra/http/errors';
import type { CameraAccount } from './camera-urls';
import { basicAuthorization, CameraAuthMemory, digestAuthorization, parseChallenges, strongest } from './http-digest';
import { jpegHasScan, jpegSize } from './media/jpeg';

/** Where a snapshot's picture came from: the camera's ONVIF snapshot URI (an HTTP GET of its JPEG) or a pull of its stream (ffmpeg / INVITE). */
export type SnapshotSource = 'snapshot_uri' | 'stream';

export interface SnapshotUriTarget {
  /** The snapshot URI the ONVIF probe kept (GetSnapshotUri; stored without an account). */
  url: string;
  /** The camera's ONVIF host: the only host asked, unless video.snapshotUriAllowHosts names another. */
  onvifHost: string | null;
  allowHosts: readonly string[];
  /** The camera's ONVIF account: sent only when the camera asks (HTTP 401 with a Digest or Basic challenge). */
  account: CameraAccount;
  timeoutMs: number;
  maxBytes: number;
  /** What the camera asked last (VideoService's, per process) and the camera's key in it: its next picture goes with an answer at once. */
  auth?: { memory: CameraAuthMemory; camera: string };
}

/**
 * Where a URI is named in messages: scheme, host and port — never its query (some cameras take the
 * account there), an account, nor its path (the device's choice of words: GetSnapshotUri).
 */
const shown = (u: URL) => `${u.protocol}//${u.host}`;

export const SnapshotUriErrors = {
  refused: (why: string) => new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.SNAPSHOT_URI_REFUSED, `the camera's snapshot URI is not asked: ${why}`),
  auth: (u: URL, why: string) =>
    new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.SNAPSHOT_URI_AUTH_FAILED, `${shown(u)} refused the camera's ONVIF account: ${why}`),
  timeout: (u: URL, ms: number) =>
    new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.VIDEO.SNAPSHOT_URI_TIMEOUT, `${shown(u)} gave no picture within ${ms} ms`, { timeoutMs: ms }),
  notJpeg: (u: URL, reason: 'not_jpeg' | 'too_large', why: string) =>
    new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.SNAPSHOT_URI_NOT_JPEG, `${shown(u)} answered ${why}`, { reason }),
  failed: (u: URL, why: string) => new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.SNAPSHOT_URI_FAILED, `${shown(u)}: ${why}`),
};

const bare = (h: string) => h.replace(/^\[|\]$/g, '').toLowerCase();

/**
 * Whether a snapshot URI's host may be asked: the camera's ONVIF host itself (the address an admin
 * set and the probe reached; the probe takes no address from the device either — preserveAddress),
 * or an entry of video.snapshotUriAllowHosts: a host name, an IP address or a subnet ('10.20.0.0/16').
 * Anything else — the metadata service, the database, another school's network — is not asked,
 * whatever a device answered to GetSnapshotUri or a redirect names.
 */
export function snapshotHostAllowed(host: string, onvifHost: string | null, allow: readonly string[]): boolean {
  const h = bare(host);
  if (!h) return false;
  if (onvifHost && bare(onvifHost) === h) return true;
  const family = isIP(h);
  for (const entry of allow) {
    const [addr, bits] = entry.trim().split('/');
    if (bits === undefined) {
      if (bare(addr) === h) return true;
      continue;
    }
    const f = isIP(addr);
    if (!family || f !== family) continue;
    const list = new BlockList();
    list.addSubnet(addr, Number(bits), f === 4 ? 'ipv4' : 'ipv6');
    if (list.check(h, family === 4 ? 'ipv4' : 'ipv6')) return true;
  }
  return false;
}

/**
 * The Authorization header answering a 401's challenge — Digest (RFC 7616: MD5, SHA-256,
 * SHA-512-256 and their -sess forms, qop auth or none; the strongest offered), else Basic — and
 * what to remember of it for the camera's next picture; null when neither can be answered.
 */
function answerChallenge(
  res: IncomingMessage,
  u: URL,
  account: NonNullable<CameraAccount>,
): { authorization: string; asked: Parameters<CameraAuthMemory['remember']>[2] } | null {
  const values: string[] = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) if (res.rawHeaders[i].toLowerCase() === 'www-authenticate') values.push(res.rawHeaders[i + 1]);
  const { digest, basic } = parseChallenges(values);
  const challenge = strongest(digest);
  if (challenge)
    return { authorization: digestAuthorization(challenge, account, 'GET', `${u.pathname}${u.search}`, 1), asked: { scheme: 'digest', challenge } };
  if (basic) return { authorization: basicAuthorization(account), asked: { scheme: 'basic' } };
  return null;
}

interface Answer {
  status: number;
  res: IncomingMessage;
  body: Buffer;
}

/**
 * One GET, bounded by `deadline` (connect, headers and body) and, for a 200, by `maxBytes` (a
 * declared or sent body past it is cut at once). Other statuses' bodies are not read. No agent:
 * nothing is pooled towards cameras.
 */
function get(u: URL, authorization: string | undefined, deadline: number, timeoutMs: number, maxBytes: number): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let done = false;
    let req: ClientRequest | undefined;
    const settle = (e: Error | null, a?: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) {
        req?.destroy();
        reject(e);
      } else resolve(a!);
    };
    const timer = setTimeout(() => settle(SnapshotUriErrors.timeout(u, timeoutMs)), Math.max(0, deadline - Date.now()));
    const headers: Record<string, string> = { Accept: 'image/jpeg', 'User-Agent': 'shouhu-snapshot' };
    if (authorization) headers.Authorization = authorization;
    try {
      req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', headers, agent: false });
    } catch (e) {
      return settle(SnapshotUriErrors.failed(u, (e as Error).message));
    }
    req.on('error', (e) => settle(SnapshotUriErrors.failed(u, `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim())));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        return settle(null, { status, res, body: Buffer.alloc(0) });
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes)
        return settle(SnapshotUriErrors.notJpeg(u, 'too_large', `${declared} bytes, more than video.snapshotUriMaxBytes (${maxBytes})`));
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes > maxBytes) settle(SnapshotUriErrors.notJpeg(u, 'too_large', `more than video.snapshotUriMaxBytes (${maxBytes}) bytes`));
        else chunks.push(c);
      });
      res.on('end', () => settle(null, { status, res, body: Buffer.concat(chunks) }));
      res.on('error', (e) => settle(SnapshotUriErrors.failed(u, e.message)));
      res.on('aborted', () => settle(SnapshotUriErrors.failed(u, 'the answer was cut off')));
    });
    req.end();
  });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 2;

/**
 * A camera's picture from its ONVIF snapshot URI (GetSnapshotUri: an HTTP GET answering a JPEG the
 * camera encoded itself — no stream setup, no ffmpeg). The camera's account is sent when it asks
 * (401: Digest, as cameras mostly do, else Basic), once; a second 401 is a wrong account. With
 * `auth`, what the camera asked last is answered at once (its Digest nonce with the next nonce
 * count, or Basic): one request per picture instead of two. A 401 to that answer (a nonce expired
 * or rotated — stale or not — or a changed account) is answered afresh, one request more, and only
 * a 401 to a fresh answer is a wrong account; any other failure to a remembered answer (400, 403, a
 * page instead of a JPEG: cameras that refuse a reused nonce otherwise) is asked afresh once too, and
 * that camera afresh from then on (CameraAuthMemory.refusesReuse). The
 * whole exchange (redirects and the retry with the account included) is bounded by `timeoutMs`,
 * the body by `maxBytes`, and the answer must be a JPEG with a frame and scan data (the checks of
 * alarm photo uploads: an HTML login page or a header alone is refused). Only hosts
 * `snapshotHostAllowed` lets through are asked, redirects included. Errors (DomainError):
 * VIDEO.SNAPSHOT_URI_REFUSED / _AUTH_FAILED / _TIMEOUT / _NOT_JPEG / _FAILED.
 */
export async function fetchSnapshotUri(t: SnapshotUriTarget): Promise<{ jpeg: Buffer; width: number; height: number }> {
  const deadline = Date.now() + t.timeoutMs;
  let u: URL;
  try {
    u = new URL(t.url);
  } catch {
    throw SnapshotUriErrors.refused('not a URL');
  }
  if (u.username || u.password) throw SnapshotUriErrors.refused('an account in the URI (the ONVIF account is sent when the camera asks)');
  let authorization: string | undefined;
  /** Whether `authorization` answers a challenge remembered from an earlier picture (a 401 to it is not yet a wrong account). */
  let remembered = false;
  /** The remembered answer failed: this picture asks afresh (the 401's challenge), never from memory again. */
  let skipMemory = false;
  let redirects = 0;
  for (;;) {
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw SnapshotUriErrors.refused(`${u.protocol} is not http: or https:`);
    if (!snapshotHostAllowed(u.hostname, t.onvifHost, t.allowHosts))
      throw SnapshotUriErrors.refused(`${u.host} is neither the camera's ONVIF host nor in video.snapshotUriAllowHosts`);
    if (Date.now() >= deadline) throw SnapshotUriErrors.timeout(u, t.timeoutMs);
    if (!authorization && !skipMemory && t.auth && t.account?.username) {
      authorization = t.auth.memory.authorization(t.auth.camera, u, t.account);
      remembered = authorization !== undefined;
    }
    const a = await get(u, authorization, deadline, t.timeoutMs, t.maxBytes);
    if (a.status === 401) {
      if (authorization && !remembered) {
        t.auth?.memory.forget(t.auth.camera);
        throw SnapshotUriErrors.auth(u, 'HTTP 401 with the account');
      }
      if (!t.account?.username) throw SnapshotUriErrors.auth(u, 'HTTP 401, and no ONVIF account is kept for the camera');
      const answer = answerChallenge(a.res, u, t.account);
      if (!answer) {
        t.auth?.memory.forget(t.auth.camera);
        throw SnapshotUriErrors.auth(u, 'HTTP 401 without a Digest or Basic challenge this server can answer');
      }
      t.auth?.memory.remember(t.auth.camera, u, answer.asked);
      authorization = answer.authorization;
      remembered = false;
      continue;
    }
    if (REDIRECTS.has(a.status)) {
      const location = a.res.headers.location;
      if (!location) throw SnapshotUriErrors.failed(u, `HTTP ${a.status} without a Location`);
      if (++redirects > MAX_REDIRECTS) throw SnapshotUriErrors.failed(u, `more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(location, u);
      } catch {
        throw SnapshotUriErrors.failed(u, 'a redirect to something that is not a URL');
      }
      if (next.username || next.password) throw SnapshotUriErrors.refused('a redirect with an account in it');
      // Checked at the top of the loop: a redirect to another host is refused, never followed.
      if (bare(next.hostname) !== bare(u.hostname)) authorization = undefined;
      else if (authorization?.startsWith('Digest')) authorization = undefined; // a digest answers one URI: the next is answered from memory, or asked
      u = next;
      continue;
    }
    const size = a.status === 200 ? jpegSize(a.body) : null;
    const jpeg = !!size && !!size.width && !!size.height && jpegHasScan(a.body);
    if (!jpeg && remembered) {
      // Not every camera answers a stale or reused nonce with 401: some say 400 or 403, or send a page. Whatever
      // fails after a remembered answer is asked afresh, once (attack pass 6 F1: such a camera lost its snapshot
      // URI for good after the first picture).
      t.auth?.memory.refusesReuse(t.auth.camera, u);
      authorization = undefined;
      remembered = false;
      skipMemory = true;
      continue;
    }
    if (a.status !== 200) throw SnapshotUriErrors.failed(u, `HTTP ${a.status}`);
    if (!size || !jpeg) {
      // The media type only when it is one (a header is the device's text).
      const type = /^[\w.+-]{1,40}\/[\w.+-]{1,60}/.exec(String(a.res.headers['content-type'] ?? ''))?.[0] ?? 'an unnamed or odd content type';
      throw SnapshotUriErrors.notJpeg(u, 'not_jpeg', `${a.body.length} bytes of ${type} that are not a JPEG picture`);
    }
    return { jpeg: a.body, ...size };
  }
}

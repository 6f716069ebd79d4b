import { createHash, randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { encode } from 'jpeg-js';

/**
 * A camera's HTTP snapshot endpoint (what ONVIF GetSnapshotUri points at, e.g. Hikvision
 * /ISAPI/Streaming/channels/101/picture, Dahua /cgi-bin/snapshot.cgi) on loopback. Like a real
 * camera it asks for HTTP Digest (RFC 7616: MD5, qop=auth, a nonce of its own, the response
 * recomputed from the password it knows), or Basic at /basic/…, and answers 401 to a wrong account.
 * A nonce may be used again with a higher nonce count (as Hikvision and Dahua cameras take it); a
 * replayed or lower count, or a nonce it did not issue, is answered 401 stale=TRUE with a new one.
 * /rotate/… takes each nonce once (a camera that rotates its nonce on every request); /strict400/…
 * and /strict403/… too, but answer a reused nonce 400 or 403 instead of 401 (cameras that do).
 * Paths: /snap (the JPEG), /basic/snap, /rotate/snap, /hang (accepts and never answers), /html (an
 * HTML login page, 200; /html/WORDS: the same, WORDS also in its Content-Type), /big (a declared 8 MB image/jpeg), /redirect?to=URL (302).
 */
export interface SnapshotCamera {
  host: string;
  port: number;
  url: (path: string) => string;
  jpeg: Buffer;
  /**
   * Every request: its path and what its Authorization was judged ('none', 'ok', 'refused': a wrong
   * account; 'stale': the right account with a nonce or nonce count it no longer takes), and a
   * Digest's nonce count as sent.
   */
  requests: { path: string; auth: Verdict; scheme?: string; nc?: string }[];
  stop: () => Promise<void>;
}

type Verdict = 'none' | 'ok' | 'refused' | 'stale';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** A small real JPEG (jpeg-js): 64×48 of a gradient. */
export function testJpeg(width = 64, height = 48): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([((i % width) * 4) & 255, (Math.floor(i / width) * 5) & 255, 0x80, 0xff], i * 4);
  return encode({ data, width, height }, 80).data;
}

function parseDigest(h: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of h.replace(/^Digest\s+/i, '').matchAll(/([a-zA-Z0-9]+)=(?:"([^"]*)"|([^,\s]*))/g)) out[m[1].toLowerCase()] = m[2] ?? m[3];
  return out;
}

export async function startSnapshotCamera(account: { username: string; password: string }): Promise<SnapshotCamera> {
  const realm = 'IP Camera(C2971)';
  /** Nonces issued: the highest nonce count taken with each, and whether it may be taken once only. */
  const nonces = new Map<string, { lastNc: number; once: boolean }>();
  const requests: SnapshotCamera['requests'] = [];
  const sockets = new Set<Socket>();
  const jpeg = testJpeg();

  const challenge = (res: ServerResponse, basic: boolean, once: boolean, stale: boolean) => {
    const nonce = randomBytes(16).toString('hex');
    nonces.set(nonce, { lastNc: 0, once });
    res.writeHead(401, {
      'WWW-Authenticate': basic ? `Basic realm="${realm}"` : `Digest qop="auth", realm="${realm}", nonce="${nonce}", stale="${stale ? 'TRUE' : 'FALSE'}"`,
      'Content-Type': 'text/html',
    });
    res.end('<html><body>401 Unauthorized</body></html>');
  };

  /** 'none' when no Authorization came; 'ok' / 'refused' / 'stale' as the camera judges it. */
  const judge = (req: IncomingMessage, basic: boolean): Verdict => {
    const h = req.headers.authorization;
    if (!h) return 'none';
    if (basic) {
      if (!/^Basic /i.test(h)) return 'refused';
      return Buffer.from(h.slice(6), 'base64').toString('utf8') === `${account.username}:${account.password}` ? 'ok' : 'refused';
    }
    if (!/^Digest /i.test(h)) return 'refused';
    const d = parseDigest(h);
    if (d.username !== account.username || d.realm !== realm || d.uri !== req.url || d.qop !== 'auth' || !d.nc || !d.cnonce) return 'refused';
    const ha1 = md5(`${account.username}:${realm}:${account.password}`);
    const ha2 = md5(`${req.method}:${d.uri}`);
    if (d.response !== md5(`${ha1}:${d.nonce}:${d.nc}:${d.cnonce}:auth:${ha2}`)) return 'refused';
    // The account is right; the nonce must be ours and its count higher than any taken with it (RFC 7616 §3.4: nc in 8 hex digits).
    const n = nonces.get(d.nonce);
    const nc = /^[0-9a-f]{8}$/.test(d.nc) ? parseInt(d.nc, 16) : NaN;
    if (!n || !(nc > n.lastNc) || (n.once && n.lastNc > 0)) return 'stale';
    n.lastNc = nc;
    return 'ok';
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const basic = path.startsWith('/basic/');
    if (path === '/hang') {
      requests.push({ path, auth: 'none' });
      return; // accepted, never answered (a hung camera web server)
    }
    if (path === '/redirect') {
      requests.push({ path, auth: 'none' });
      res.writeHead(302, { Location: new URL(req.url!, 'http://x').searchParams.get('to') ?? '/' });
      return res.end();
    }
    const verdict = judge(req, basic);
    const nc = /^Digest /i.test(req.headers.authorization ?? '') ? parseDigest(req.headers.authorization!).nc : undefined;
    requests.push({ path, auth: verdict, scheme: req.headers.authorization?.split(' ')[0], ...(nc ? { nc } : {}) });
    const strict = /^\/strict(400|403)\//.exec(path);
    if (strict && verdict === 'stale') {
      res.writeHead(Number(strict[1]), { 'Content-Type': 'text/plain' });
      return res.end('nonce reused');
    }
    if (verdict !== 'ok') return challenge(res, basic, path.startsWith('/rotate/') || !!strict, verdict === 'stale');
    if (path === '/html' || path.startsWith('/html/')) {
      // Under /html/… the device's own words in its path and in its Content-Type too.
      res.writeHead(200, { 'Content-Type': path === '/html' ? 'text/html; charset=utf-8' : `text/html; note=${path.slice(6)}` });
      return res.end('<!DOCTYPE html><html><head><title>Login</title></head><body><form>user <input name="u"></form></body></html>');
    }
    if (path === '/big') {
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(8 * 1024 * 1024) });
      res.write(jpeg.subarray(0, 200));
      return; // the rest never comes: the client must refuse on the declared length
    }
    if (['/snap', '/basic/snap', '/rotate/snap', '/strict400/snap', '/strict403/snap'].includes(path)) {
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(jpeg.length) });
      return res.end(jpeg);
    }
    res.writeHead(404);
    res.end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    jpeg,
    requests,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

import { randomBytes } from 'node:crypto';
import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { decodeBody } from '../../src/modules/gb28181/charset';
import { ha1, parseDigest, responseMatches } from '../../src/modules/gb28181/digest';
import { parseManscdp, ManscdpMessage } from '../../src/modules/gb28181/manscdp';
import { buildRequest, buildResponse, header, headerEnd, parseSip, SipRequest, SipResponse } from '../../src/modules/gb28181/sip-message';

/**
 * A superior platform of our own for cascade tests (issue 16 §7): a small UDP SIP peer that plays
 * the city platform our district registers with. It challenges REGISTER with Digest (MD5, with or
 * without qop=auth), answers MESSAGEs 200 while the lower platform is registered (403 when it is not:
 * a platform that restarted and forgot it), records every request, and sends queries downward.
 *
 * `mode`: 'normal'; 'silent' (answers nothing: a superior that is down or cut off). Over UDP, or over
 * TCP (`transport: 'TCP'`: the lower platform connects; messages framed by Content-Length; `dropConnections`
 * closes them, as a restarting superior does).
 */
export class GbSuperior {
  readonly requests: { method: string; at: number; authorized: boolean; expires: string | undefined; doc: ManscdpMessage | null; raw: Buffer; text: string }[] =
    [];
  /** The lower platforms registered now (by id). */
  readonly registered = new Set<string>();
  mode: 'normal' | 'silent' = 'normal';
  qop = true;
  /** Expires granted to a REGISTER (the lower platform asks for its configured value). */
  grant = 60;
  private socket!: UdpSocket;
  private server?: Server;
  private readonly conns = new Set<Socket>();
  /** The lower platform's connection (TCP): where our requests go. */
  private lastConn: Socket | null = null;
  private nonce = randomBytes(8).toString('hex');
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  private pending = new Map<string, (r: SipResponse) => void>();

  constructor(readonly o: { id: string; realm: string; password: string; transport?: 'UDP' | 'TCP' }) {}

  get port(): number {
    return this.server ? (this.server.address() as AddressInfo).port : (this.socket.address() as AddressInfo).port;
  }

  /** Connections the lower platform opened (TCP). */
  connections = 0;

  async start(): Promise<void> {
    if (this.o.transport === 'TCP') {
      this.server = createServer((c) => {
        this.connections++;
        this.conns.add(c);
        this.lastConn = c;
        c.on('error', () => undefined);
        c.on('close', () => this.conns.delete(c));
        let pending = Buffer.alloc(0);
        c.on('data', (chunk: Buffer) => {
          pending = Buffer.concat([pending, chunk]);
          for (;;) {
            const end = headerEnd(pending);
            if (!end) return;
            const cl = /content-length:\s*(\d+)/i.exec(pending.toString('latin1', 0, end.at));
            const total = end.at + end.sepLen + Number(cl?.[1] ?? 0);
            if (pending.length < total) return;
            const msg = pending.subarray(0, total);
            pending = pending.subarray(total);
            this.onData(msg, c.remoteAddress!, c.remotePort!, c);
          }
        });
      });
      await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
      return;
    }
    this.socket = createSocket('udp4');
    this.socket.on('message', (m, rinfo) => this.onData(m, rinfo.address, rinfo.port));
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()));
  }

  stop(): void {
    if (this.server) {
      this.dropConnections();
      this.server.close();
    } else this.socket.close();
  }

  /** Closes every connection of the lower platform (TCP). */
  dropConnections(): void {
    for (const c of this.conns) c.destroy();
  }

  private out(buf: Buffer, address: string, port: number, conn?: Socket): void {
    if (conn) conn.write(buf);
    else this.socket.send(buf, port, address);
  }

  /** The platform restarts: it forgets every registration and issues new nonces. */
  restart(): void {
    this.registered.clear();
    this.nonce = randomBytes(8).toString('hex');
  }

  /** Requests of `method` (and MANSCDP CmdType / root). */
  seen(method: string, cmdType?: string, root?: string): SuperiorRequest[] {
    return this.requests.filter((r) => r.method === method && (!cmdType || r.doc?.cmdType === cmdType) && (!root || r.doc?.root === root));
  }

  /** Resolves once `test` holds (checked after every request received), or rejects after `ms`. */
  until(test: () => boolean, ms = 8000, what = 'condition'): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { test, resolve: () => undefined as void };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`superior: timed out waiting for ${what}`));
      }, ms);
      w.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(w);
    });
  }

  private onData(buf: Buffer, address: string, port: number, conn?: Socket): void {
    const msg = parseSip(buf, { datagram: !conn, maxBytes: 1 << 20 });
    if (msg.kind === 'response') {
      this.pending.get(msg.via.branch)?.(msg);
      return;
    }
    if (this.mode === 'silent') return;
    const req = msg as SipRequest;
    const reply = (status: number, headers: [string, string | number][] = []) =>
      this.out(buildResponse(req, status, { toTag: 'sup1', source: { address, port }, headers }), address, port, conn);
    let authorized = false;
    let doc: ManscdpMessage | null = null;
    const text = req.body.length ? decodeBody(req.body) : '';
    if (req.method === 'REGISTER') {
      const creds = parseDigest(header(req, 'authorization') ?? '');
      authorized =
        !!creds &&
        creds.nonce === this.nonce &&
        creds.realm === this.o.realm &&
        responseMatches(ha1(creds.username, this.o.realm, this.o.password), 'REGISTER', creds);
      if (!authorized) {
        reply(401, [['WWW-Authenticate', `Digest realm="${this.o.realm}", nonce="${this.nonce}"${this.qop ? ', qop="auth"' : ''}, algorithm=MD5`]]);
      } else {
        const expires = Number(header(req, 'expires') ?? 3600);
        if (expires === 0) this.registered.delete(req.from.user);
        else this.registered.add(req.from.user);
        reply(200, [['Expires', expires === 0 ? 0 : Math.min(expires, this.grant)]]);
      }
    } else if (req.method === 'MESSAGE') {
      doc = parseManscdp(req.body);
      reply(this.registered.has(req.from.user) ? 200 : 403);
    } else reply(405);
    this.requests.push({ method: req.method, at: Date.now(), authorized, expires: header(req, 'expires'), doc, raw: req.body, text });
    for (const w of [...this.waiters])
      if (w.test()) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve();
      }
  }

  /** Sends a MANSCDP MESSAGE to the lower platform (at 127.0.0.1:`port`) as the superior; resolves with its answer's status. */
  send(port: number, to: string, body: string): Promise<number> {
    const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    const buf = buildRequest({
      method: 'MESSAGE',
      uri: `sip:${to}@127.0.0.1:${port}`,
      via: `SIP/2.0/${this.server ? 'TCP' : 'UDP'} 127.0.0.1:${this.port};rport;branch=${branch}`,
      from: `<sip:${this.o.id}@${this.o.realm}>;tag=${randomBytes(4).toString('hex')}`,
      to: `<sip:${to}@${to.slice(0, 10)}>`,
      callId: `${randomBytes(6).toString('hex')}@127.0.0.1`,
      cseq: 1,
      body: Buffer.from(body, 'latin1'),
      contentType: 'Application/MANSCDP+xml',
    });
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('superior: no answer from the lower platform')), 3000);
      this.pending.set(branch, (r) => {
        if (r.status < 200) return;
        clearTimeout(timer);
        this.pending.delete(branch);
        resolve(r.status);
      });
      if (this.server) {
        if (!this.lastConn || this.lastConn.destroyed) return reject(new Error('superior: no connection from the lower platform'));
        this.lastConn.write(buf);
      } else this.socket.send(buf, port, '127.0.0.1');
    });
  }

  /** A Query MESSAGE (Catalog, DeviceInfo, DeviceStatus) of SN `sn` about `deviceId`. */
  query(port: number, to: string, cmdType: string, sn: number, deviceId = to): Promise<number> {
    return this.send(
      port,
      to,
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>${cmdType}</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${deviceId}</DeviceID>\r\n</Query>\r\n`,
    );
  }
}

export type SuperiorRequest = GbSuperior['requests'][number];

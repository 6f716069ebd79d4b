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
 * closes them, as a restarting superior does). It also subscribes (`subscribe`: Catalog / Alarm, one
 * dialog per package, refreshed in the dialog) and answers the NOTIFYs that follow (`notifyStatus`).
 */
export class GbSuperior {
  readonly requests: {
    method: string;
    at: number;
    authorized: boolean;
    expires: string | undefined;
    doc: ManscdpMessage | null;
    raw: Buffer;
    text: string;
    sip: SipRequest;
  }[] = [];
  /** The lower platforms registered now (by id). */
  readonly registered = new Set<string>();
  mode: 'normal' | 'silent' = 'normal';
  /** The digest challenge's qop: auth, auth-int (RFC 2617 §3.2.2.3), or none (false: the RFC 2069 form). */
  qop: boolean | 'auth-int' = true;
  /** How NOTIFYs are answered (481: a superior that forgot the subscription). */
  notifyStatus = 200;
  /** Our subscriptions to the lower platform, by package: the dialog (its To tag once answered). */
  readonly dialogs = new Map<string, { callId: string; fromTag: string; toTag: string | null; cseq: number }>();
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

  /** This superior as an entry of gb28181.cascade.superiors (domain and localId defaulted). */
  entry(): { id: string; domain: string; host: string; port: number; transport: 'udp' | 'tcp'; password: string; localId: string } {
    return {
      id: this.o.id,
      domain: '',
      host: '127.0.0.1',
      port: this.port,
      transport: this.o.transport === 'TCP' ? 'tcp' : 'udp',
      password: this.o.password,
      localId: '',
    };
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
        (this.qop === 'auth-int' ? creds.qop === 'auth-int' : true) &&
        responseMatches(ha1(creds.username, this.o.realm, this.o.password), 'REGISTER', creds, req.body);
      if (!authorized) {
        const qop = this.qop === 'auth-int' ? ', qop="auth-int"' : this.qop ? ', qop="auth"' : '';
        reply(401, [['WWW-Authenticate', `Digest realm="${this.o.realm}", nonce="${this.nonce}"${qop}, algorithm=MD5`]]);
      } else {
        const expires = Number(header(req, 'expires') ?? 3600);
        if (expires === 0) this.registered.delete(req.from.user);
        else this.registered.add(req.from.user);
        reply(200, [['Expires', expires === 0 ? 0 : Math.min(expires, this.grant)]]);
      }
    } else if (req.method === 'MESSAGE') {
      doc = parseManscdp(req.body);
      reply(this.registered.has(req.from.user) ? 200 : 403);
    } else if (req.method === 'NOTIFY') {
      doc = req.body.length ? parseManscdp(req.body) : null;
      reply(this.notifyStatus);
    } else reply(405);
    this.requests.push({ method: req.method, at: Date.now(), authorized, expires: header(req, 'expires'), doc, raw: req.body, text, sip: req });
    for (const w of [...this.waiters])
      if (w.test()) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve();
      }
  }

  /**
   * Sends a MANSCDP MESSAGE to the lower platform (at 127.0.0.1:`port`) as the superior; resolves with its answer's status.
   * `fromHost`: the host of From (default: its realm, the domain); `toUser`: the user of To and the Request-URI (default `to`).
   */
  async send(port: number, to: string, body: string, o: { fromHost?: string; toUser?: string; toHeader?: string } = {}): Promise<number> {
    return (await this.request(port, 'MESSAGE', to, Buffer.from(body, 'latin1'), o)).status;
  }

  /** A request to the lower platform; resolves with its final response. */
  request(
    port: number,
    method: string,
    to: string,
    body: Buffer,
    o: {
      fromHost?: string;
      toUser?: string;
      /** The whole To header (e.g. without a user part); default `<sip:user@domain>`. */
      toHeader?: string;
      callId?: string;
      fromTag?: string;
      toTag?: string | null;
      cseq?: number;
      headers?: [string, string | number][];
    } = {},
  ): Promise<SipResponse> {
    const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    const user = o.toUser ?? to;
    const buf = buildRequest({
      method,
      uri: `sip:${user}@127.0.0.1:${port}`,
      via: `SIP/2.0/${this.server ? 'TCP' : 'UDP'} 127.0.0.1:${this.port};rport;branch=${branch}`,
      from: `<sip:${this.o.id}@${o.fromHost ?? this.o.realm}>;tag=${o.fromTag ?? randomBytes(4).toString('hex')}`,
      to: `${o.toHeader ?? `<sip:${user}@${user.slice(0, 10)}>`}${o.toTag ? `;tag=${o.toTag}` : ''}`,
      callId: o.callId ?? `${randomBytes(6).toString('hex')}@127.0.0.1`,
      cseq: o.cseq ?? 1,
      headers: o.headers,
      body,
      contentType: 'Application/MANSCDP+xml',
    });
    return new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('superior: no answer from the lower platform')), 3000);
      this.pending.set(branch, (r) => {
        if (r.status < 200) return;
        clearTimeout(timer);
        this.pending.delete(branch);
        resolve(r);
      });
      if (this.server) {
        if (!this.lastConn || this.lastConn.destroyed) return reject(new Error('superior: no connection from the lower platform'));
        this.lastConn.write(buf);
      } else this.socket.send(buf, port, '127.0.0.1');
    });
  }

  /**
   * SUBSCRIBE to the lower platform's `kind` (Catalog or Alarm) for `expires` seconds, with the
   * Catalog/Alarm Query as body and `Event: <event>` (default the package): a new dialog the first
   * time (or with `fresh`), else a refresh in the dialog. Resolves with the answer.
   */
  async subscribe(
    port: number,
    to: string,
    kind: 'Catalog' | 'Alarm',
    expires: number,
    o: { fresh?: boolean; event?: string; sn?: number } = {},
  ): Promise<SipResponse> {
    let d = this.dialogs.get(kind);
    if (!d || o.fresh)
      this.dialogs.set(kind, (d = { callId: `${randomBytes(6).toString('hex')}@127.0.0.1`, fromTag: randomBytes(4).toString('hex'), toTag: null, cseq: 0 }));
    const body = `<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>${kind}</CmdType>\r\n<SN>${o.sn ?? 1}</SN>\r\n<DeviceID>${to}</DeviceID>\r\n</Query>\r\n`;
    const r = await this.request(port, 'SUBSCRIBE', to, Buffer.from(body, 'latin1'), {
      callId: d.callId,
      fromTag: d.fromTag,
      toTag: d.toTag,
      cseq: ++d.cseq,
      headers: [
        ['Event', o.event ?? `${kind};id=${o.sn ?? 1}`],
        ['Expires', expires],
        ['Contact', `<sip:${this.o.id}@127.0.0.1:${this.port}>`],
      ],
    });
    if (r.status === 200 && !d.toTag) d.toTag = r.to.tag;
    return r;
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

import { randomBytes } from 'node:crypto';
import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import { expectedResponse, ha1 } from '../../../src/modules/gb28181/digest';
import { gbTime } from '../../../src/modules/gb28181/gb-codes';
import { buildRequest, buildResponse, header, headerEnd, parseSip, SipMessage, SipRequest } from '../../../src/modules/gb28181/sip-message';
import { Clip } from './elementary';
import { frame4571, playClip } from './rtp-send';

/**
 * A simulated GB/T 28181 camera (IPC) of our own, for tests and the bench: a small SIP UA over
 * UDP or TCP that REGISTERs with digest, sends Keepalive MESSAGEs, answers the platform's
 * queries with 200, and answers INVITE (real-time play, §9.2) with 200 + an SDP answer, then —
 * after the ACK — streams the clip as real-camera PS over RTP (payload 96, the offer's y= SSRC)
 * over UDP, or TCP with RFC 4571 framing in both modes: the platform passive (we connect to its
 * port) or active (we listen and put our port in the answer). A BYE stops the stream.
 *
 * Behaviours for failure tests: `invite: 'busy'` (486), `'silent'` (never answers), `'no-media'`
 * (200 but sends nothing). Every SIP request it receives is recorded in `log` (MANSCDP queries
 * also in `queries`, see `waitForQuery`); `message` sends any MANSCDP body as raw bytes (charsets,
 * catalogs, channel status). Without a clip it plays the signalling device of an NVR (INVITE: 488).
 * With `answerQueries` it also answers like a working camera (browser tests of the device panel):
 * DeviceStatus (online, OK, encoding, recording, its clock now), RecordInfo (its `recordings`,
 * by default one of the 20 minutes ending 2 minutes ago) and DeviceControl (Result OK).
 */
export interface GbCameraOptions {
  deviceId: string;
  password: string;
  platform: { host: string; port: number; id: string };
  transport?: 'UDP' | 'TCP';
  clip?: Clip;
  keepaliveMs?: number;
  invite?: 'answer' | 'busy' | 'silent' | 'no-media';
  /** Answer with an SSRC of our own (some devices do) instead of the offer's. */
  ownSsrc?: string;
  /** Swap packets within frames (the platform must reorder). */
  reorder?: boolean;
  /** Digest quirks of real firmware (issue 16 §5): another username than the device id, `nc=1` instead of `00000001`. */
  authUsername?: string;
  nc?: string;
  /** false: Vias without a branch, as RFC 2543 devices send them (answers are then matched by Call-ID and CSeq). */
  viaBranch?: boolean;
  /** 'refuse': SUBSCRIBE answered 489 Bad Event (RFC 6665 §8.3.2), as devices without Catalog subscriptions do. */
  subscribe?: 'grant' | 'refuse';
  /** The local address it speaks from (default 127.0.0.1; Linux loopback takes all of 127.0.0.0/8): another host, for spoofing tests. */
  localAddress?: string;
  /** Answer DeviceStatus, RecordInfo and DeviceControl as a working camera does (see the class comment). */
  answerQueries?: boolean;
  /** The recordings RecordInfo lists (with `answerQueries`), whatever range is asked; default one of the 20 minutes ending 2 minutes ago. */
  recordings?: { start: Date; end: Date }[];
}

interface Play {
  callId: string;
  ssrc: number;
  stop: () => void;
  closeMedia: () => void;
  dialog: { from: string; to: string; uri: string; cseq: number; localTag: string };
}

export class GbCamera {
  readonly log: { method: string; callId: string; cseq: number; at: number; body: string }[] = [];
  /** MANSCDP requests of the platform (Query / Notify / Control …) by CmdType and SN, in order. */
  readonly queries: { root: string; cmdType: string; sn: string; body: string }[] = [];
  readonly plays = new Map<string, Play>();
  registered = false;
  packetsSent = 0;
  private udp?: UdpSocket;
  private tcp?: Socket;
  private tcpPending: Buffer = Buffer.alloc(0);
  private localPort = 0;
  private readonly callId = `${randomBytes(6).toString('hex')}@127.0.0.1`;
  private cseq = 1;
  private keepalive?: NodeJS.Timeout;
  private waiters = new Map<string, (m: SipMessage) => void>();
  private closed = false;
  private sn = 1;

  constructor(readonly o: GbCameraOptions) {}

  /** The local port of its SIP socket (UDP) or connection (TCP). */
  get sipPort(): number {
    return this.localPort;
  }

  get transport(): 'UDP' | 'TCP' {
    return this.o.transport ?? 'UDP';
  }

  /** Requests of this method received, retransmissions included. */
  count(method: string): number {
    return this.log.filter((l) => l.method === method).length;
  }

  /** Dialogs (distinct Call-IDs) that had a request of this method: what a retransmission under load does not change. */
  dialogs(method: string): number {
    return new Set(this.log.filter((l) => l.method === method).map((l) => l.callId)).size;
  }

  /** Opens the socket and REGISTERs; `register: false` only opens it (another party naming the device id: spoofing tests). */
  async start(o: { register?: boolean } = {}): Promise<void> {
    if (this.transport === 'UDP') {
      const s = createSocket('udp4');
      s.on('message', (m) => this.onData(m));
      await new Promise<void>((r) => s.bind(0, this.o.localAddress ?? '127.0.0.1', () => r()));
      this.udp = s;
      this.localPort = (s.address() as AddressInfo).port;
    } else {
      const c = connect({ host: this.o.platform.host, port: this.o.platform.port, localAddress: this.o.localAddress });
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      c.on('error', () => undefined);
      c.on('data', (chunk: Buffer) => this.onTcp(chunk));
      this.tcp = c;
      this.localPort = c.localPort!;
    }
    if (o.register === false) return;
    await this.register();
    // keepaliveMs 0: no periodic keepalives (the test sends them).
    if (this.o.keepaliveMs !== 0) {
      this.keepalive = setInterval(() => void this.sendKeepalive().catch(() => undefined), this.o.keepaliveMs ?? 5000);
      this.keepalive.unref();
    }
  }

  private onTcp(chunk: Buffer): void {
    this.tcpPending = Buffer.concat([this.tcpPending, chunk]);
    for (;;) {
      const end = headerEnd(this.tcpPending);
      if (!end) return;
      const head = this.tcpPending.toString('latin1', 0, end.at);
      const cl = /content-length\s*:\s*(\d+)/i.exec(head);
      const total = end.at + end.sepLen + (cl ? Number(cl[1]) : 0);
      if (this.tcpPending.length < total) return;
      const msg = this.tcpPending.subarray(0, total);
      this.tcpPending = this.tcpPending.subarray(total);
      this.onData(msg);
    }
  }

  private send(buf: Buffer): void {
    if (this.closed) return;
    if (this.udp) this.udp.send(buf, this.o.platform.port, this.o.platform.host);
    else this.tcp?.write(buf);
  }

  private via(branch: string): string {
    return `SIP/2.0/${this.transport} 127.0.0.1:${this.localPort};rport${this.o.viaBranch === false ? '' : `;branch=${branch}`}`;
  }

  private get domain(): string {
    return this.o.platform.id.slice(0, 10);
  }

  /** Sends a request and waits for its final response. */
  private request(method: string, extra: [string, string | number][], body: string | Buffer = '', contentType = ''): Promise<SipMessage> {
    const callId = method === 'REGISTER' ? this.callId : `${randomBytes(6).toString('hex')}@127.0.0.1`;
    const cseq = this.cseq++;
    const branch = this.o.viaBranch === false ? `${callId} ${cseq}` : `z9hG4bK${randomBytes(6).toString('hex')}`;
    const buf = buildRequest({
      method,
      uri: `sip:${this.o.platform.id}@${this.domain}`,
      via: this.via(branch),
      from: `<sip:${this.o.deviceId}@${this.domain}>;tag=${randomBytes(3).toString('hex')}`,
      to: `<sip:${method === 'REGISTER' ? this.o.deviceId : this.o.platform.id}@${this.domain}>`,
      callId,
      cseq,
      headers: extra,
      body: typeof body === 'string' ? Buffer.from(body, 'latin1') : body,
      contentType,
    });
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(branch);
        reject(new Error(`${method}: no answer`));
      }, 5000);
      this.waiters.set(branch, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.send(buf);
    });
  }

  async register(expires = 3600): Promise<void> {
    const contact: [string, string] = ['Contact', `<sip:${this.o.deviceId}@127.0.0.1:${this.localPort}>`];
    const first = await this.request('REGISTER', [contact, ['Expires', expires]]);
    if (first.kind !== 'response' || first.status !== 401) throw new Error(`REGISTER: expected 401, got ${first.kind === 'response' ? first.status : '?'}`);
    const realm = /realm="([^"]+)"/.exec(header(first, 'www-authenticate') ?? '')![1];
    const nonce = /nonce="([^"]+)"/.exec(header(first, 'www-authenticate') ?? '')![1];
    const uri = `sip:${this.o.platform.id}@${this.domain}`;
    const cnonce = randomBytes(4).toString('hex');
    const nc = this.o.nc ?? '00000001';
    const user = this.o.authUsername ?? this.o.deviceId;
    const response = expectedResponse(ha1(user, realm, this.o.password), 'REGISTER', { nonce, uri, qop: 'auth', nc, cnonce });
    const authz = `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
    const second = await this.request('REGISTER', [contact, ['Expires', expires], ['Authorization', authz]]);
    if (second.kind !== 'response' || second.status !== 200) throw new Error(`REGISTER: expected 200, got ${second.kind === 'response' ? second.status : '?'}`);
    this.registered = expires > 0;
  }

  /** A Keepalive (§A.2.5); `faulty`: channel ids listed as faulty in `<Info><DeviceList>` (an NVR with dead cameras). */
  async sendKeepalive(faulty?: string[]): Promise<number> {
    const info = faulty
      ? `<Info>\r\n<DeviceList Num="${faulty.length}">\r\n${faulty.map((id) => `<Item><DeviceID>${id}</DeviceID></Item>\r\n`).join('')}</DeviceList>\r\n</Info>\r\n`
      : '';
    const body = `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>${this.sn++}</SN>\r\n<DeviceID>${this.o.deviceId}</DeviceID>\r\n<Status>OK</Status>\r\n${info}</Notify>\r\n`;
    const r = await this.request('MESSAGE', [], body, 'Application/MANSCDP+xml');
    return r.kind === 'response' ? r.status : 0;
  }

  /** Sends a MESSAGE with this body (bytes as given) and resolves with the platform's final status. */
  async message(body: string | Buffer, contentType = 'Application/MANSCDP+xml'): Promise<number> {
    const r = await this.request('MESSAGE', [], body, contentType);
    return r.kind === 'response' ? r.status : 0;
  }

  /** A NOTIFY in the platform's Catalog subscription (§9.11.2) with this body; resolves with the platform's status. */
  async notify(body: string | Buffer): Promise<number> {
    const r = await this.request(
      'NOTIFY',
      [
        ['Event', 'Catalog'],
        ['Subscription-State', 'active'],
      ],
      body,
      'Application/MANSCDP+xml',
    );
    return r.kind === 'response' ? r.status : 0;
  }

  /** The next platform MANSCDP request of that CmdType not yet taken (waits up to `ms`). */
  async waitForQuery(cmdType: string, ms = 5000): Promise<{ root: string; cmdType: string; sn: string; body: string }> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.queries.findIndex((q) => q.cmdType === cmdType);
      if (i >= 0) return this.queries.splice(i, 1)[0];
      if (Date.now() > end) throw new Error(`no ${cmdType} query from the platform within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private onData(buf: Buffer): void {
    let msg: SipMessage;
    try {
      msg = parseSip(buf, { datagram: !!this.udp, maxBytes: 65535 });
    } catch {
      return;
    }
    if (msg.kind === 'response') {
      if (msg.status < 200) return;
      const key = msg.via.branch || `${msg.callId} ${msg.cseq.seq}`;
      const w = this.waiters.get(key);
      if (w) {
        this.waiters.delete(key);
        w(msg);
      }
      return;
    }
    this.log.push({ method: msg.method, callId: msg.callId, cseq: msg.cseq.seq, at: Date.now(), body: msg.body.toString('latin1') });
    const reply = (status: number, extra: { headers?: [string, string | number][]; body?: string; contentType?: string } = {}) =>
      this.send(
        buildResponse(msg as SipRequest, status, {
          toTag: this.tagFor(msg.callId),
          headers: extra.headers,
          body: extra.body ? Buffer.from(extra.body, 'latin1') : undefined,
          contentType: extra.contentType,
        }),
      );
    switch (msg.method) {
      case 'MESSAGE': {
        const text = msg.body.toString('latin1');
        const root = /<(Query|Control|Notify|Response)>/.exec(text)?.[1];
        const cmdType = /<CmdType>([^<]*)<\/CmdType>/.exec(text)?.[1];
        const sn = /<SN>(\d+)<\/SN>/.exec(text)?.[1] ?? '';
        if (root && cmdType) this.queries.push({ root, cmdType, sn, body: text });
        reply(200);
        if (this.o.answerQueries && root && cmdType && root !== 'Response') void this.answerQuery(cmdType, sn, text).catch(() => undefined);
        return;
      }
      case 'SUBSCRIBE':
        // Granted as asked (§9.11.1), or refused.
        if (this.o.subscribe === 'refuse') return reply(489);
        return reply(200, { headers: [['Expires', header(msg, 'expires') ?? '3600']] });
      case 'INVITE':
        return void this.onInvite(msg, reply);
      case 'ACK': {
        const p = this.pendingAck.get(msg.callId);
        if (p) {
          this.pendingAck.delete(msg.callId);
          p();
        }
        return;
      }
      case 'BYE': {
        const play = this.plays.get(msg.callId);
        reply(play ? 200 : 481);
        if (play) this.endPlay(play);
        return;
      }
      case 'CANCEL':
        return reply(200);
      default:
        return reply(405);
    }
  }

  /** With `answerQueries`: a working camera's Response to the platform's DeviceStatus, RecordInfo or DeviceControl (not TeleBoot). */
  private async answerQuery(cmdType: string, sn: string, text: string): Promise<void> {
    const target = /<DeviceID>(\d{20})<\/DeviceID>/.exec(text)?.[1] ?? this.o.deviceId;
    const t = (d: Date) => gbTime(d).slice(0, 19);
    let inner: string;
    if (cmdType === 'DeviceStatus')
      inner =
        '<Result>OK</Result>\r\n<Online>ONLINE</Online>\r\n<Status>OK</Status>\r\n<Encode>ON</Encode>\r\n<Record>ON</Record>\r\n' +
        `<DeviceTime>${t(new Date())}</DeviceTime>\r\n<Alarmstatus Num="0">\r\n</Alarmstatus>\r\n`;
    else if (cmdType === 'RecordInfo') {
      const now = Date.now();
      const recs = this.o.recordings ?? [{ start: new Date(now - 22 * 60_000), end: new Date(now - 2 * 60_000) }];
      const items = recs
        .map(
          (r, i) =>
            `<Item>\r\n<DeviceID>${target}</DeviceID>\r\n<Name>rec${i + 1}</Name>\r\n<FilePath>/rec/${i + 1}.ps</FilePath>\r\n` +
            `<StartTime>${t(r.start)}</StartTime>\r\n<EndTime>${t(r.end)}</EndTime>\r\n<Secrecy>0</Secrecy>\r\n<Type>time</Type>\r\n</Item>\r\n`,
        )
        .join('');
      inner = `<Name>cam</Name>\r\n<SumNum>${recs.length}</SumNum>\r\n<RecordList Num="${recs.length}">\r\n${items}</RecordList>\r\n`;
    } else if (cmdType === 'DeviceControl' && !text.includes('<TeleBoot>')) inner = '<Result>OK</Result>\r\n';
    else return;
    const body =
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>${cmdType}</CmdType>\r\n<SN>${sn}</SN>\r\n` +
      `<DeviceID>${target}</DeviceID>\r\n${inner}</Response>\r\n`;
    await this.message(body);
  }

  private readonly tags = new Map<string, string>();
  private tagFor(callId: string): string {
    let t = this.tags.get(callId);
    if (!t) this.tags.set(callId, (t = randomBytes(4).toString('hex')));
    return t;
  }

  private readonly pendingAck = new Map<string, () => void>();

  private async onInvite(
    req: SipRequest,
    reply: (status: number, extra?: { headers?: [string, string | number][]; body?: string; contentType?: string }) => void,
  ): Promise<void> {
    const mode = this.o.invite ?? 'answer';
    if (mode === 'silent') return;
    if (this.plays.has(req.callId)) return; // a retransmission after our 200
    reply(100);
    if (mode === 'busy') return reply(486);
    const sdp = req.body.toString('latin1');
    const host = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1] ?? '127.0.0.1';
    const m = /^m=video (\d+) (\S+) 96/m.exec(sdp);
    const ssrcText = this.o.ownSsrc ?? /^y=(\d+)/m.exec(sdp)?.[1] ?? '0';
    if (!m || !this.o.clip) return reply(488);
    const port = Number(m[1]);
    const tcp = m[2].startsWith('TCP');
    const platformSetup = /^a=setup:(\w+)/m.exec(sdp)?.[1] ?? 'passive';
    let listen: Server | null = null;
    let mediaPort = 9;
    if (tcp && platformSetup === 'active') {
      // The platform connects to us: listen, and give our port in the answer.
      listen = createServer();
      await new Promise<void>((r) => listen!.listen(0, '127.0.0.1', () => r()));
      mediaPort = (listen.address() as AddressInfo).port;
    } else if (!tcp) mediaPort = 15060;
    const answer = [
      'v=0',
      `o=${this.o.deviceId} 0 0 IN IP4 127.0.0.1`,
      's=Play',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      `m=video ${mediaPort} ${tcp ? 'TCP/RTP/AVP' : 'RTP/AVP'} 96`,
      'a=sendonly',
      'a=rtpmap:96 PS/90000',
      ...(tcp ? [`a=setup:${platformSetup === 'active' ? 'passive' : 'active'}`, 'a=connection:new'] : []),
      `y=${ssrcText}`,
      '',
    ].join('\r\n');
    const from = req.to.raw.includes(';tag=') ? req.to.raw : `${req.to.raw};tag=${this.tagFor(req.callId)}`;
    const play: Play = {
      callId: req.callId,
      ssrc: Number(ssrcText),
      stop: () => undefined,
      closeMedia: () => listen?.close(),
      dialog: {
        from,
        to: req.from.raw,
        uri: `sip:${this.o.platform.id}@${this.o.platform.host}:${this.o.platform.port}`,
        cseq: 1,
        localTag: this.tagFor(req.callId),
      },
    };
    this.plays.set(req.callId, play);
    this.pendingAck.set(req.callId, () => {
      if (mode === 'no-media' || !this.plays.has(req.callId)) return;
      void this.startMedia(play, { tcp, host, port, listen }).catch(() => undefined);
    });
    reply(200, { headers: [['Contact', `<sip:${this.o.deviceId}@127.0.0.1:${this.localPort}>`]], body: answer, contentType: 'APPLICATION/SDP' });
  }

  private async startMedia(play: Play, m: { tcp: boolean; host: string; port: number; listen: Server | null }): Promise<void> {
    if (!m.tcp) {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      s.on('error', () => undefined);
      const stop = playClip(
        this.o.clip!,
        play.ssrc,
        (packets) => {
          for (const p of packets) s.send(p, m.port, m.host);
          this.packetsSent += packets.length;
        },
        { reorder: this.o.reorder },
      );
      play.stop = () => {
        stop();
        s.removeAllListeners();
        try {
          s.close();
        } catch {
          // already closed (frozen, then hung up)
        }
      };
      return;
    }
    let conn: Socket;
    if (m.listen) {
      conn = await new Promise<Socket>((r) => m.listen!.once('connection', r));
    } else {
      conn = connect({ host: m.host, port: m.port });
      await new Promise<void>((resolve, reject) => {
        conn.once('connect', () => resolve());
        conn.once('error', reject);
      });
    }
    conn.on('error', () => undefined);
    conn.setNoDelay(true);
    if (!this.plays.has(play.callId)) return void conn.destroy();
    const stop = playClip(this.o.clip!, play.ssrc, (packets) => {
      if (conn.destroyed) return;
      conn.write(Buffer.concat(packets.map(frame4571)));
      this.packetsSent += packets.length;
    });
    play.stop = () => {
      stop();
      conn.destroy();
      m.listen?.close();
    };
  }

  private endPlay(play: Play): void {
    play.stop();
    play.closeMedia();
    this.plays.delete(play.callId);
  }

  /** The camera ends a stream itself (sends BYE), e.g. when it reboots. */
  hangUp(): void {
    for (const play of [...this.plays.values()]) {
      const buf = buildRequest({
        method: 'BYE',
        uri: play.dialog.uri,
        via: this.via(`z9hG4bK${randomBytes(6).toString('hex')}`),
        from: play.dialog.from,
        to: play.dialog.to,
        callId: play.callId,
        cseq: ++play.dialog.cseq,
        body: Buffer.alloc(0),
        contentType: '',
      });
      this.send(buf);
      this.endPlay(play);
    }
  }

  /** Stops streaming without a BYE (a camera whose encoder hangs). */
  freeze(): void {
    for (const play of this.plays.values()) play.stop();
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    if (this.keepalive) clearInterval(this.keepalive);
    for (const play of [...this.plays.values()]) this.endPlay(play);
    this.closed = true;
    this.udp?.close();
    this.tcp?.destroy();
  }
}

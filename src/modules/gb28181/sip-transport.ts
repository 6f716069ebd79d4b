import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup, LookupOneOptions } from 'node:dns';
import { createServer, isIP, Server, Socket } from 'node:net';
import { headerEnd } from './sip-message';

/** Where a message came from, and how to answer it (the same socket for TCP). */
export interface Peer {
  transport: 'UDP' | 'TCP';
  address: string;
  port: number;
  conn?: Socket;
}

export interface TransportOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
  udpReceiveBufferBytes: number;
  tcpIdleSeconds: number;
  maxTcpConnections: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
}

export type DropReason = 'rate_limited' | 'too_large' | 'tcp_framing' | 'tcp_overflow' | 'too_many_connections';

/**
 * Per-source token bucket (source = address:port, i.e. one device or one NAT mapping). Buckets
 * idle for a minute are forgotten by `prune`.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  allow(key: string, now = Date.now()): boolean {
    if (this.perSecond <= 0) return true;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.perSecond) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  prune(now = Date.now()): void {
    for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k);
  }
}

/**
 * dgram resolves the destination of every send through dns.lookup (a deferred callback per
 * datagram); answers always go to the packet's source, an IP literal, so those resolve at once.
 */
function literalLookup(
  hostname: string,
  options: number | LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family) return callback(null, hostname, family);
  if (typeof options === 'number') dnsLookup(hostname, options, callback);
  else dnsLookup(hostname, options, callback);
}

/**
 * UDP and TCP listeners on one address and port. UDP datagrams are messages; TCP streams are
 * framed by the header end and Content-Length. Every message goes to `onMessage` synchronously;
 * the handler never blocks the loop (async work is its own), so a slow or hostile peer cannot
 * stall the others: a TCP peer that sends oversized or unframeable data is disconnected.
 */
export class SipTransport {
  private udp?: UdpSocket;
  private tcp?: Server;
  private readonly conns = new Set<Socket>();
  readonly limiter: RateLimiter;

  constructor(
    private readonly opts: TransportOptions,
    private readonly onMessage: (buf: Buffer, peer: Peer) => void,
    private readonly onDrop: (reason: DropReason) => void,
  ) {
    this.limiter = new RateLimiter(opts.rateLimitPerSecond, opts.rateLimitBurst);
  }

  /** Binds UDP and TCP on the same port; with port 0, retries a few random ports until both are free. */
  async start(): Promise<{ udpPort: number; tcpPort: number }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.bindBoth();
      } catch (e) {
        await this.stop();
        if (this.opts.port !== 0 || attempt >= 10 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  private async bindBoth(): Promise<{ udpPort: number; tcpPort: number }> {
    const udp = createSocket({ type: this.opts.host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
    udp.on('message', (buf, rinfo) => this.receive(buf, { transport: 'UDP', address: rinfo.address, port: rinfo.port }));
    udp.on('error', () => undefined); // ICMP unreachable etc. on send: the device is gone, nothing to do
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.opts.port, this.opts.host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
    try {
      // A large receive buffer absorbs bursts (a district's devices re-registering at once).
      udp.setRecvBufferSize(this.opts.udpReceiveBufferBytes);
      udp.setSendBufferSize(Math.min(this.opts.udpReceiveBufferBytes, 4 * 1024 * 1024));
    } catch {
      // The kernel caps it (net.core.rmem_max); the bound socket still works.
    }
    const port = udp.address().port;
    const tcp = createServer((c) => this.accept(c));
    tcp.maxConnections = this.opts.maxTcpConnections;
    tcp.on('drop', () => this.onDrop('too_many_connections'));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, this.opts.host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.tcp = tcp;
    return { udpPort: port, tcpPort: port };
  }

  get localPort(): number {
    return this.udp ? this.udp.address().port : 0;
  }

  private receive(buf: Buffer, peer: Peer): void {
    if (!this.limiter.allow(`${peer.transport}:${peer.address}:${peer.port}`)) return this.onDrop('rate_limited');
    if (buf.length > this.opts.maxMessageBytes) return this.onDrop('too_large');
    this.onMessage(buf, peer);
  }

  private accept(c: Socket): void {
    this.conns.add(c);
    c.setNoDelay(true);
    c.setTimeout(this.opts.tcpIdleSeconds * 1000, () => c.destroy());
    c.on('error', () => undefined);
    c.on('close', () => this.conns.delete(c));
    const peer: Peer = { transport: 'TCP', address: c.remoteAddress ?? '', port: c.remotePort ?? 0, conn: c };
    let pending: Buffer = Buffer.alloc(0);
    c.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        // RFC 5626 keep-alive: CRLFCRLF ping, CRLF pong; stray CRLFs between messages are skipped.
        let skip = 0;
        while (skip < pending.length && (pending[skip] === 13 || pending[skip] === 10)) skip++;
        if (skip) {
          if (skip >= 4 && pending.subarray(0, 4).toString('latin1') === '\r\n\r\n') c.write('\r\n');
          pending = pending.subarray(skip);
        }
        if (pending.length === 0) return;
        const end = headerEnd(pending);
        if (!end) {
          if (pending.length > this.opts.maxMessageBytes) return this.kill(c, 'tcp_overflow');
          return;
        }
        const head = pending.toString('latin1', 0, end.at);
        const cl = /(?:^|\n)(?:content-length|l)[ \t]*:[ \t]*(\d{1,9})[ \t]*\r?$/im.exec(head);
        if (!cl) return this.kill(c, 'tcp_framing');
        const total = end.at + end.sepLen + Number(cl[1]);
        if (total > this.opts.maxMessageBytes) return this.kill(c, 'too_large');
        if (pending.length < total) return;
        const msg = pending.subarray(0, total);
        pending = pending.subarray(total);
        this.receive(msg, peer);
        if (c.destroyed) return;
      }
    });
  }

  private kill(c: Socket, reason: DropReason): void {
    this.onDrop(reason);
    c.destroy();
  }

  send(peer: Peer, buf: Buffer): void {
    if (peer.transport === 'TCP') {
      if (peer.conn && !peer.conn.destroyed) peer.conn.write(buf);
      return;
    }
    this.udp?.send(buf, peer.port, peer.address);
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([new Promise<void>((r) => (udp ? udp.close(() => r()) : r())), new Promise<void>((r) => (tcp ? tcp.close(() => r()) : r()))]);
  }
}

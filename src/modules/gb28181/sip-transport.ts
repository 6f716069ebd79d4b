import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup, LookupOneOptions } from 'node:dns';
import { connect, createServer, isIP, Server, Socket } from 'node:net';
import { headerEnd } from './sip-message';

/** Where a message came from, and how to answer it (the same socket for TCP). */
export interface Peer {
  transport: 'UDP' | 'TCP';
  address: string;
  port: number;
  conn?: Socket;
  /**
   * TCP: the connection's reading is held until this time (ms since epoch) — back-pressure set by
   * the transport's per-source ceiling or by the server's per-device limit; 0 = not held.
   */
  holdUntil?: number;
}

export interface TransportOptions {
  host: string;
  port: number;
  /** Largest UDP datagram taken as a message; larger ones go to `onOversized` (answered 513). */
  maxMessageBytes: number;
  /** Largest message on a TCP stream (a large Catalog); larger ones close the connection. */
  maxTcpMessageBytes: number;
  udpReceiveBufferBytes: number;
  tcpIdleSeconds: number;
  maxTcpConnections: number;
  /** The per-source ceiling (address:port over UDP, the connection over TCP), against abuse; 0 = none. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
}

/** Why input was not taken (counted); `tcp_held` is not a drop: the connection waits, its message is kept. */
export type DropReason = 'rate_limited' | 'too_large' | 'tcp_framing' | 'tcp_overflow' | 'too_many_connections' | 'tcp_held';

/** A token bucket's state; kept by whoever owns the thing limited (a source, a connection, a device). */
export interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets of one rate: `take` spends a token or says how long until there is one. The
 * buckets live with what they limit (no key strings per message). UDP sources are kept here by
 * address and port; buckets idle for a minute are forgotten by `prune`.
 */
export class RateLimiter {
  private readonly sources = new Map<string, Map<number, Bucket>>();
  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {}

  /** 0 when a token was taken; otherwise the milliseconds until one is available (nothing taken). */
  take(b: Bucket, now = Date.now()): number {
    if (this.perSecond <= 0) return 0;
    if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.perSecond) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / this.perSecond));
  }

  fresh(now = Date.now()): Bucket {
    return { tokens: this.burst, at: now };
  }

  /** The bucket of a UDP source (address, port). */
  source(address: string, port: number, now = Date.now()): Bucket {
    let ports = this.sources.get(address);
    if (!ports) this.sources.set(address, (ports = new Map()));
    let b = ports.get(port);
    if (!b) ports.set(port, (b = this.fresh(now)));
    return b;
  }

  prune(now = Date.now()): void {
    for (const [a, ports] of this.sources) {
      for (const [p, b] of ports) if (now - b.at > 60_000) ports.delete(p);
      if (ports.size === 0) this.sources.delete(a);
    }
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
 * the handler never blocks the loop (async work is its own). Limits, never silent: a UDP source
 * over its ceiling is counted and dropped (answering a flood would amplify it), a datagram over
 * `maxMessageBytes` goes to `onOversized` (the server answers 513); a TCP connection over its
 * ceiling, or held by the server (`peer.holdUntil`, the per-device limit), stops being read until
 * its time — back-pressure, no message dropped (TCP peers do not retransmit). A TCP peer that
 * sends unframeable data or a message over `maxTcpMessageBytes` is disconnected.
 */
export class SipTransport {
  private udp?: UdpSocket;
  private tcp?: Server;
  private readonly conns = new Set<Socket>();
  readonly limiter: RateLimiter;

  constructor(
    private readonly opts: TransportOptions,
    private readonly onMessage: (buf: Buffer, peer: Peer) => void,
    private readonly onDrop: (reason: DropReason, peer?: Peer) => void,
    private readonly onOversized: (buf: Buffer, peer: Peer) => void = () => undefined,
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

  /** The bound UDP socket (handed to the SIP helper processes, SipWorkers); undefined when not running. */
  get udpSocket(): UdpSocket | undefined {
    return this.udp;
  }

  /**
   * A datagram a helper process read from the shared socket and handed over: taken as if read here,
   * past the per-source ceiling (the helper applied its own).
   */
  inject(buf: Buffer, peer: Peer): void {
    if (buf.length > this.opts.maxMessageBytes) {
      this.onDrop('too_large', peer);
      return this.onOversized(buf, peer);
    }
    this.onMessage(buf, peer);
  }

  private receive(buf: Buffer, peer: Peer): void {
    if (this.limiter.perSecond > 0 && this.limiter.take(this.limiter.source(peer.address, peer.port)) > 0) return this.onDrop('rate_limited', peer);
    if (buf.length > this.opts.maxMessageBytes) {
      this.onDrop('too_large', peer);
      return this.onOversized(buf, peer);
    }
    this.onMessage(buf, peer);
  }

  /**
   * Opens a TCP connection of our own (the cascade's link to a superior platform over TCP) and reads
   * it like an accepted one: messages framed by Content-Length to `onMessage`, the same limits. Rejects
   * when the connection cannot be made within `timeoutMs`.
   */
  async connect(host: string, port: number, timeoutMs: number): Promise<Peer> {
    if (!this.tcp) throw new Error('the SIP transport is not running');
    const c = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        c.destroy();
        reject(new Error(`TCP connection to ${host}:${port} timed out`));
      }, timeoutMs);
      c.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      c.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    return this.accept(c);
  }

  private accept(c: Socket): Peer {
    this.conns.add(c);
    c.setNoDelay(true);
    c.setTimeout(this.opts.tcpIdleSeconds * 1000, () => c.destroy());
    c.on('error', () => undefined);
    const peer: Peer = { transport: 'TCP', address: c.remoteAddress ?? '', port: c.remotePort ?? 0, conn: c, holdUntil: 0 };
    const bucket = this.limiter.fresh();
    let pending: Buffer = Buffer.alloc(0);
    let held: NodeJS.Timeout | null = null;
    c.on('close', () => {
      this.conns.delete(c);
      if (held) clearTimeout(held);
    });
    /** Stops reading until `ms` from now, then goes on with what is buffered. */
    const hold = (ms: number) => {
      c.pause();
      held = setTimeout(() => {
        held = null;
        if (c.destroyed) return;
        c.resume();
        drain();
      }, ms);
    };
    const drain = (): void => {
      for (;;) {
        if (held) return;
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
          if (pending.length > this.opts.maxTcpMessageBytes) return this.kill(c, 'tcp_overflow');
          return;
        }
        const head = pending.toString('latin1', 0, end.at);
        const cl = /(?:^|\n)(?:content-length|l)[ \t]*:[ \t]*(\d{1,9})[ \t]*\r?$/im.exec(head);
        if (!cl) return this.kill(c, 'tcp_framing');
        const total = end.at + end.sepLen + Number(cl[1]);
        if (total > this.opts.maxTcpMessageBytes) return this.kill(c, 'too_large');
        if (pending.length < total) return;
        // The per-source ceiling: wait for a token instead of dropping (the message stays buffered).
        const wait = this.limiter.take(bucket);
        if (wait > 0) {
          this.onDrop('tcp_held', peer);
          return hold(wait);
        }
        const msg = pending.subarray(0, total);
        pending = pending.subarray(total);
        this.onMessage(msg, peer);
        if (c.destroyed) return;
        // The server's per-device limit asked this connection to wait.
        if (peer.holdUntil) {
          const ms = peer.holdUntil - Date.now();
          peer.holdUntil = 0;
          if (ms > 0) return hold(ms);
        }
      }
    };
    c.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      drain();
    });
    return peer;
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

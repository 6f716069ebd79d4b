import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, Server, Socket } from 'node:net';
import { JitterBuffer, JitterStats, parseRtp, Rfc4571Deframer, RtpPacket } from './rtp';

export type RtpTransport = 'udp' | 'tcp-passive' | 'tcp-active';

/**
 * Ports of the configured RTP range handed out to live sessions. A port is tried (bound) by the
 * receiver; one found busy (another process) is skipped and retried later.
 */
export class RtpPortPool {
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(
    readonly min: number,
    readonly max: number,
  ) {
    this.cursor = min;
  }

  /** Candidate ports, round-robin from where the last allocation stopped (a just-freed port cools down). */
  *candidates(): Generator<number> {
    const n = this.max - this.min + 1;
    for (let i = 0; i < n; i++) {
      const p = this.min + ((this.cursor - this.min + i) % n);
      if (this.used.has(p)) continue;
      this.cursor = p + 1 > this.max ? this.min : p + 1;
      yield p;
    }
  }

  take(p: number): void {
    this.used.add(p);
  }

  release(p: number): void {
    this.used.delete(p);
  }

  get inUse(): number {
    return this.used.size;
  }
}

export interface RtpReceiverOptions {
  transport: RtpTransport;
  host: string;
  pool: RtpPortPool;
  /** Expected SSRC; packets with another are dropped (null: the first seen is kept). */
  ssrc: number | null;
  jitterPackets: number;
  jitterDelayMs: number;
  /** Ordered payloads (PS bytes) and how many packets were lost just before. */
  onPayload: (payload: Buffer, lost: number) => void;
  /** The TCP connection closed or failed after it was up. */
  onClosed: (why: string) => void;
}

/**
 * Receives one RTP stream: a UDP socket, or a TCP listener (we are passive: the device connects)
 * or a TCP connection we open to the device (active), RFC 4571 framed. Packets are checked
 * (version, SSRC), put back in order, stripped of headers, and their payloads passed on.
 */
export class RtpReceiver {
  port = 0;
  readonly stats: JitterStats & { badSsrc: number; notRtp: number; foreignSource: number; bytes: number } = {
    received: 0,
    reordered: 0,
    lost: 0,
    duplicates: 0,
    late: 0,
    badSsrc: 0,
    notRtp: 0,
    foreignSource: 0,
    bytes: 0,
  };
  /** UDP: the sender's address:port, fixed by its first valid packet. */
  private source: string | null = null;
  private udp?: UdpSocket;
  private server?: Server;
  private conn?: Socket;
  private readonly candidates = new Set<Socket>();
  private readonly jitter: JitterBuffer;
  private closed = false;
  lastPacketAt = 0;

  constructor(private readonly o: RtpReceiverOptions) {
    this.jitter = new JitterBuffer(o.jitterPackets, o.jitterDelayMs, (p, lost) => o.onPayload(p.payload, lost));
  }

  /** Binds a port of the range (UDP, or TCP passive listens; TCP active only reserves one for the SDP). */
  async open(): Promise<number> {
    // TCP active: we connect out, nothing to bind; the SDP carries the discard port (RFC 4145 §4).
    if (this.o.transport === 'tcp-active') return 9;
    for (const port of this.o.pool.candidates()) {
      try {
        if (this.o.transport === 'udp') await this.bindUdp(port);
        else if (this.o.transport === 'tcp-passive') await this.listenTcp(port);
        this.o.pool.take(port);
        this.port = port;
        return port;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' && (e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
      }
    }
    throw new Error('no free RTP port in the configured range');
  }

  private bindUdp(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: this.o.host.includes(':') ? 'udp6' : 'udp4' });
      s.once('error', (e) => {
        s.close();
        reject(e);
      });
      s.bind(port, this.o.host, () => {
        s.removeAllListeners('error');
        s.on('error', () => undefined);
        try {
          s.setRecvBufferSize(4 * 1024 * 1024);
        } catch {
          // capped by net.core.rmem_max: the socket still works
        }
        s.on('message', (m, rinfo) => {
          // The first packet with our SSRC fixes the source; another sender on our port is dropped.
          const from = `${rinfo.address}:${rinfo.port}`;
          if (this.source !== null && from !== this.source) {
            this.stats.foreignSource++;
            return;
          }
          if (this.onPacket(m) && this.source === null) this.source = from;
        });
        this.udp = s;
        resolve();
      });
    });
  }

  private listenTcp(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = createServer((c) => {
        // One media connection per session (a=connection:new, RFC 4145): the first to send RTP with
        // our SSRC is the device's; a stranger connecting first cannot take the session.
        if (this.conn || this.closed) return c.destroy();
        this.candidate(c);
      });
      srv.maxConnections = 8;
      srv.once('error', reject);
      srv.listen(port, this.o.host, () => {
        srv.removeAllListeners('error');
        srv.on('error', () => undefined);
        this.server = srv;
        resolve();
      });
    });
  }

  /** TCP active: connect to the device's media address from its SDP answer. */
  connectTo(host: string, port: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const c = connect({ host, port });
      const t = setTimeout(() => {
        c.destroy();
        reject(new Error(`TCP media connection to ${host}:${port} timed out`));
      }, timeoutMs);
      c.once('connect', () => {
        clearTimeout(t);
        this.attach(c);
        resolve();
      });
      c.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** A passive-mode connection on probation: promoted by its first valid packet, else closed after 10 s. */
  private candidate(c: Socket): void {
    c.setNoDelay(true);
    c.on('error', () => undefined);
    const deframer = new Rfc4571Deframer();
    const probation = setTimeout(() => c.destroy(), 10_000);
    const onData = (chunk: Buffer) =>
      deframer.push(chunk, (p) => {
        if (this.conn === c) return void this.onPacket(p);
        if (this.conn || !this.onPacket(p)) return;
        clearTimeout(probation);
        this.conn = c;
        c.on('close', () => {
          if (!this.closed) this.o.onClosed('the device closed the TCP media connection');
        });
      });
    this.candidates.add(c);
    c.on('data', onData);
    c.on('close', () => {
      clearTimeout(probation);
      this.candidates.delete(c);
    });
  }

  private attach(c: Socket): void {
    this.conn = c;
    c.setNoDelay(true);
    const deframer = new Rfc4571Deframer();
    c.on('data', (chunk: Buffer) => deframer.push(chunk, (p) => void this.onPacket(p)));
    c.on('error', () => undefined);
    c.on('close', () => {
      if (!this.closed) this.o.onClosed('the device closed the TCP media connection');
    });
  }

  /** Handles one packet; false when it was refused (not RTP, wrong SSRC). */
  private onPacket(buf: Buffer): boolean {
    if (this.closed) return false;
    const p: RtpPacket | null = parseRtp(buf);
    if (!p) {
      this.stats.notRtp++;
      return false;
    }
    if (this.o.ssrc !== null && p.ssrc !== this.o.ssrc) {
      this.stats.badSsrc++;
      return false;
    }
    this.lastPacketAt = Date.now();
    this.stats.bytes += p.payload.length;
    this.jitter.push(p);
    Object.assign(this.stats, this.jitter.stats);
    return true;
  }

  /** The SSRC the device said it will use (its SDP answer's y=), when it differs from ours. */
  expectSsrc(ssrc: number | null): void {
    this.o.ssrc = ssrc;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.jitter.close();
    this.udp?.close();
    this.server?.close();
    for (const c of this.candidates) c.destroy();
    this.conn?.destroy();
    if (this.port) this.o.pool.release(this.port);
  }
}

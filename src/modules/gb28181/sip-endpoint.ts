import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Socket as UdpSocket } from 'node:dgram';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { malformedInput } from '../../infra/observability/metrics';
import type { Gb28181Config } from '../../config/sections';
import { sipDropped, sipEvents, sipRequests } from './gb28181.metrics';
import { buildResponse, ResponseBasis, tagOf } from './sip-message';
import { Bucket, DropReason, Peer, RateLimiter, SipTransport } from './sip-transport';

/**
 * The platform's SIP endpoint: the UDP+TCP socket (with its per-source rate limit), the cache of
 * server-transaction answers that makes a retransmitted request get the very same answer, and
 * the reply helpers every handler answers with. It knows nothing of what the messages mean:
 * `start` takes the one function that routes them (SipServer).
 */
@Injectable()
export class SipEndpoint {
  private readonly logger = new Logger('GB28181');
  private readonly cfg: Gb28181Config;
  private transport?: SipTransport;
  /** Answers of recent server transactions (null = still being worked on); two generations rotated every TTL. */
  private txCurrent = new Map<string, Buffer | null>();
  private txPrevious = new Map<string, Buffer | null>();
  private rotation: NodeJS.Timeout | null = null;
  private lastWarnAt = 0;
  /** The address put in Via/Call-ID of the platform's own requests. */
  advertised = '';
  /** The per-device limit (gb28181.deviceRateLimitPerSecond); buckets live on the device states. */
  private readonly deviceLimiter: RateLimiter;
  /** Alarm MESSAGEs' own per-device budget (gb28181.deviceAlarmRateLimitPerSecond): keepalive volume never costs an alarm (attack A3). */
  private readonly alarmLimiter: RateLimiter;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.cfg = config.gb28181;
    this.deviceLimiter = new RateLimiter(this.cfg.deviceRateLimitPerSecond, this.cfg.deviceRateLimitBurst);
    this.alarmLimiter = new RateLimiter(this.cfg.deviceAlarmRateLimitPerSecond, this.cfg.deviceAlarmRateLimitBurst);
  }

  /**
   * The per-device limit, never silent: true when the request must not be handled — over UDP it
   * has been answered 503 with Retry-After (RFC 3261 §21.5.4: the device retries). Over TCP the
   * request is handled and the connection is held until the device's next token (back-pressure).
   * `alarm`: an Alarm MESSAGE, taken from the device's alarm budget instead (its own, attack A3).
   */
  deviceLimited(device: { bucket: Bucket | null; alarmBucket: Bucket | null }, req: ResponseBasis, peer: Peer, alarm = false): boolean {
    const limiter = alarm ? this.alarmLimiter : this.deviceLimiter;
    if (limiter.perSecond <= 0) return false;
    const wait = alarm ? limiter.take((device.alarmBucket ??= limiter.fresh())) : limiter.take((device.bucket ??= limiter.fresh()));
    if (wait === 0) return false;
    sipEvents.inc({ event: peer.transport === 'TCP' ? 'device_rate_held' : 'device_rate_limited' });
    if (peer.transport === 'TCP') {
      peer.holdUntil = Date.now() + wait;
      return false;
    }
    this.reply(req, peer, 503, 'rate_limited', null, [['Retry-After', Math.max(1, Math.ceil(wait / 1000))]]);
    return true;
  }

  get port(): number {
    return this.transport?.localPort ?? 0;
  }

  get running(): boolean {
    return !!this.transport;
  }

  /**
   * Opens the socket. `onOversized`: a UDP datagram over gb28181.maxMessageBytes (the server
   * answers it 513, RFC 3261 §21.5.11). A wildcard host with no advertised host is warned about
   * at boot: the platform's own requests would carry Via 127.0.0.1 and devices could not answer.
   */
  async start(onMessage: (buf: Buffer, peer: Peer) => void, onOversized?: (buf: Buffer, peer: Peer) => void): Promise<void> {
    const host = this.cfg.host;
    const wildcard = host === '0.0.0.0' || host === '::';
    this.advertised = this.cfg.advertisedHost || (wildcard ? '127.0.0.1' : host);
    if (wildcard && !this.cfg.advertisedHost)
      this.logger.warn(
        `gb28181.host is ${host} and gb28181.advertisedHost is not set: the platform's requests (queries, SUBSCRIBE, INVITE) carry Via 127.0.0.1 and devices cannot answer them — set SHOUHU__GB28181__ADVERTISED_HOST to the address devices reach`,
      );
    this.transport = new SipTransport(
      {
        host,
        port: this.cfg.port,
        maxMessageBytes: this.cfg.maxMessageBytes,
        maxTcpMessageBytes: this.cfg.maxTcpMessageBytes,
        udpReceiveBufferBytes: this.cfg.udpReceiveBufferBytes,
        tcpIdleSeconds: this.cfg.tcpIdleSeconds,
        maxTcpConnections: this.cfg.maxTcpConnections,
        rateLimitPerSecond: this.cfg.rateLimitPerSecond,
        rateLimitBurst: this.cfg.rateLimitBurst,
      },
      onMessage,
      (reason: DropReason, peer?: Peer) => {
        if (reason === 'tcp_held') return sipEvents.inc({ event: 'tcp_backpressure' });
        if (reason === 'too_large' || reason === 'tcp_framing' || reason === 'tcp_overflow') malformedInput.inc({ source: 'sip', reason });
        sipDropped.inc({ reason });
        if (reason === 'rate_limited' && peer)
          this.warn(`SIP source ${peer.address}:${peer.port} is over the per-source ceiling (gb28181.rateLimitPerSecond): its datagrams are dropped`);
      },
      onOversized,
    );
    await this.transport.start();
    this.rotation = setInterval(() => {
      this.txPrevious = this.txCurrent;
      this.txCurrent = new Map();
    }, this.cfg.transactionTtlMs);
    this.rotation.unref();
  }

  async stop(): Promise<void> {
    if (this.rotation) clearInterval(this.rotation);
    this.rotation = null;
    await this.transport?.stop();
    this.transport = undefined;
  }

  /** The bound UDP socket, shared with the SIP helper processes (SipWorkers). */
  get udpSocket(): UdpSocket | undefined {
    return this.transport?.udpSocket;
  }

  /** A datagram read by a helper process from the shared socket: handled as if read here. */
  inject(buf: Buffer, peer: Peer): void {
    this.transport?.inject(buf, peer);
  }

  /** What a helper process answered or refused on its own (SipWorkers), counted as if answered here. */
  countRemote(answered: number, limited: number, dropped: number): void {
    if (answered) this.counter('keepalive', 200).inc(answered);
    if (limited) {
      this.counter('rate_limited', 503).inc(limited);
      sipEvents.inc({ event: 'device_rate_limited' }, limited);
    }
    if (dropped) sipDropped.inc({ reason: 'rate_limited' }, dropped);
  }

  /** Forgets idle rate-limit buckets (housekeeping). */
  prune(now: number): void {
    this.transport?.limiter.prune(now);
  }

  /** True when a reply can go to `peer` (the socket is up; a TCP peer's connection is still open). */
  reachable(peer: Peer): boolean {
    return !!this.transport && (peer.transport !== 'TCP' || (!!peer.conn && !peer.conn.destroyed));
  }

  send(peer: Peer, buf: Buffer): void {
    this.transport?.send(peer, buf);
  }

  /** A TCP connection of our own to `host:port` (the cascade upward over TCP), read like an accepted one. */
  connect(host: string, port: number, timeoutMs: number): Promise<Peer> {
    if (!this.transport) return Promise.reject(new Error('the SIP endpoint is not running'));
    return this.transport.connect(host, port, timeoutMs);
  }

  warn(message: string): void {
    // At most one warning per 10 s: a failing dependency must not flood the log at packet rate.
    const now = Date.now();
    if (now - this.lastWarnAt < 10_000) return;
    this.lastWarnAt = now;
    this.logger.warn(message);
  }

  log(message: string): void {
    this.logger.log(message);
  }

  // ------------------------------------------------------------------ server transactions

  /** A number per TCP connection, so a transaction key names the connection a request came on. */
  private readonly connIds = new WeakMap<object, number>();
  private nextConnId = 1;

  /**
   * The server-transaction key of a request (RFC 3261 §17.2.3: branch, sent-by, method — here also
   * CSeq, From user and Call-ID for RFC 2543 peers without a branch) and where it came from: the
   * transport and the source address:port, or the TCP connection. Without the source a stranger who
   * guessed a device's next branch/Call-ID/CSeq had its refusal cached and replayed to the device's
   * own later request (attack pass: the device's alarm got the stranger's 403 and was never taken).
   */
  txKey(req: { via: { branch: string }; cseq: { seq: number }; callId: string; from: { user: string } }, method: string, peer: Peer): string {
    let src: string;
    if (peer.transport === 'TCP' && peer.conn) {
      let id = this.connIds.get(peer.conn);
      if (id === undefined) this.connIds.set(peer.conn, (id = this.nextConnId++));
      src = `T${id}`;
    } else src = `${peer.transport[0]}${peer.address}:${peer.port}`;
    return `${src}\n${req.via.branch}\n${req.cseq.seq}${method}\n${req.from.user}\n${req.callId}`;
  }

  /** Forgets the transaction `key` (its answer was not to be cached: a retransmission is handled anew). */
  forget(key: string): void {
    this.txCurrent.delete(key);
    this.txPrevious.delete(key);
  }

  /** True while no answer is cached (the keepalive fast path then skips building a key). */
  get noneCached(): boolean {
    return this.txCurrent.size === 0 && this.txPrevious.size === 0;
  }

  /**
   * A retransmission of a request seen within the TTL: the same answer again, or nothing while
   * the first is being worked on. Returns false when `key` is a new transaction.
   */
  retransmitted(key: string, peer: Peer): boolean {
    const cached = this.txCurrent.get(key) ?? this.txPrevious.get(key);
    if (cached === undefined) return false;
    if (cached) this.transport?.send(peer, cached);
    return true;
  }

  /** The request under `key` is being worked on asynchronously: its retransmissions are swallowed until it is answered. */
  working(key: string): void {
    this.txCurrent.set(key, null);
  }

  /** An unexpected failure: answer 500 (not cached, so a retransmission retries) and log rarely. */
  fail(req: ResponseBasis | null, peer: Peer, key: string | null, kind: string, e: unknown, retryAfterSeconds = 0): void {
    if (key) {
      this.txCurrent.delete(key);
      this.txPrevious.delete(key);
    }
    this.warn(`GB28181 ${kind} failed: ${(e as Error)?.message ?? e}`);
    // With a Retry-After: 503, the platform cannot decide now (its database did not answer) and the device is to try again then (RFC 3261 §21.5.4).
    if (req && retryAfterSeconds > 0) this.reply(req, peer, 503, kind, null, [['Retry-After', retryAfterSeconds]]);
    else if (req) this.reply(req, peer, 500, kind, null);
  }

  /**
   * The To tag our answer to `req` carries (its own when it has one): deterministic, so a retransmission
   * gets the very same answer; without a branch (RFC 2543) the CSeq tells requests of one Call-ID apart.
   * A dialog we accept (a superior's SUBSCRIBE) is known by it.
   */
  toTagFor(req: ResponseBasis): string {
    return req.to.tag ?? tagOf((req.via.branch || `${req.cseq.seq}`) + req.callId);
  }

  /** Answers `req`; with a `key`, the answer is cached for its retransmissions. */
  reply(req: ResponseBasis, peer: Peer, status: number, kind: string, key: string | null, headers?: [string, string | number][], body?: Buffer): void {
    const buf = buildResponse(req, status, {
      toTag: this.toTagFor(req),
      source: { address: peer.address, port: peer.port },
      headers,
      body,
    });
    if (key) this.txCurrent.set(key, buf);
    this.countRequest(kind, status);
    this.transport?.send(peer, buf);
  }

  private readonly counters = new Map<string, { inc: (n?: number) => void }>();

  /** Labelled counter children cached: resolving labels per packet is measurable at keepalive rates. */
  private counter(kind: string, status: number): { inc: (n?: number) => void } {
    const k = kind + status;
    let c = this.counters.get(k);
    if (!c) this.counters.set(k, (c = sipRequests.labels(kind, String(status))));
    return c;
  }

  private countRequest(kind: string, status: number): void {
    this.counter(kind, status).inc();
  }
}

import type { RemoteInfo, Socket } from 'node:dgram';
import { scanKeepalive } from './keepalive-fast';
import { buildResponse, tagOf } from './sip-message';
import { Bucket, RateLimiter } from './sip-transport';

/**
 * A SIP helper process (gb28181.processes > 1, issue 16 §8). The primary process forks it and
 * hands it the SIP UDP socket itself (the same bound socket, so the kernel gives each datagram to
 * whichever process reads first and every answer leaves from the address and port the device sent
 * to). It answers the keepalives of devices registered over UDP — nearly all SIP traffic — from
 * a replica of their registration (address, port, expiry) that the primary keeps current, and
 * hands everything else to the primary unchanged (REGISTER and its digest, alarms, catalogs,
 * answers to the primary's requests, keepalives of devices it does not know yet): one process
 * decides registrations, originates requests and owns their transactions and dialogs.
 *
 * What it handled goes back in batches: the ids of the devices whose keepalives it answered (the
 * primary turns them into heartbeats exactly as its own) and counts of what it refused.
 * No Nest, no database, no Redis: it starts in milliseconds and holds only the replica.
 */

/** Limits as the primary has them (gb28181 config), applied per process. */
export interface SipWorkerOptions {
  maxMessageBytes: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  deviceRateLimitPerSecond: number;
  deviceRateLimitBurst: number;
  /** How often answered keepalives are reported to the primary (ms). */
  reportMs: number;
}

/** One device as the replica holds it: [id, address, port, registration expiry ms]; expiry 0 = not registered over UDP (forget it). */
export type ReplicaEntry = [string, string, number, number];

export type ToSipWorker = { t: 'start'; o: SipWorkerOptions } | { t: 'sync'; d: ReplicaEntry[]; full: boolean } | { t: 'stop' };

export type FromSipWorker =
  | { t: 'ready' }
  /** A datagram for the primary, as received. */
  | { t: 'fwd'; b: Uint8Array; a: string; p: number }
  /** Keepalives answered 200 (device ids, one per keepalive), answered 503 (per-device limit), dropped (per-source ceiling). */
  | { t: 'ka'; ids: string[]; limited: number; dropped: number };

interface Replica {
  address: string;
  port: number;
  expiresAt: number;
  bucket: Bucket | null;
}

const GB_ID = /^\d{20}$/;

/** The helper's work, apart from the process plumbing (so it can be driven directly). */
export class SipWorker {
  readonly devices = new Map<string, Replica>();
  private answered: string[] = [];
  private limited = 0;
  private dropped = 0;
  private readonly sources: RateLimiter;
  private readonly perDevice: RateLimiter;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly o: SipWorkerOptions,
    private readonly sock: Pick<Socket, 'send'>,
    private readonly post: (m: FromSipWorker) => void,
  ) {
    this.sources = new RateLimiter(o.rateLimitPerSecond, o.rateLimitBurst);
    this.perDevice = new RateLimiter(o.deviceRateLimitPerSecond, o.deviceRateLimitBurst);
  }

  sync(entries: ReplicaEntry[], full: boolean): void {
    if (full) this.devices.clear();
    for (const [id, address, port, expiresAt] of entries) {
      if (expiresAt <= 0) {
        this.devices.delete(id);
        continue;
      }
      const had = this.devices.get(id);
      if (had && had.address === address && had.port === port) had.expiresAt = expiresAt;
      else this.devices.set(id, { address, port, expiresAt, bucket: null });
    }
  }

  onDatagram(buf: Buffer, r: RemoteInfo): void {
    const now = Date.now();
    if (this.sources.perSecond > 0 && this.sources.take(this.sources.source(r.address, r.port, now), now) > 0) {
      this.dropped++;
      return this.schedule();
    }
    const ka = buf.length <= this.o.maxMessageBytes ? scanKeepalive(buf, this.o.maxMessageBytes) : null;
    if (ka) {
      const id = ka.from.user;
      const d = this.devices.get(id);
      // Only a device registered from this very address and port; anything else is the primary's to judge (403, moved contact…).
      if (d && d.expiresAt > now && d.port === r.port && d.address === r.address && GB_ID.test(id)) {
        const toTag = tagOf((ka.via.branch || `${ka.cseq.seq}`) + ka.callId);
        const wait = this.perDevice.perSecond > 0 ? this.perDevice.take((d.bucket ??= this.perDevice.fresh(now)), now) : 0;
        if (wait > 0) {
          // The per-device limit, as the primary answers it (RFC 3261 §21.5.4).
          this.limited++;
          const h: [string, number][] = [['Retry-After', Math.max(1, Math.ceil(wait / 1000))]];
          this.sock.send(buildResponse(ka, 503, { toTag, source: { address: r.address, port: r.port }, headers: h }), r.port, r.address);
        } else {
          this.sock.send(buildResponse(ka, 200, { toTag, source: { address: r.address, port: r.port } }), r.port, r.address);
          this.answered.push(id);
        }
        return this.schedule();
      }
    }
    this.post({ t: 'fwd', b: buf, a: r.address, p: r.port });
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.report(), this.o.reportMs);
  }

  report(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.answered.length === 0 && this.limited === 0 && this.dropped === 0) return;
    this.post({ t: 'ka', ids: this.answered, limited: this.limited, dropped: this.dropped });
    this.answered = [];
    this.limited = 0;
    this.dropped = 0;
  }
}

/** The process: waits for the primary's socket and options, then serves until told to stop or the primary goes away. */
function main(): void {
  let worker: SipWorker | null = null;
  let sock: Socket | null = null;
  const post = (m: FromSipWorker) => {
    if (process.connected) process.send!(m);
  };
  process.on('message', (m: ToSipWorker, handle?: Socket) => {
    if (m.t === 'start' && handle) {
      sock = handle;
      worker = new SipWorker(m.o, handle, post);
      const w = worker;
      handle.on('message', (buf, r) => w.onDatagram(buf, r));
      handle.on('error', () => undefined); // ICMP unreachable on send: the device is gone
      post({ t: 'ready' });
    } else if (m.t === 'sync') worker?.sync(m.d, m.full);
    else if (m.t === 'stop') {
      worker?.report();
      sock?.close();
      process.disconnect();
    }
  });
  // The primary is gone (stopped or crashed): so is this helper.
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) main();

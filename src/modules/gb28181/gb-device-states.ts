import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { sipDomain } from './gb28181.config';
import { Gb28181Store, GbDeviceRow, RegistrationWrite } from './gb28181.store';
import { Charset } from './charset';
import { Bucket, Peer } from './sip-transport';

/** What the SIP front end keeps in memory per device (the hot path never reads Postgres). */
export interface DeviceState {
  deviceId: string;
  ha1: string | null;
  ha1Realm: string | null;
  schoolId: string | null;
  registered: boolean;
  callId: string | null;
  peer: Peer | null;
  registeredAt: number | null;
  expiresAt: number;
  lastKeepaliveAt: number | null;
  /** The digest username it registers with when not its device id (gb_devices.auth_username, issue 16 §5); null = the device id. */
  authUsername: string | null;
  /** How its MANSCDP bodies are decoded (gb_devices.charset; charset.ts). */
  charset: Charset;
  /** Registry cameras under this device id; null until looked up. */
  cameraIds: string[] | null;
  loadingCameras: Promise<string[]> | null;
  /** Camera id by channel id (with `cameraIds`). */
  cameraByChannel: Map<string, string> | null;
  /**
   * Channels the device reported down (GB/T 28181-2016 §A.2.6.3 Catalog `Status` OFF, Catalog
   * Notify `Event` OFF/VLOST/DEFECT), and those its last Keepalive listed as faulty (§A.2.5
   * `<Info><DeviceList>`); null until loaded from gb_channels.
   */
  offChannels: Set<string> | null;
  faultyChannels: Set<string>;
  /** Cameras of its down channels as of the last recompute (GbCameras keeps their union); null = none. */
  downCameraIds: Set<string> | null;
  /** The cameras a keepalive refreshes: `cameraIds` without those of down channels (recomputed when either changes). */
  heartbeatIds: string[] | null;
  /** The CSeq of the REGISTER that made the registration under `callId` (RFC 3261 §10.3 step 7); 0 = not known (memory only). */
  cseq: number;
  /** Its token bucket of the per-device rate limit (SipEndpoint.deviceLimited); null until its first message. */
  bucket: Bucket | null;
  /** Its token bucket of Alarm MESSAGEs (gb28181.deviceAlarmRateLimitPerSecond), apart so keepalives never spend it; null until its first alarm. */
  alarmBucket: Bucket | null;
  /** The Catalog subscription (§9.11.1 SUBSCRIBE Event: Catalog) and its refresh timer. */
  subscription: { callId: string; fromTag: string; cseq: number; timer: NodeJS.Timeout | null; granted: boolean | null } | null;
  /** When its channels reported down are next asked about with DeviceStatus (GbChannelStatus.queryInDoubt); 0 = not scheduled. */
  statusQueryAt: number;
}

/**
 * Whether a message came from where the device registered: the REGISTER's source address and port
 * over UDP, its very connection over TCP. The REGISTER's digest (RFC 2617) authenticates the
 * registration only; MESSAGEs carry no credentials, so anything else naming a registered device id
 * is someone else's (GB/T 28181-2016 §9.1: a device talks to the platform only once registered) —
 * except from the registration's own IP address, see `fromRegisteredHost`.
 */
export function fromRegisteredPeer(state: DeviceState, peer: Peer): boolean {
  const p = state.peer;
  if (!p || p.transport !== peer.transport) return false;
  if (p.transport === 'TCP') return p.conn !== undefined && p.conn === peer.conn && !p.conn.destroyed;
  return p.port === peer.port && p.address === peer.address;
}

/**
 * Whether a message not from the registration's address/port/connection still comes from its IP
 * address: a UDP NAT mapping that timed out between keepalives and came back on another port, or a
 * TCP device that reconnected (attack A9: its alarms were refused 403 for minutes until it registered
 * again). Such a message is taken and the device's contact moved there (SipServer). The trade-off:
 * a host behind the same NAT as the device could speak for it — it could not from anywhere else.
 */
export function fromRegisteredHost(state: DeviceState, peer: Peer): boolean {
  return !!state.peer && state.peer.address === peer.address;
}

/** The live view of one device's registration (admin). */
export interface LiveRegistration {
  registered: boolean;
  expiresAt: Date | null;
  lastKeepaliveAt: Date | null;
  transport: string | null;
  address: string | null;
}

/**
 * The per-device state of the SIP front end, in memory (authoritative for registration and
 * keepalive while the SIP server runs) and written behind to gb_devices in batches: changed
 * devices are marked with `touch` and written by `flushRegistrations` (housekeeping, shutdown,
 * and before admin reads).
 */
@Injectable()
export class GbDeviceStates {
  /** The SIP domain, the digest realm of the HA1s kept here. */
  readonly domain: string;
  /** Known devices by 20-digit id. Read directly on the keepalive hot path (one look-up per message). */
  readonly devices = new Map<string, DeviceState>();
  private readonly dirty = new Set<string>();
  private flushing: Promise<void> | null = null;
  /**
   * Devices that registered with the default password (gb28181.defaultPasswordMaxDevices, A11): the
   * rows found at `load`, plus each first registration since (GbRegistrar).
   */
  defaultPasswordDevices = 0;

  private readonly unknownIdCacheMs: number;
  private readonly unknownIdCacheMax: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly store: Gb28181Store,
  ) {
    this.domain = sipDomain(config.gb28181);
    this.unknownIdCacheMs = config.gb28181.unknownIdCacheSeconds * 1000;
    this.unknownIdCacheMax = config.gb28181.unknownIdCacheMax;
  }

  /** Resumes the registrations still running when the process stopped; returns how many. */
  async load(): Promise<number> {
    this.defaultPasswordDevices = await this.store.countDefaultPasswordDevices(this.domain);
    let n = 0;
    const now = Date.now();
    for await (const rows of this.store.registered()) {
      for (const r of rows) {
        const s = this.fromRow(r);
        if (r.contactAddress && r.contactPort && r.transport === 'UDP') s.peer = { transport: 'UDP', address: r.contactAddress, port: r.contactPort };
        s.registered = r.expiresAt !== null && r.expiresAt.getTime() > now;
        this.devices.set(s.deviceId, s);
        n++;
      }
    }
    return n;
  }

  private fromRow(r: GbDeviceRow | null, deviceId?: string): DeviceState {
    return {
      deviceId: r?.deviceId ?? deviceId!,
      ha1: r?.passwordHa1 ?? null,
      ha1Realm: r?.ha1Realm ?? null,
      schoolId: r?.schoolId ?? null,
      registered: false,
      callId: r?.callId ?? null,
      peer: null,
      registeredAt: r?.registeredAt ? r.registeredAt.getTime() : null,
      expiresAt: r?.expiresAt ? r.expiresAt.getTime() : 0,
      lastKeepaliveAt: r?.lastKeepaliveAt ? r.lastKeepaliveAt.getTime() : null,
      charset: r?.charset ?? 'auto',
      authUsername: r?.authUsername ?? null,
      cameraIds: null,
      loadingCameras: null,
      cameraByChannel: null,
      offChannels: null,
      faultyChannels: new Set(),
      downCameraIds: null,
      heartbeatIds: null,
      subscription: null,
      statusQueryAt: 0,
      cseq: 0,
      bucket: null,
      alarmBucket: null,
    };
  }

  /**
   * Ids read from gb_devices and found absent, until when (ms) that is believed (gb28181.unknownIdCacheSeconds), oldest
   * first, at most gb28181.unknownIdCacheMax: a REGISTER flood for made-up ids costs one read per id and period, not one
   * per packet (attack pass 4 #1). Forgotten when the id is kept or provisioned here.
   */
  private readonly absent = new Map<string, number>();

  /** The state of a device when it needs no read: in memory, or a fresh state for an id recently found absent; else null. */
  cached(deviceId: string, now = Date.now()): DeviceState | null {
    const s = this.devices.get(deviceId);
    if (s) return s;
    const until = this.absent.get(deviceId);
    if (until === undefined) return null;
    if (until > now) return this.fromRow(null, deviceId);
    this.absent.delete(deviceId);
    return null;
  }

  /**
   * The state of a device, from memory or its row. Only devices with a row are kept; an unknown
   * id gets a fresh state that is kept once it authenticates (`keep`).
   */
  async stateOf(deviceId: string): Promise<DeviceState> {
    const c = this.cached(deviceId);
    if (c) return c;
    const row = await this.store.device(deviceId);
    const s = this.devices.get(deviceId) ?? this.fromRow(row, deviceId);
    if (row) this.devices.set(deviceId, s);
    else if (this.unknownIdCacheMs > 0 && this.unknownIdCacheMax > 0 && !this.devices.has(deviceId)) {
      this.absent.delete(deviceId);
      this.absent.set(deviceId, Date.now() + this.unknownIdCacheMs);
      if (this.absent.size > this.unknownIdCacheMax) this.absent.delete(this.absent.keys().next().value!);
    }
    return s;
  }

  /** Ids believed absent (tests, metrics). */
  get absentCached(): number {
    return this.absent.size;
  }

  /** Housekeeping: ids believed absent past their time are forgotten (the oldest first: stop at the first still fresh). */
  pruneAbsent(now = Date.now()): void {
    for (const [id, until] of this.absent) {
      if (until > now) break;
      this.absent.delete(id);
    }
  }

  /** Whether the device authenticates with its own password (an HA1 of this realm), not the district default. */
  ownPassword(state: DeviceState): boolean {
    return !!state.ha1 && state.ha1Realm === this.domain;
  }

  /** Whether the device is known here: a row (provisioned by an admin, or registered before) or kept since. */
  known(state: DeviceState): boolean {
    return this.devices.get(state.deviceId) === state;
  }

  keep(state: DeviceState): void {
    this.absent.delete(state.deviceId);
    this.devices.set(state.deviceId, state);
  }

  /** Told of every change (SipWorkers: the helper processes' replica follows). */
  onTouch: ((deviceId: string) => void) | null = null;

  /** The device's registration state changed: it is written at the next flush (and the SIP helper processes hear of it). */
  touch(deviceId: string): void {
    this.dirty.add(deviceId);
    this.onTouch?.(deviceId);
  }

  /** Writes the registration state of changed devices (one statement per 5000); callers share a write in progress. */
  async flushRegistrations(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.dirty.size === 0) return;
    this.flushing = this.writeDirty().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async writeDirty(): Promise<void> {
    while (this.dirty.size) {
      const ids = [...this.dirty].slice(0, 5000);
      for (const id of ids) this.dirty.delete(id);
      const rows: RegistrationWrite[] = [];
      for (const id of ids) {
        const s = this.devices.get(id);
        if (!s) continue;
        rows.push({
          deviceId: id,
          schoolId: s.schoolId,
          registered: s.registered,
          callId: s.callId,
          transport: s.peer?.transport ?? null,
          contactAddress: s.peer?.address ?? null,
          contactPort: s.peer?.port ?? null,
          registeredAt: s.registeredAt ? new Date(s.registeredAt) : null,
          expiresAt: s.expiresAt ? new Date(s.expiresAt) : null,
          lastKeepaliveAt: s.lastKeepaliveAt ? new Date(s.lastKeepaliveAt) : null,
        });
      }
      try {
        await this.store.writeRegistrations(rows);
      } catch (e) {
        for (const id of ids) this.dirty.add(id);
        throw e;
      }
    }
  }

  /** Live view of a device (memory is authoritative for registration and keepalive); null when not in memory. */
  live(deviceId: string): LiveRegistration | null {
    const s = this.devices.get(deviceId);
    if (!s) return null;
    const registered = s.registered && s.expiresAt > Date.now();
    return {
      registered,
      expiresAt: s.expiresAt ? new Date(s.expiresAt) : null,
      lastKeepaliveAt: s.lastKeepaliveAt ? new Date(s.lastKeepaliveAt) : null,
      transport: s.peer?.transport ?? null,
      address: s.peer ? `${s.peer.address}:${s.peer.port}` : null,
    };
  }

  /** After an admin change: the new password / school take effect at once. */
  applyAdminChange(deviceId: string, change: { ha1?: string | null; authUsername?: string | null; schoolId?: string | null; charset?: Charset }): void {
    this.absent.delete(deviceId); // provisioned: its row exists now
    const s = this.devices.get(deviceId);
    if (!s) return;
    if (change.ha1 !== undefined) {
      s.ha1 = change.ha1;
      s.ha1Realm = change.ha1 ? this.domain : null;
    }
    if (change.authUsername !== undefined) s.authUsername = change.authUsername;
    if (change.schoolId !== undefined) s.schoolId = change.schoolId;
    if (change.charset !== undefined) s.charset = change.charset;
  }
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Counter } from 'prom-client';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { Actor, requestContext } from '../../infra/http/request-context';
import { malformedInput, metrics } from '../../infra/observability/metrics';
import { AlarmsService } from '../alarms/alarms.service';
import { DeviceHealthService } from '../device-health/device-health.service';
import { GB_ID_PATTERN } from '../registry/registry.constants';
import { RegistryService } from '../registry/registry.service';
import { ha1, NonceTracker, parseDigest, responseMatches } from './digest';
import { alarmNote, gbTime, incidentTypeOf, isOrganisationNode, parseGbTime } from './gb-codes';
import { sipDomain } from './gb28181.config';
import { CatalogItem, Gb28181Store, GbDeviceRow, RegistrationWrite } from './gb28181.store';
import { buildManscdp, child, childText, ManscdpMessage, parseManscdp, XmlError } from './manscdp';
import { FastKeepalive, scanKeepalive } from './keepalive-fast';
import { buildRequest, buildResponse, header, params, parseSip, ResponseBasis, SipParseError, SipRequest, SipResponse } from './sip-message';
import { DropReason, Peer, SipTransport } from './sip-transport';

const sipRequests = new Counter({
  name: 'shouhu_gb28181_requests_total',
  help: 'GB/T 28181 SIP requests answered, by kind and status',
  labelNames: ['kind', 'status'],
  registers: [metrics],
});
const sipDropped = new Counter({
  name: 'shouhu_gb28181_dropped_total',
  help: 'SIP input dropped before parsing (rate limit, size, TCP framing), by reason',
  labelNames: ['reason'],
  registers: [metrics],
});
const sipEvents = new Counter({
  name: 'shouhu_gb28181_events_total',
  help: 'GB/T 28181 platform-side events (queries, catalogs, alarms without a camera…)',
  labelNames: ['event'],
  registers: [metrics],
});

/** What the SIP front end keeps in memory per device (the hot path never reads Postgres). */
interface DeviceState {
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
  /** Registry cameras under this device id; null until looked up. */
  cameraIds: string[] | null;
  loadingCameras: Promise<string[]> | null;
}

interface CatalogAssembly {
  deviceId: string;
  sumNum: number;
  items: Map<string, CatalogItem>;
  timer: NodeJS.Timeout;
}

interface ClientTx {
  resolve: (status: number) => void;
  retransmit?: NodeJS.Timeout;
  timeout: NodeJS.Timeout;
}

/** FNV-1a: a cheap deterministic tag, so a retransmitted request gets the very same To tag. */
function tagOf(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

const CATALOG_MAX_ITEMS = 10_000;
const T1 = 500;
const T2 = 4000;

/**
 * The GB/T 28181 SIP front end: device registration (digest), keepalives into device health,
 * alarms into the alarm pipeline, and the platform's Catalog / DeviceInfo queries whose answers
 * provision channels as registry cameras. Runs in the api role (and all); one process owns the
 * SIP port. Registration state is kept in memory and written behind in batches.
 */
@Injectable()
export class Gb28181Service {
  private readonly logger = new Logger('GB28181');
  readonly cfg: Gb28181Config;
  readonly domain: string;
  private transport?: SipTransport;
  private readonly nonces: NonceTracker;
  private readonly devices = new Map<string, DeviceState>();
  private readonly dirty = new Set<string>();
  /** Answers of recent server transactions (null = still being worked on); two generations rotated every TTL. */
  private txCurrent = new Map<string, Buffer | null>();
  private txPrevious = new Map<string, Buffer | null>();
  private readonly clientTxs = new Map<string, ClientTx>();
  private readonly catalogs = new Map<string, CatalogAssembly>();
  private heartbeatQueue: string[] = [];
  private heartbeatFlush: NodeJS.Timeout | null = null;
  private heartbeatsInFlight = 0;
  private timers: NodeJS.Timeout[] = [];
  private sn = Math.floor(Math.random() * 100000);
  private flushing: Promise<void> | null = null;
  private lastWarnAt = 0;
  private advertised = '';

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly store: Gb28181Store,
    private readonly registry: RegistryService,
    private readonly health: DeviceHealthService,
    private readonly alarms: AlarmsService,
  ) {
    this.cfg = config.gb28181;
    this.domain = sipDomain(this.cfg);
    this.nonces = new NonceTracker(this.cfg.nonceTtlSeconds * 1000);
  }

  // ------------------------------------------------------------------ lifecycle

  get port(): number {
    return this.transport?.localPort ?? 0;
  }

  get running(): boolean {
    return !!this.transport;
  }

  async start(): Promise<void> {
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
    const host = this.cfg.host;
    this.advertised = this.cfg.advertisedHost || (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
    this.transport = new SipTransport(
      {
        host,
        port: this.cfg.port,
        maxMessageBytes: this.cfg.maxMessageBytes,
        udpReceiveBufferBytes: this.cfg.udpReceiveBufferBytes,
        tcpIdleSeconds: this.cfg.tcpIdleSeconds,
        maxTcpConnections: this.cfg.maxTcpConnections,
        rateLimitPerSecond: this.cfg.rateLimitPerSecond,
        rateLimitBurst: this.cfg.rateLimitBurst,
      },
      (buf, peer) => this.onMessage(buf, peer),
      (reason: DropReason) => {
        if (reason === 'too_large' || reason === 'tcp_framing' || reason === 'tcp_overflow') malformedInput.inc({ source: 'sip', reason });
        sipDropped.inc({ reason });
      },
    );
    await this.transport.start();
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.cfg.transactionTtlMs, () => {
      this.txPrevious = this.txCurrent;
      this.txCurrent = new Map();
    });
    every(this.cfg.housekeepingMs, () => void this.housekeeping().catch((e) => this.warn(`housekeeping failed: ${(e as Error).message}`)));
    this.logger.log(`SIP server on ${host}:${this.port} (UDP+TCP), domain ${this.domain}, ${n} registration(s) resumed`);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.heartbeatFlush) clearTimeout(this.heartbeatFlush);
    for (const c of this.catalogs.values()) clearTimeout(c.timer);
    this.catalogs.clear();
    for (const tx of this.clientTxs.values()) {
      clearTimeout(tx.timeout);
      if (tx.retransmit) clearTimeout(tx.retransmit);
      tx.resolve(503);
    }
    this.clientTxs.clear();
    await this.transport?.stop();
    this.transport = undefined;
    await this.flushHeartbeats().catch(() => undefined);
    await this.flushRegistrations().catch(() => undefined);
  }

  private warn(message: string): void {
    // At most one warning per 10 s: a failing dependency must not flood the log at packet rate.
    const now = Date.now();
    if (now - this.lastWarnAt < 10_000) return;
    this.lastWarnAt = now;
    this.logger.warn(message);
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
      cameraIds: null,
      loadingCameras: null,
    };
  }

  // ------------------------------------------------------------------ dispatch

  private onMessage(buf: Buffer, peer: Peer): void {
    const ka = scanKeepalive(buf, this.cfg.maxMessageBytes);
    if (ka && this.onFastKeepalive(ka, peer)) return;
    let msg;
    try {
      msg = parseSip(buf, { datagram: peer.transport === 'UDP', maxBytes: this.cfg.maxMessageBytes });
    } catch (e) {
      malformedInput.inc({ source: 'sip', reason: e instanceof SipParseError ? e.reason : 'parse' });
      return;
    }
    try {
      if (msg.kind === 'response') return this.onResponse(msg);
      if (msg.method === 'ACK') return;
      const key = msg.method === 'MESSAGE' || msg.method === 'REGISTER' ? `${msg.via.branch}\n${msg.cseq.seq}${msg.method}\n${msg.from.user}\n${msg.callId}` : null;
      if (key !== null) {
        const cached = this.txCurrent.get(key) ?? this.txPrevious.get(key);
        if (cached !== undefined) {
          // A retransmission: the same answer again, or nothing while the first is being worked on.
          if (cached) this.transport?.send(peer, cached);
          return;
        }
      }
      switch (msg.method) {
        case 'REGISTER':
          this.txCurrent.set(key!, null);
          this.onRegister(msg, peer, key!).catch((e) => this.fail(msg, peer, key, 'register', e));
          return;
        case 'MESSAGE':
          this.onManscdp(msg, peer, key!);
          return;
        case 'OPTIONS':
          this.reply(msg, peer, 200, 'options', null, [['Allow', 'REGISTER, MESSAGE, OPTIONS, ACK']]);
          return;
        default:
          this.reply(msg, peer, 405, 'other', null, [['Allow', 'REGISTER, MESSAGE, OPTIONS, ACK']]);
      }
    } catch (e) {
      this.fail(msg.kind === 'request' ? msg : null, peer, null, 'dispatch', e);
    }
  }

  /** An unexpected failure: answer 500 (not cached, so a retransmission retries) and log rarely. */
  private fail(req: ResponseBasis | null, peer: Peer, key: string | null, kind: string, e: unknown): void {
    if (key) {
      this.txCurrent.delete(key);
      this.txPrevious.delete(key);
    }
    this.warn(`GB28181 ${kind} failed: ${(e as Error)?.message ?? e}`);
    if (req) this.reply(req, peer, 500, kind, null);
  }

  private reply(req: ResponseBasis, peer: Peer, status: number, kind: string, key: string | null, headers?: [string, string | number][], body?: Buffer): void {
    const buf = buildResponse(req, status, {
      toTag: tagOf(req.via.branch + req.callId),
      source: { address: peer.address, port: peer.port },
      headers,
      body,
    });
    if (key) this.txCurrent.set(key, buf);
    this.countRequest(kind, status);
    this.transport?.send(peer, buf);
  }

  private readonly counters = new Map<string, { inc: () => void }>();

  /** Labelled counter children cached: resolving labels per packet is measurable at keepalive rates. */
  private countRequest(kind: string, status: number): void {
    const k = kind + status;
    let c = this.counters.get(k);
    if (!c) this.counters.set(k, (c = sipRequests.labels(kind, String(status))));
    c.inc();
  }

  // ------------------------------------------------------------------ REGISTER

  private challenge(req: SipRequest, peer: Peer, key: string, stale: boolean): void {
    const nonce = this.nonces.issue();
    const v = `Digest realm="${this.domain}", nonce="${nonce}", qop="auth", algorithm=MD5${stale ? ', stale=true' : ''}`;
    this.reply(req, peer, 401, 'register', key, [['WWW-Authenticate', v]]);
  }

  private async stateOf(deviceId: string): Promise<DeviceState> {
    let s = this.devices.get(deviceId);
    if (s) return s;
    const row = await this.store.device(deviceId);
    s = this.devices.get(deviceId) ?? this.fromRow(row, deviceId);
    // Only devices with a row are kept; an unknown id is remembered once it authenticates.
    if (row) this.devices.set(deviceId, s);
    return s;
  }

  private async onRegister(req: SipRequest, peer: Peer, key: string): Promise<void> {
    const id = req.from.user;
    // Ids that are not 20 digits are malformed input for GB/T 28181: 400, never a challenge.
    if (!GB_ID_PATTERN.test(id)) return this.reply(req, peer, 400, 'register', key, [['Warning', '399 shouhu "From user must be a 20-digit GB/T 28181 id"']]);
    const contact = header(req, 'contact');
    const rawExpires = header(req, 'expires') ?? (contact ? params(contact.replace(/^[^>]*>/, '')).get('expires') : undefined);
    if (rawExpires === undefined || !/^\d{1,10}$/.test(rawExpires)) return this.reply(req, peer, 400, 'register', key, [['Warning', '399 shouhu "Expires required"']]);
    const expires = Number(rawExpires);
    const authz = header(req, 'authorization');
    if (!authz) return this.challenge(req, peer, key, false);
    const creds = parseDigest(authz);
    if (!creds) return this.reply(req, peer, 400, 'register', key);
    if (creds.username !== id) return this.reply(req, peer, 403, 'register', key);
    if (creds.realm !== this.domain) return this.challenge(req, peer, key, false);
    if (creds.algorithm && creds.algorithm.toUpperCase() !== 'MD5') return this.challenge(req, peer, key, false);
    if (creds.qop !== undefined && creds.qop !== 'auth') return this.challenge(req, peer, key, false);
    const nonce = this.nonces.check(creds.nonce, creds.qop ? creds.nc : undefined);
    if (nonce !== 'ok') return this.challenge(req, peer, key, nonce !== 'unknown');

    const state = await this.stateOf(id);
    const h1 = state.ha1 && state.ha1Realm === this.domain ? state.ha1 : this.cfg.defaultPassword ? ha1(id, this.domain, this.cfg.defaultPassword) : null;
    if (!h1 || !responseMatches(h1, 'REGISTER', creds)) return this.reply(req, peer, 403, 'register', key);
    this.nonces.commit(creds.nonce, creds.qop ? creds.nc : undefined);
    this.devices.set(id, state);

    const now = Date.now();
    const date: [string, string] = ['Date', gbTime(new Date(now))];
    if (expires === 0) {
      const was = state.registered;
      this.unregister(state, now);
      this.reply(req, peer, 200, 'unregister', key, [date, ['Expires', 0]]);
      if (was) await this.expireCameras(state, now);
      return;
    }
    const granted = Math.min(expires, this.cfg.maxExpiresSeconds);
    const fresh = !state.registered || state.expiresAt <= now || state.callId !== req.callId;
    state.registered = true;
    state.callId = req.callId;
    state.peer = peer;
    state.expiresAt = now + granted * 1000;
    if (fresh) state.registeredAt = now;
    this.dirty.add(id);
    const headers: [string, string | number][] = [];
    if (contact) headers.push(['Contact', contact]);
    headers.push(['Expires', granted], date);
    this.reply(req, peer, 200, 'register', key, headers);
    if (fresh) {
      // A (re)started device: learn its cameras and school, then ask what it has (§9.5, §9.5.3).
      await this.camerasOf(state, true);
      void this.queryDevice(state);
    }
  }

  private unregister(state: DeviceState, now: number): void {
    state.registered = false;
    state.expiresAt = Math.min(state.expiresAt, now);
    this.dirty.add(state.deviceId);
  }

  /** Registration ended: the device's cameras go offline at the next device-health sweep. */
  private async expireCameras(state: DeviceState, at: number): Promise<void> {
    const ids = await this.camerasOf(state);
    if (ids.length) await this.health.expire(ids, new Date(at));
  }

  /**
   * Registry cameras of a device (looked up once, then after catalogs and assignments). A device
   * with no school yet inherits the school of cameras already registered under its id.
   */
  private camerasOf(state: DeviceState, reload = false): Promise<string[]> {
    if (state.cameraIds && !reload) return Promise.resolve(state.cameraIds);
    state.loadingCameras ??= (async () => {
      try {
        const cams = await this.registry.gbDeviceCameras(state.deviceId);
        state.cameraIds = cams.map((c) => c.id);
        if (!state.schoolId && cams.length) {
          state.schoolId = cams[0].schoolId;
          this.dirty.add(state.deviceId);
        }
        // Cameras the liveness index has not seen yet (just created) join it now, with a deadline.
        if (state.cameraIds.some((c) => !this.health.index.get(c))) await this.refreshIndex();
        return state.cameraIds;
      } finally {
        state.loadingCameras = null;
      }
    })();
    return state.loadingCameras;
  }

  private indexLoad: Promise<void> | null = null;
  private indexAgain = false;

  /**
   * New cameras join the liveness index with a deadline (as the worker's periodic refresh would
   * do a little later), so their first keepalive records them online. Concurrent callers share
   * one load; a call during a load gets one more load after it (to see rows committed meanwhile).
   */
  private refreshIndex(): Promise<void> {
    if (this.indexLoad) {
      this.indexAgain = true;
      return this.indexLoad;
    }
    this.indexLoad = (async () => {
      try {
        do {
          this.indexAgain = false;
          await this.health.loadIndex({ seedAt: Date.now() });
        } while (this.indexAgain);
      } finally {
        this.indexLoad = null;
      }
    })();
    return this.indexLoad;
  }

  // ------------------------------------------------------------------ MESSAGE

  private onManscdp(req: SipRequest, peer: Peer, key: string): void {
    const id = req.from.user;
    if (!GB_ID_PATTERN.test(id)) return this.reply(req, peer, 400, 'message', key);
    const ct = header(req, 'content-type');
    if (!ct || !/^application\/manscdp\+xml\b/i.test(ct)) return this.reply(req, peer, 415, 'message', key, [['Accept', 'Application/MANSCDP+xml']]);
    let doc: ManscdpMessage;
    try {
      doc = parseManscdp(req.body);
    } catch (e) {
      malformedInput.inc({ source: 'sip', reason: e instanceof XmlError ? 'manscdp' : 'body' });
      return this.reply(req, peer, 400, 'message', key);
    }
    const state = this.devices.get(id);
    const now = Date.now();
    // Unlike some platforms, nothing is accepted from a device that is not registered (§9.1).
    if (!state || !state.registered || state.expiresAt <= now) return this.reply(req, peer, 403, doc.cmdType === 'Keepalive' ? 'keepalive' : 'message', doc.cmdType === 'Keepalive' ? null : key);
    if (doc.root === 'Notify' && doc.cmdType === 'Keepalive') return this.onKeepalive(req, peer, state, now);
    if (doc.root === 'Notify' && doc.cmdType === 'Alarm') {
      this.txCurrent.set(key, null);
      this.onAlarm(req, peer, key, state, doc).catch((e) => this.fail(req, peer, key, 'alarm', e));
      return;
    }
    if (doc.root === 'Response' && doc.cmdType === 'Catalog') {
      this.reply(req, peer, 200, 'catalog', key);
      return this.onCatalogPart(state, doc);
    }
    if (doc.root === 'Response' && doc.cmdType === 'DeviceInfo') {
      this.reply(req, peer, 200, 'device_info', key);
      this.store
        .setDeviceInfo(state.deviceId, {
          name: (childText(doc.el, 'DeviceName') ?? '').slice(0, 200),
          manufacturer: (childText(doc.el, 'Manufacturer') ?? '').slice(0, 100),
          model: (childText(doc.el, 'Model') ?? '').slice(0, 100),
          firmware: (childText(doc.el, 'Firmware') ?? '').slice(0, 100),
          channelCount: /^\d{1,6}$/.test(childText(doc.el, 'Channel') ?? '') ? Number(childText(doc.el, 'Channel')) : null,
        })
        .catch((e) => this.warn(`DeviceInfo of ${state.deviceId} not saved: ${(e as Error).message}`));
      return;
    }
    // Other notifications (MediaStatus, MobilePosition…) are acknowledged and not used.
    this.reply(req, peer, 200, 'message_other', key);
  }

  /**
   * A keepalive recognised by the fast path, handled as `onMessage` + `onManscdp` would: a
   * retransmission of a cached transaction, or a keepalive from a registered device. Anything
   * else (ids that are not 20 digits, unknown or unregistered devices: 400/403) returns false
   * and goes the general way, so those answers are built in one place only.
   */
  private onFastKeepalive(ka: FastKeepalive, peer: Peer): boolean {
    const id = ka.from.user;
    if (this.txCurrent.size || this.txPrevious.size) {
      const key = `${ka.via.branch}\n${ka.cseq.seq}MESSAGE\n${id}\n${ka.callId}`;
      const cached = this.txCurrent.get(key) ?? this.txPrevious.get(key);
      if (cached !== undefined) {
        if (cached) this.transport?.send(peer, cached);
        return true;
      }
    }
    if (!GB_ID_PATTERN.test(id)) return false;
    const state = this.devices.get(id);
    const now = Date.now();
    if (!state || !state.registered || state.expiresAt <= now) return false;
    try {
      this.onKeepalive(ka, peer, state, now);
    } catch (e) {
      this.fail(ka, peer, null, 'dispatch', e);
    }
    return true;
  }

  private onKeepalive(req: ResponseBasis, peer: Peer, state: DeviceState, now: number): void {
    // Not cached: the answer is deterministic (To tag from the branch), and a repeat is harmless.
    this.reply(req, peer, 200, 'keepalive', null);
    state.lastKeepaliveAt = now;
    state.peer = peer; // NAT mappings move; queries go where the device is now
    if (state.cameraIds) this.queueHeartbeats(state.cameraIds);
    else void this.camerasOf(state).then((ids) => this.queueHeartbeats(ids), (e) => this.warn(`camera lookup failed: ${(e as Error).message}`));
  }

  /** Heartbeats are batched (one pipelined Redis round trip per batch), as the HTTP gateway route does. */
  private queueHeartbeats(ids: string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.heartbeatQueue.push(id);
    const max = this.config.liveness.maxBatchSize;
    if (this.heartbeatQueue.length >= max && this.heartbeatsInFlight < 4) void this.flushHeartbeats();
    else this.heartbeatFlush ??= setTimeout(() => void this.flushHeartbeats(), 10);
  }

  private async flushHeartbeats(): Promise<void> {
    if (this.heartbeatFlush) clearTimeout(this.heartbeatFlush);
    this.heartbeatFlush = null;
    if (this.heartbeatQueue.length === 0) return;
    const max = this.config.liveness.maxBatchSize;
    const batch = this.heartbeatQueue.splice(0, max);
    if (this.heartbeatQueue.length) this.heartbeatFlush = setTimeout(() => void this.flushHeartbeats(), 0);
    this.heartbeatsInFlight++;
    try {
      await this.health.recordHeartbeats(batch, new Date());
    } catch (e) {
      this.warn(`recording ${batch.length} keepalive heartbeat(s) failed: ${(e as Error).message}`);
    } finally {
      this.heartbeatsInFlight--;
    }
  }

  private async onAlarm(req: SipRequest, peer: Peer, key: string, state: DeviceState, doc: ManscdpMessage): Promise<void> {
    const el = doc.el;
    const method = Number(childText(el, 'AlarmMethod'));
    if (!Number.isInteger(method) || method < 1 || method > 99) {
      malformedInput.inc({ source: 'sip', reason: 'alarm_method' });
      return this.reply(req, peer, 400, 'alarm', key);
    }
    const info = child(el, 'Info');
    const rawType = (info && childText(info, 'AlarmType')) ?? childText(el, 'AlarmType');
    const type = rawType && /^\d{1,3}$/.test(rawType) ? Number(rawType) : null;
    const rawPriority = childText(el, 'AlarmPriority');
    const priority = rawPriority && /^[1-4]$/.test(rawPriority) ? Number(rawPriority) : null;
    const time = childText(el, 'AlarmTime') ?? '';
    const at = parseGbTime(time);
    const channel = GB_ID_PATTERN.test(doc.deviceId) ? doc.deviceId : state.deviceId;
    const cams = await this.registry.gbDeviceCameras(state.deviceId);
    const cam = cams.find((c) => c.channelId === channel) ?? (channel === state.deviceId && cams.length === 1 ? cams[0] : undefined);
    if (!cam) {
      // The device did its part; nobody can act on an alarm from a channel not placed in a school yet.
      sipEvents.inc({ event: 'alarm_unplaced' });
      this.reply(req, peer, 200, 'alarm', key);
      return this.sendAlarmResponse(state, doc.sn);
    }
    const actor: Actor = { type: 'device', id: cam.id, name: `GB28181 ${state.deviceId}` };
    const incidentType = incidentTypeOf(method, type);
    await requestContext.run({ requestId: `sip-${req.callId}`.slice(0, 100), ip: peer.address, actor }, () =>
      this.alarms.raiseFromDevice(
        {
          deviceKind: 'camera',
          deviceId: cam.id,
          // Deterministic: a device repeating the alarm (new transaction, same SN and time) folds into the same incident.
          eventId: `gb28181:${state.deviceId}:${channel}:${doc.sn}:${at ? at.toISOString() : time}`,
          type: incidentType,
          note: alarmNote({ method, type, priority, description: (childText(el, 'AlarmDescription') ?? '').slice(0, 500), time, longitude: childText(el, 'Longitude'), latitude: childText(el, 'Latitude') }),
        },
        actor,
      ),
    );
    this.reply(req, peer, 200, 'alarm', key);
    this.sendAlarmResponse(state, doc.sn);
  }

  /** §9.4.2: the platform confirms an alarm notification with a Response MESSAGE. */
  private sendAlarmResponse(state: DeviceState, sn: string): void {
    const body = buildManscdp('Response', [
      ['CmdType', 'Alarm'],
      ['SN', sn],
      ['DeviceID', state.deviceId],
      ['Result', 'OK'],
    ]);
    void this.sendMessage(state, body);
  }

  // ------------------------------------------------------------------ catalog

  private onCatalogPart(state: DeviceState, doc: ManscdpMessage): void {
    const sumNum = Number(childText(doc.el, 'SumNum'));
    if (!Number.isInteger(sumNum) || sumNum < 0 || sumNum > CATALOG_MAX_ITEMS) {
      malformedInput.inc({ source: 'sip', reason: 'catalog_sumnum' });
      return;
    }
    const k = `${state.deviceId}:${doc.sn}`;
    let a = this.catalogs.get(k);
    if (!a) {
      a = { deviceId: state.deviceId, sumNum, items: new Map(), timer: setTimeout(() => void this.finishCatalog(k, true), this.cfg.catalogTimeoutMs) };
      a.timer.unref();
      this.catalogs.set(k, a);
    }
    const list = child(doc.el, 'DeviceList');
    for (const item of list?.children ?? []) {
      if (item.name !== 'Item') continue;
      const ch = childText(item, 'DeviceID') ?? '';
      if (!GB_ID_PATTERN.test(ch)) {
        malformedInput.inc({ source: 'sip', reason: 'catalog_item' });
        continue;
      }
      const num = (s: string | undefined) => (s && /^-?\d{1,3}(\.\d+)?$/.test(s) && Number(s) !== 0 ? Number(s) : null);
      a.items.set(ch, {
        channelId: ch,
        name: (childText(item, 'Name') ?? '').slice(0, 200),
        manufacturer: (childText(item, 'Manufacturer') ?? '').slice(0, 100),
        model: (childText(item, 'Model') ?? '').slice(0, 100),
        status: (childText(item, 'Status') ?? '').slice(0, 20),
        parentId: (childText(item, 'ParentID') ?? '').slice(0, 200),
        longitude: num(childText(item, 'Longitude')),
        latitude: num(childText(item, 'Latitude')),
      });
    }
    if (a.items.size >= a.sumNum) void this.finishCatalog(k, false);
  }

  /** All parts arrived (or the wait ran out): record the channels and place them as cameras if the device has a school. */
  private async finishCatalog(k: string, timedOut: boolean): Promise<void> {
    const a = this.catalogs.get(k);
    if (!a) return;
    this.catalogs.delete(k);
    clearTimeout(a.timer);
    sipEvents.inc({ event: timedOut ? 'catalog_partial' : 'catalog_complete' });
    try {
      const items = [...a.items.values()];
      await this.store.saveCatalog(a.deviceId, items);
      const state = this.devices.get(a.deviceId);
      if (state?.schoolId) await this.placeChannels(a.deviceId, state.schoolId);
    } catch (e) {
      this.warn(`catalog of ${a.deviceId} not recorded: ${(e as Error).message}`);
    }
  }

  /**
   * Creates registry cameras for a device's unplaced channels (organisation nodes excepted)
   * under a school, links them, and brings them into device health.
   */
  async placeChannels(deviceId: string, schoolId: string, only?: { channelId: string; name?: string; areaKind?: string; location?: string }[]): Promise<{ deviceId: string; channelId: string; cameraId: string; created: boolean }[]> {
    const placed = await this.store.db.transaction(async (m) => {
      const rows = (await this.store.unplacedChannels(deviceId, only?.map((o) => o.channelId), m)).filter((c) => !isOrganisationNode(c.channelId));
      const extra = new Map((only ?? []).map((o) => [o.channelId, o]));
      const cams = await this.registry.provisionGbCameras(
        schoolId,
        rows.map((r) => ({
          deviceId,
          channelId: r.channelId,
          name: extra.get(r.channelId)?.name ?? r.name,
          areaKind: extra.get(r.channelId)?.areaKind,
          location: extra.get(r.channelId)?.location,
          vendor: r.manufacturer,
          model: r.model,
        })),
        m,
      );
      await this.store.linkCameras(
        m,
        cams.map((c) => ({ deviceId: c.deviceId, channelId: c.channelId, cameraId: c.id })),
      );
      return cams.map((c) => ({ deviceId: c.deviceId, channelId: c.channelId, cameraId: c.id, created: c.created }));
    });
    if (placed.length) {
      sipEvents.inc({ event: 'channels_placed' }, placed.length);
      const state = this.devices.get(deviceId);
      if (state) await this.camerasOf(state, true);
      else await this.refreshIndex();
    }
    return placed;
  }

  // ------------------------------------------------------------------ platform → device

  /** After registration: Catalog (§9.5.3) and DeviceInfo (§9.5.4) queries. */
  async queryDevice(state: DeviceState): Promise<{ catalog: number; deviceInfo: number }> {
    const q = (cmd: string) =>
      this.sendMessage(
        state,
        buildManscdp('Query', [
          ['CmdType', cmd],
          ['SN', this.nextSn()],
          ['DeviceID', state.deviceId],
        ]),
      );
    const [catalog, deviceInfo] = await Promise.all([q('Catalog'), q('DeviceInfo')]);
    sipEvents.inc({ event: catalog === 200 ? 'catalog_query_ok' : 'catalog_query_failed' });
    return { catalog, deviceInfo };
  }

  /** Queries a registered device again (admin). */
  async requery(deviceId: string): Promise<{ catalog: number; deviceInfo: number } | null> {
    const s = this.devices.get(deviceId);
    if (!s || !s.registered || !s.peer) return null;
    return this.queryDevice(s);
  }

  private nextSn(): number {
    this.sn = (this.sn + 1) % 1_000_000_000;
    return this.sn;
  }

  /**
   * A MESSAGE to the device where it last spoke from, as a non-INVITE client transaction
   * (RFC 3261 §17.1.2: retransmitted over UDP from T1 up to T2 until answered or timed out).
   * Resolves with the final status, 408 on timeout, 503 when the device cannot be reached.
   */
  private sendMessage(state: DeviceState, body: Buffer): Promise<number> {
    const peer = state.peer;
    if (!peer || !this.transport || (peer.transport === 'TCP' && (!peer.conn || peer.conn.destroyed))) return Promise.resolve(503);
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const buf = buildRequest({
      method: 'MESSAGE',
      uri: `sip:${state.deviceId}@${peer.address.includes(':') ? `[${peer.address}]` : peer.address}:${peer.port}`,
      via: `SIP/2.0/${peer.transport} ${this.advertised}:${this.port};rport;branch=${branch}`,
      from: `<sip:${this.cfg.platformId}@${this.domain}>;tag=${randomBytes(4).toString('hex')}`,
      to: `<sip:${state.deviceId}@${this.domain}>`,
      callId: `${randomBytes(8).toString('hex')}@${this.advertised}`,
      cseq: 1,
      headers: [['User-Agent', 'Shouhu']],
      body,
      contentType: 'Application/MANSCDP+xml',
    });
    return new Promise<number>((resolve) => {
      const tx: ClientTx = {
        resolve: (status) => {
          clearTimeout(tx.timeout);
          if (tx.retransmit) clearTimeout(tx.retransmit);
          this.clientTxs.delete(branch);
          resolve(status);
        },
        timeout: setTimeout(() => tx.resolve(408), this.cfg.queryTimeoutMs),
      };
      tx.timeout.unref();
      if (peer.transport === 'UDP') {
        let interval = T1;
        const again = () => {
          this.transport?.send(peer, buf);
          interval = Math.min(interval * 2, T2);
          tx.retransmit = setTimeout(again, interval);
          tx.retransmit.unref();
        };
        tx.retransmit = setTimeout(again, interval);
        tx.retransmit.unref();
      }
      this.clientTxs.set(branch, tx);
      this.transport!.send(peer, buf);
    });
  }

  private onResponse(res: SipResponse): void {
    const tx = this.clientTxs.get(res.via.branch);
    if (!tx) return;
    if (res.status < 200) {
      if (tx.retransmit) clearTimeout(tx.retransmit);
      tx.retransmit = undefined;
      return;
    }
    tx.resolve(res.status);
  }

  // ------------------------------------------------------------------ housekeeping

  /** Expired registrations go offline; nonce counts are pruned; registration state is written. */
  private async housekeeping(): Promise<void> {
    const now = Date.now();
    const expired: DeviceState[] = [];
    for (const s of this.devices.values()) {
      if (s.registered && s.expiresAt <= now) {
        s.registered = false;
        this.dirty.add(s.deviceId);
        expired.push(s);
      }
    }
    for (const s of expired) await this.expireCameras(s, s.expiresAt);
    if (expired.length) sipEvents.inc({ event: 'registration_expired' }, expired.length);
    this.nonces.prune();
    this.transport?.limiter.prune(now);
    await this.flushRegistrations();
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

  // ------------------------------------------------------------------ admin

  /** Live view of a device (memory is authoritative for registration and keepalive). */
  live(deviceId: string): { registered: boolean; expiresAt: Date | null; lastKeepaliveAt: Date | null; transport: string | null; address: string | null } | null {
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
  applyAdminChange(deviceId: string, change: { ha1?: string | null; schoolId?: string | null }): void {
    const s = this.devices.get(deviceId);
    if (!s) return;
    if (change.ha1 !== undefined) {
      s.ha1 = change.ha1;
      s.ha1Realm = change.ha1 ? this.domain : null;
    }
    if (change.schoolId !== undefined) s.schoolId = change.schoolId;
  }
}

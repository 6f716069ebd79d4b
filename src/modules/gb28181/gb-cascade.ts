import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { GbCascadeConfig, GbSuperior } from '../../config/sections';
import { inJobsPool } from '../../infra/database/pools';
import { requestContext } from '../../infra/http/request-context';
import { ForwardedIncident, IncidentQueriesService } from '../alarms';
import { AuditService } from '../audit-log';
import { RegistryService } from '../registry';
import { expectedResponse, ha1 } from './digest';
import { CascadeEvent, CascadeTree, catalogParts, encodeDoc, fieldsXml, loadCascadeTree, statusNotifyBody } from './gb-cascade-catalog';
import { cameraEvents, TransitionCursor } from './gb-cascade-status';
import { gbTime } from './gb-codes';
import { cascadeEvents, cascadeRegistered } from './gb28181.metrics';
import { childText, ManscdpMessage, parseManscdp } from './manscdp';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';
import { buildRequest, header, params, SipRequest, SipResponse } from './sip-message';
import { Bucket, Peer, RateLimiter } from './sip-transport';

/** What the status route shows of one superior. */
export interface CascadeLinkStatus {
  superiorId: string;
  host: string;
  port: number;
  transport: string;
  localId: string;
  registered: boolean;
  registeredAt: string | null;
  expiresAt: string | null;
  lastRegisterStatus: number | null;
  lastKeepaliveAt: string | null;
  lastKeepaliveStatus: number | null;
  lastKeepaliveAnsweredAt: string | null;
  missedKeepalives: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  counts: Record<string, number>;
  /** The superior's subscriptions now (§9.11): their expiry, by event package. */
  subscriptions: { catalog: string | null; alarm: string | null };
  /** Camera status changes waiting to be pushed (statusNotify). */
  statusPending: number;
}

/** The event packages a superior may subscribe to (GB/T 28181-2016 §9.11: Catalog changes, alarms). */
export type SubscriptionKind = 'Catalog' | 'Alarm';

/**
 * A superior's subscription (RFC 6665 dialog, we are the notifier): our NOTIFYs go to its Contact with
 * its From (tag) as To, our To tag as From tag, its Call-ID and our own CSeq, echoing its Event.
 */
interface Subscription {
  kind: SubscriptionKind;
  callId: string;
  /** Our side: the SUBSCRIBE's To URI with the tag our 200 gave. */
  localTag: string;
  local: string;
  /** Its side: the SUBSCRIBE's From as sent (with its tag). */
  remote: string;
  /** Request-URI of our NOTIFYs: its Contact. */
  target: string;
  event: string;
  cseq: number;
  expiresAt: number;
  timer: NodeJS.Timeout | null;
}

/** The package a SUBSCRIBE asks for: the body's CmdType (Catalog, Alarm), else its Event header (Catalog; `presence`, as some platforms name it, is the catalog). */
export function subscriptionKind(event: string | undefined, doc: ManscdpMessage | null): SubscriptionKind | null {
  const cmd = doc?.cmdType.trim().toLowerCase();
  if (cmd === 'catalog') return 'Catalog';
  if (cmd === 'alarm') return 'Alarm';
  if (cmd) return null;
  const pkg = (event ?? '').split(';')[0].trim().toLowerCase();
  return pkg === 'catalog' || pkg === 'presence' ? 'Catalog' : pkg === 'alarm' ? 'Alarm' : null;
}

interface Link {
  sup: GbSuperior;
  localId: string;
  /** The superior's domain (Request-URI and To) and ours (From). */
  domain: string;
  localDomain: string;
  peer: Peer | null;
  registered: boolean;
  registeredAt: number | null;
  expiresAt: number | null;
  lastRegisterStatus: number | null;
  lastKeepaliveAt: number | null;
  lastKeepaliveStatus: number | null;
  lastKeepaliveAnsweredAt: number | null;
  missed: number;
  lastError: string | null;
  lastErrorAt: number | null;
  nextAttemptAt: number | null;
  /** Failures in a row (the backoff's exponent). */
  failures: number;
  /** Registration dialog: one Call-ID and From tag, CSeq counting up (RFC 3261 §10.2). */
  callId: string;
  fromTag: string;
  cseq: number;
  /** The superior's last challenge, reused for the unregistration at shutdown. */
  challenge: {
    header: 'Authorization' | 'Proxy-Authorization';
    realm: string;
    nonce: string;
    qop: 'auth' | 'auth-int' | null;
    opaque: string | null;
    nc: number;
  } | null;
  timer: NodeJS.Timeout | null;
  keepalive: NodeJS.Timeout | null;
  keepaliveInFlight: boolean;
  registering: boolean;
  counts: Record<string, number>;
  /** Catalog answers (see catalogMinIntervalMs): one send at a time, the newest query waiting for the next. */
  catalog: { sending: boolean; lastStartedAt: number; waiting: ManscdpMessage | null; timer: NodeJS.Timeout | null };
  /** Its subscriptions (one dialog per package; a new SUBSCRIBE replaces the old). */
  subs: Partial<Record<SubscriptionKind, Subscription>>;
  /** Status pushes: what it was last told of each camera (channel id → event), and what waits to be told (the newest only). */
  told: Map<string, CascadeEvent>;
  pending: Map<string, CascadeEvent>;
  pushing: boolean;
  /** Its DeviceControl budget (controlPerSecond). */
  controlBucket: Bucket | null;
}

/** A forward due (gb_cascade_alarms) with what the incident says (alarms' IncidentQueriesService.forForwarding). */
type AlarmRow = { incidentId: string; superiorId: string; attempts: number; sn: number | null; incident: ForwardedIncident };

/** Incidents whose first press was this long before the previous round are looked at again (a transaction committing late). */
const ALARM_OVERLAP_MS = 60_000;

const PRIORITY_GB: Record<string, number> = { P1: 1, P2: 2, P3: 3, P4: 4 };

/**
 * Cascade to higher-level platforms (级联, issue 16 §7): we are the lower platform of each
 * configured superior (a district center reporting to the city). Per superior:
 *
 * - REGISTER with digest (GB/T 28181-2016 §9.1.2: 401/407 challenge, MD5, qop=auth, auth-int or none),
 *   refreshed at 2/3 of the Expires granted; a refused or unanswered registration is retried with
 *   backoff (retryMinMs doubling up to retryMaxMs);
 * - Keepalive Notify MESSAGEs every keepaliveSeconds (§9.6); keepaliveMaxMissed unanswered in a row,
 *   or any 4xx/5xx answer (a superior that restarted no longer knows us), and we register again;
 * - its Catalog query answered with our district as a tree (gb-cascade-catalog.ts) in parts of
 *   catalogItemsPerMessage items (SumNum), its DeviceInfo and DeviceStatus queries about us (or about
 *   one camera);
 * - incidents forwarded as Alarm Notify (§9.4) — see `pollAlarms`;
 * - our cameras' status changes pushed as Catalog Notify (Event ON/OFF/DEFECT), batched and paced — `pollStatus`;
 * - its SUBSCRIBE (Catalog, Alarm: §9.11, RFC 6665) — status changes and alarms then go as NOTIFY in the dialog;
 * - its DeviceControl / DeviceConfig answered Result ERROR, audited, limited — `controlAsked`;
 * - besides its id and address, its requests must name its domain in From and us in To — `refusedSource`.
 *
 * Runs in the process that runs the SIP server (the upward link shares its socket and port).
 */
@Injectable()
export class GbCascade {
  private readonly logger = new Logger('GB28181-cascade');
  private readonly cfg: GbCascadeConfig;
  private readonly links: Link[] = [];
  private running = false;
  private alarmTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private lastPrune = 0;
  /** Where the next round looks from (first press time); null: alarmLookbackSeconds back. */
  private alarmsFrom: Date | null = null;
  /** The last incident taken by a full round (the next one goes on after it: a burst is walked page by page). */
  private alarmsAfter: { at: Date; id: string } | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private statusPolling = false;
  private readonly transitions: TransitionCursor;
  private readonly controlLimiter: RateLimiter;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly client: SipClient,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly incidents: IncidentQueriesService,
    private readonly audit: AuditService,
  ) {
    this.cfg = config.gb28181.cascade;
    this.transitions = new TransitionCursor(db);
    this.controlLimiter = new RateLimiter(this.cfg.controlPerSecond, Math.max(1, this.cfg.controlPerSecond));
    const platformId = config.gb28181.platformId;
    for (const sup of this.cfg.superiors) {
      const localId = sup.localId || this.cfg.localId || platformId;
      this.links.push({
        sup,
        localId,
        domain: sup.domain || sup.id.slice(0, 10),
        localDomain: localId.slice(0, 10),
        peer: null,
        registered: false,
        registeredAt: null,
        expiresAt: null,
        lastRegisterStatus: null,
        lastKeepaliveAt: null,
        lastKeepaliveStatus: null,
        lastKeepaliveAnsweredAt: null,
        missed: 0,
        lastError: null,
        lastErrorAt: null,
        nextAttemptAt: null,
        failures: 0,
        callId: '',
        fromTag: '',
        cseq: 0,
        challenge: null,
        timer: null,
        catalog: { sending: false, lastStartedAt: 0, waiting: null, timer: null },
        keepalive: null,
        keepaliveInFlight: false,
        registering: false,
        counts: {},
        subs: {},
        told: new Map(),
        pending: new Map(),
        pushing: false,
        controlBucket: null,
      });
    }
  }

  get enabled(): boolean {
    return this.cfg.enabled;
  }

  /** True in the process whose SIP server runs the cascade. */
  get active(): boolean {
    return this.running;
  }

  /** Starts registering with every superior (the SIP endpoint is up). */
  start(): void {
    if (!this.cfg.enabled || this.running) return;
    this.running = true;
    for (const l of this.links) {
      l.callId = `${randomBytes(8).toString('hex')}@${this.endpoint.advertised}`;
      l.fromTag = randomBytes(4).toString('hex');
      cascadeRegistered.set({ superior: l.sup.id }, 0);
      void this.register(l);
    }
    if (this.cfg.forwardAlarms && this.cfg.alarmSources.length) {
      this.alarmTimer = setInterval(() => void this.pollAlarms(), this.cfg.alarmPollMs);
      this.alarmTimer.unref();
    }
    if (this.cfg.statusNotify !== 'off') {
      void this.pollStatus(); // the first round only places the cursor at the newest transition
      this.statusTimer = setInterval(() => void this.pollStatus(), this.cfg.statusPollMs);
      this.statusTimer.unref();
    }
    this.endpoint.log(`cascade: registering with ${this.links.map((l) => `${l.sup.id}@${l.sup.host}:${l.sup.port}`).join(', ')}`);
  }

  /** Shutdown: timers stop; each registration is withdrawn (Expires: 0), waited for at most a second. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.alarmTimer) clearInterval(this.alarmTimer);
    this.alarmTimer = null;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
    const bye: Promise<unknown>[] = [];
    for (const l of this.links) {
      this.clearTimers(l);
      // Subscriptions end with us (RFC 6665 §4.2.2: terminated, reason noresource), then the registration.
      for (const sub of Object.values(l.subs)) if (sub && l.registered) bye.push(this.notify(l, sub, Buffer.alloc(0), 'terminated;reason=noresource'));
      this.dropSubs(l);
      if (l.registered && l.peer) bye.push(this.sendRegister(l, 0, l.challenge));
      this.setRegistered(l, false);
    }
    await Promise.race([Promise.allSettled(bye), new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  /** Where each superior stands (the status route). */
  status(): CascadeLinkStatus[] {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return this.links.map((l) => ({
      superiorId: l.sup.id,
      host: l.sup.host,
      port: l.sup.port,
      transport: l.sup.transport,
      localId: l.localId,
      registered: l.registered,
      registeredAt: iso(l.registeredAt),
      expiresAt: iso(l.expiresAt),
      lastRegisterStatus: l.lastRegisterStatus,
      lastKeepaliveAt: iso(l.lastKeepaliveAt),
      lastKeepaliveStatus: l.lastKeepaliveStatus,
      lastKeepaliveAnsweredAt: iso(l.lastKeepaliveAnsweredAt),
      missedKeepalives: l.missed,
      nextAttemptAt: iso(l.nextAttemptAt),
      lastError: l.lastError,
      lastErrorAt: iso(l.lastErrorAt),
      counts: { ...l.counts },
      subscriptions: { catalog: iso(this.activeSub(l, 'Catalog')?.expiresAt ?? null), alarm: iso(this.activeSub(l, 'Alarm')?.expiresAt ?? null) },
      statusPending: l.pending.size,
    }));
  }

  /**
   * The superior a request comes from: its id in From, from the superior's address (any port: it may
   * send from another socket than it listens on). Null for everything else (devices).
   */
  superiorOf(fromId: string, peer: Peer): Link | null {
    if (!this.running) return null;
    for (const l of this.links) if (l.sup.id === fromId && l.peer && l.peer.address === peer.address) return l;
    return null;
  }

  // ------------------------------------------------------------------ registration

  private count(l: Link, event: string, n = 1): void {
    l.counts[event] = (l.counts[event] ?? 0) + n;
    cascadeEvents.inc({ superior: l.sup.id, event }, n);
  }

  private fail(l: Link, why: string): void {
    l.lastError = why;
    l.lastErrorAt = Date.now();
    this.endpoint.warn(`cascade ${l.sup.id}: ${why}`);
  }

  private clearTimers(l: Link): void {
    if (l.timer) clearTimeout(l.timer);
    if (l.catalog.timer) clearTimeout(l.catalog.timer);
    l.catalog.timer = null;
    l.catalog.waiting = null;
    if (l.keepalive) clearInterval(l.keepalive);
    l.timer = null;
    l.keepalive = null;
  }

  private setRegistered(l: Link, on: boolean): void {
    l.registered = on;
    cascadeRegistered.set({ superior: l.sup.id }, on ? 1 : 0);
    if (!on) {
      l.expiresAt = null;
      if (l.keepalive) clearInterval(l.keepalive);
      l.keepalive = null;
    }
  }

  private schedule(l: Link, ms: number): void {
    if (!this.running) return;
    if (l.timer) clearTimeout(l.timer);
    l.nextAttemptAt = Date.now() + ms;
    l.timer = setTimeout(() => void this.register(l), ms);
    l.timer.unref();
  }

  /** After a failure: retryMinMs doubling per failure in a row, up to retryMaxMs (± 10 % so superiors restarting do not see a wave). */
  private retry(l: Link): void {
    const base = Math.min(this.cfg.retryMaxMs, this.cfg.retryMinMs * 2 ** Math.min(l.failures, 20));
    l.failures++;
    this.schedule(l, Math.round(base * (0.9 + Math.random() * 0.2)));
  }

  /** We are not (or no longer) registered: register again, now (the first attempt) then with backoff. */
  private lost(l: Link, why: string): void {
    this.fail(l, why);
    this.setRegistered(l, false);
    // A superior that forgot our registration forgot its subscriptions too: it subscribes again after we register.
    this.dropSubs(l);
    if (l.failures === 0) {
      l.failures = 1;
      this.schedule(l, 0);
    } else this.retry(l);
  }

  private async register(l: Link): Promise<void> {
    if (!this.running || l.registering) return;
    l.registering = true;
    l.nextAttemptAt = null;
    try {
      try {
        const { address } = await lookup(l.sup.host, { family: 4 });
        if (l.sup.transport === 'udp') l.peer = { transport: 'UDP', address, port: l.sup.port };
        else if (!l.peer?.conn || l.peer.conn.destroyed) {
          // TCP: one connection of ours, reused for every request; when it closes we connect and register again.
          const peer = await this.endpoint.connect(address, l.sup.port, this.cfg.requestTimeoutMs);
          l.peer = peer;
          peer.conn!.once('close', () => {
            if (this.running && l.peer === peer) this.lost(l, 'TCP connection to the superior closed: connecting again');
          });
        }
      } catch (e) {
        this.count(l, 'register_failed');
        this.fail(l, `cannot reach ${l.sup.host}:${l.sup.port}: ${(e as Error).message}`);
        this.setRegistered(l, false);
        return this.retry(l);
      }
      let r = await this.sendRegister(l, this.cfg.registerExpiresSeconds, null);
      if (typeof r !== 'number' && (r.status === 401 || r.status === 407)) {
        const challenge = this.challengeOf(r);
        if (!challenge) {
          l.lastRegisterStatus = r.status;
          this.count(l, 'register_failed');
          this.fail(l, `REGISTER answered ${r.status} without a usable MD5 Digest challenge`);
          this.setRegistered(l, false);
          return this.retry(l);
        }
        l.challenge = challenge;
        r = await this.sendRegister(l, this.cfg.registerExpiresSeconds, challenge);
      }
      const status = typeof r === 'number' ? r : r.status;
      l.lastRegisterStatus = status;
      if (!this.running) return;
      if (typeof r !== 'number' && status >= 200 && status < 300) {
        const granted = this.grantedExpires(r) ?? this.cfg.registerExpiresSeconds;
        if (granted <= 0) {
          this.count(l, 'register_failed');
          this.fail(l, 'REGISTER answered 200 with Expires 0');
          this.setRegistered(l, false);
          return this.retry(l);
        }
        const now = Date.now();
        const first = !l.registered;
        this.setRegistered(l, true);
        l.registeredAt = first ? now : (l.registeredAt ?? now);
        l.expiresAt = now + granted * 1000;
        l.failures = 0;
        l.missed = 0;
        this.count(l, 'registered');
        if (first) this.endpoint.log(`cascade: registered with ${l.sup.id} at ${l.sup.host}:${l.sup.port} as ${l.localId} for ${granted} s`);
        // Refresh at 2/3 of what was granted (a superior that shortens it is followed).
        this.schedule(l, Math.max(500, Math.floor((granted * 1000 * 2) / 3)));
        if (!l.keepalive) {
          l.keepalive = setInterval(() => void this.sendKeepalive(l), this.cfg.keepaliveSeconds * 1000);
          l.keepalive.unref();
          void this.sendKeepalive(l);
        }
        return;
      }
      this.count(l, 'register_failed');
      this.fail(l, status === 408 ? 'REGISTER not answered' : `REGISTER answered ${status}`);
      this.setRegistered(l, false);
      this.retry(l);
    } finally {
      l.registering = false;
    }
  }

  /** The Expires the superior granted: the Contact's expires parameter, else the Expires header. */
  private grantedExpires(r: SipResponse): number | null {
    const contact = header(r, 'contact');
    const p = contact ? params(contact.slice(contact.lastIndexOf('>') + 1)).get('expires') : undefined;
    const v = p ?? header(r, 'expires');
    return v !== undefined && /^\d{1,10}$/.test(v.trim()) ? Number(v.trim()) : null;
  }

  /** The Digest challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate); null unless MD5. */
  private challengeOf(r: SipResponse): Link['challenge'] {
    const proxy = r.status === 407;
    const raw = header(r, proxy ? 'proxy-authenticate' : 'www-authenticate');
    const m = raw && /^\s*Digest\s+(.*)$/is.exec(raw);
    if (!m) return null;
    const p: Record<string, string> = {};
    const re = /([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*(?:,|$)/g;
    for (let x = re.exec(m[1]); x; x = re.exec(m[1])) p[x[1].toLowerCase()] = x[2] ?? x[3];
    if (!p.nonce || p.realm === undefined) return null;
    if (p.algorithm && p.algorithm.toUpperCase() !== 'MD5') return null;
    const qops = (p.qop ?? '').split(',').map((s) => s.trim().toLowerCase());
    return {
      header: proxy ? 'Proxy-Authorization' : 'Authorization',
      realm: p.realm,
      nonce: p.nonce,
      // auth when offered; auth-int (RFC 2617 §3.2.2.3: the body hashed too) when that is all the superior offers.
      qop: qops.includes('auth') ? 'auth' : qops.includes('auth-int') ? 'auth-int' : null,
      opaque: p.opaque ?? null,
      nc: 0,
    };
  }

  private uri(l: Link): string {
    return `sip:${l.sup.id}@${l.sup.host}:${l.sup.port}`;
  }

  private via(l: Link, branch: string): string {
    return `SIP/2.0/${l.peer?.transport ?? 'UDP'} ${this.endpoint.advertised}:${this.endpoint.port};rport;branch=${branch}`;
  }

  private sendRegister(l: Link, expires: number, challenge: Link['challenge']): Promise<SipResponse | number> {
    if (!l.peer) return Promise.resolve(503);
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const uri = this.uri(l);
    const headers: [string, string | number][] = [
      ['Contact', `<sip:${l.localId}@${this.endpoint.advertised}:${this.endpoint.port}${l.sup.transport === 'tcp' ? ';transport=tcp' : ''}>`],
      ['Expires', expires],
      ['User-Agent', 'Shouhu'],
    ];
    if (challenge) {
      const h1 = ha1(l.localId, challenge.realm, l.sup.password);
      const c = { nonce: challenge.nonce, uri, qop: challenge.qop ?? undefined, nc: undefined as string | undefined, cnonce: undefined as string | undefined };
      if (challenge.qop) {
        challenge.nc++;
        c.nc = challenge.nc.toString(16).padStart(8, '0');
        c.cnonce = randomBytes(8).toString('hex');
      }
      const response = expectedResponse(h1, 'REGISTER', c, Buffer.alloc(0)); // a REGISTER of ours has no body
      let v = `Digest username="${l.localId}", realm="${challenge.realm}", nonce="${challenge.nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
      if (challenge.qop) v += `, qop=${challenge.qop}, nc=${c.nc}, cnonce="${c.cnonce}"`;
      if (challenge.opaque !== null) v += `, opaque="${challenge.opaque}"`;
      headers.push([challenge.header, v]);
    }
    const buf = buildRequest({
      method: 'REGISTER',
      uri,
      via: this.via(l, branch),
      from: `<sip:${l.localId}@${l.localDomain}>;tag=${l.fromTag}`,
      to: `<sip:${l.localId}@${l.localDomain}>`,
      callId: l.callId,
      cseq: ++l.cseq,
      headers,
      body: Buffer.alloc(0),
      contentType: 'Application/MANSCDP+xml',
    });
    return this.client.transact(l.peer, buf, branch, this.cfg.requestTimeoutMs);
  }

  /** A MANSCDP MESSAGE to the superior (its own transaction); resolves with the final status (408 unanswered, 503 unreachable). */
  private async message(l: Link, body: Buffer): Promise<number> {
    if (!l.peer) return 503;
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const buf = buildRequest({
      method: 'MESSAGE',
      uri: this.uri(l),
      via: this.via(l, branch),
      from: `<sip:${l.localId}@${l.localDomain}>;tag=${randomBytes(4).toString('hex')}`,
      to: `<sip:${l.sup.id}@${l.domain}>`,
      callId: `${randomBytes(8).toString('hex')}@${this.endpoint.advertised}`,
      cseq: 1,
      headers: [['User-Agent', 'Shouhu']],
      body,
      contentType: 'Application/MANSCDP+xml',
    });
    const r = await this.client.transact(l.peer, buf, branch, this.cfg.requestTimeoutMs);
    return typeof r === 'number' ? r : r.status;
  }

  // ------------------------------------------------------------------ keepalive

  /**
   * Keepalive Notify (§9.6.1). 200: alive. Unanswered keepaliveMaxMissed times in a row: the link is
   * taken as down and we register again. Any 4xx/5xx at once: the superior no longer takes our
   * messages (it restarted and forgot us, or dropped our registration) — register again.
   */
  private async sendKeepalive(l: Link): Promise<void> {
    if (!this.running || !l.registered || l.keepaliveInFlight) return;
    l.keepaliveInFlight = true;
    l.lastKeepaliveAt = Date.now();
    try {
      const status = await this.message(
        l,
        encodeDoc(
          'Notify',
          fieldsXml([
            ['CmdType', 'Keepalive'],
            ['SN', this.client.nextSn()],
            ['DeviceID', l.localId],
            ['Status', 'OK'],
          ]),
          this.cfg.charset,
        ),
      );
      l.lastKeepaliveStatus = status;
      if (!this.running || !l.registered) return;
      if (status >= 200 && status < 300) {
        l.missed = 0;
        l.lastKeepaliveAnsweredAt = Date.now();
        this.count(l, 'keepalive_ok');
        return;
      }
      if (status === 408 || status === 503) {
        l.missed++;
        this.count(l, 'keepalive_missed');
        if (l.missed >= this.cfg.keepaliveMaxMissed) this.lost(l, `${l.missed} keepalives unanswered: registering again`);
        return;
      }
      l.lastKeepaliveAnsweredAt = Date.now();
      this.count(l, 'keepalive_refused');
      this.lost(l, `keepalive answered ${status}: registering again`);
    } finally {
      l.keepaliveInFlight = false;
    }
  }

  // ------------------------------------------------------------------ the superior's requests

  /**
   * Beyond its id and address (superiorOf): a superior's request names our id (or a device under our
   * domain) in To's user part — else (none, or another) 404 — and, with checkFromDomain, its domain, configured host or address in
   * From — else 403. Returns the status to refuse with, 0 when it passes.
   */
  private refusedSource(l: Link, req: SipRequest): number {
    const to = req.to.user;
    // A To without a user part (`<sip:3402000000>`) names no one: refused like one naming someone else (attack pass 4 #6:
    // a Catalog query so addressed was answered with the whole tree).
    if (!to || (to !== l.localId && to.slice(0, 10) !== l.localId.slice(0, 10))) return 404;
    if (this.cfg.checkFromDomain) {
      const host = req.from.host
        .replace(/:\d+$/, '')
        .replace(/^\[|\]$/g, '')
        .toLowerCase();
      const known = [l.domain, l.sup.domain, l.sup.host, l.peer?.address ?? ''].filter((h) => h).map((h) => h.toLowerCase());
      if (!known.includes(host)) return 403;
    }
    return 0;
  }

  /** Refuses a request failing `refusedSource` (counted, warned); true when it was refused. */
  private refuse(l: Link, req: SipRequest, peer: Peer, key: string): boolean {
    const status = this.refusedSource(l, req);
    if (!status) return false;
    this.count(l, 'request_refused');
    this.fail(
      l,
      `${req.method} from ${req.from.raw} to ${req.to.raw} refused ${status}: not addressed to us (${l.localId}) or From is not the superior's domain`,
    );
    this.endpoint.reply(req, peer, status, 'cascade', key);
    return true;
  }

  /**
   * A MANSCDP MESSAGE from a superior (already known to come from it): its queries about us, its
   * controls, or its Response to one of our alarms. Answered 200 at once (a control over its budget
   * 503); query answers follow as MESSAGEs of our own.
   */
  onMessage(l: Link, req: SipRequest, peer: Peer, key: string, doc: ManscdpMessage): void {
    if (this.refuse(l, req, peer, key)) return;
    if (doc.root === 'Control') return this.controlAsked(l, req, peer, key, doc);
    this.endpoint.reply(req, peer, 200, 'cascade', key);
    if (doc.root === 'Query' && doc.cmdType === 'Catalog') return this.catalogAsked(l, doc);
    if (doc.root === 'Query' && doc.cmdType === 'DeviceInfo')
      return void this.answerDeviceInfo(l, doc).catch((e) => this.fail(l, `DeviceInfo answer failed: ${(e as Error).message}`));
    if (doc.root === 'Query' && doc.cmdType === 'DeviceStatus')
      return void this.answerDeviceStatus(l, doc).catch((e) => this.fail(l, `DeviceStatus answer failed: ${(e as Error).message}`));
    if (doc.root === 'Response' && /^alarm$/i.test(doc.cmdType)) return void this.onAlarmResponse(l, doc).catch(() => undefined);
    this.count(l, 'request_ignored');
  }

  private tree(): Promise<CascadeTree> {
    return loadCascadeTree(this.db, this.registry, {
      localId: this.cfg.localId || this.links[0]?.localId || '',
      civilCode: this.cfg.civilCode,
      name: this.cfg.name,
    });
  }

  /**
   * A Catalog query: answered now when no answer is being sent and the last began at least
   * catalogMinIntervalMs ago; otherwise it waits (only the newest: its SN is the one answered) for
   * the next send — so repeated or flooded queries cost one tree per interval, never one each
   * (attack pass 2: one query sent 238 MESSAGEs, 300 stalled the service).
   */
  private catalogAsked(l: Link, doc: ManscdpMessage): void {
    const c = l.catalog;
    if (c.waiting) this.count(l, 'catalog_coalesced');
    c.waiting = doc;
    if (c.sending || c.timer) return;
    const wait = c.lastStartedAt + this.cfg.catalogMinIntervalMs - Date.now();
    if (wait > 0) {
      c.timer = setTimeout(() => {
        c.timer = null;
        this.catalogNext(l);
      }, wait);
      c.timer.unref();
      return;
    }
    this.catalogNext(l);
  }

  private catalogNext(l: Link): void {
    const c = l.catalog;
    const doc = c.waiting;
    if (!doc || !this.running) return;
    c.waiting = null;
    c.sending = true;
    c.lastStartedAt = Date.now();
    void this.answerCatalog(l, doc)
      .catch((e) => this.fail(l, `Catalog answer failed: ${(e as Error).message}`))
      .finally(() => {
        c.sending = false;
        if (c.waiting) this.catalogAsked(l, c.waiting);
      });
  }

  /** Catalog (§9.5.3, §A.2.6.4): the whole tree, catalogItemsPerMessage items per MESSAGE, one after another. */
  private async answerCatalog(l: Link, doc: ManscdpMessage): Promise<void> {
    const tree = await loadCascadeTree(this.db, this.registry, { localId: l.localId, civilCode: this.cfg.civilCode, name: this.cfg.name });
    const parts = catalogParts({ sn: doc.sn, localId: l.localId, items: tree.items, perMessage: this.cfg.catalogItemsPerMessage, charset: this.cfg.charset });
    for (let i = 0; i < parts.length; i++) {
      const status = await this.message(l, parts[i]);
      if (status !== 200) {
        this.count(l, 'catalog_failed');
        return this.fail(l, `Catalog part ${i + 1}/${parts.length} answered ${status}: the rest not sent`);
      }
    }
    this.count(l, 'catalog_answered');
    // What the superior now knows of each camera: status pushes are told against it (a change it already has waits no more).
    for (const i of tree.items) {
      if (i.kind !== 'camera' || !i.status) continue;
      l.told.set(i.deviceId, i.status);
      if (l.pending.get(i.deviceId) === i.status) l.pending.delete(i.deviceId);
    }
  }

  /**
   * DeviceInfo (§A.2.6.2) of our platform, or of one camera when the query names its channel id (its
   * name, manufacturer, model; Channel 1); any other id (an organisation node, an unknown id) is
   * answered Result ERROR with that id — the MANSCDP form of 404.
   */
  private async answerDeviceInfo(l: Link, doc: ManscdpMessage): Promise<void> {
    const tree = await this.tree();
    const id = doc.deviceId || l.localId;
    let fields: [string, string | number][];
    if (id === l.localId)
      fields = [
        ['DeviceName', this.cfg.name || tree.items[0]?.name || 'Shouhu'],
        ['Result', 'OK'],
        ['Manufacturer', 'Shouhu'],
        ['Model', 'Shouhu school-safety platform'],
        ['Firmware', '1.0'],
        ['Channel', tree.cameras],
      ];
    else {
      const cam = tree.items.find((i) => i.kind === 'camera' && i.deviceId === id);
      fields = cam
        ? [
            ['DeviceName', cam.name],
            ['Result', 'OK'],
            ['Manufacturer', cam.manufacturer || 'Unknown'],
            ['Model', cam.model || 'Unknown'],
            ['Firmware', 'Unknown'],
            ['Channel', 1],
          ]
        : [['Result', 'ERROR']];
    }
    const status = await this.message(
      l,
      encodeDoc('Response', fieldsXml([['CmdType', 'DeviceInfo'], ['SN', doc.sn], ['DeviceID', id], ...fields]), this.cfg.charset),
    );
    this.count(l, status === 200 ? 'device_info_answered' : 'device_info_failed');
  }

  /** DeviceStatus (§A.2.6.3) of our platform, or of one camera when the query names its channel id. */
  private async answerDeviceStatus(l: Link, doc: ManscdpMessage): Promise<void> {
    let online = true;
    const id = doc.deviceId || l.localId;
    if (id !== l.localId) {
      const tree = await this.tree();
      const s = tree.cameraStatus.get(id);
      if (s === undefined) {
        const status = await this.message(
          l,
          encodeDoc(
            'Response',
            fieldsXml([
              ['CmdType', 'DeviceStatus'],
              ['SN', doc.sn],
              ['DeviceID', id],
              ['Result', 'ERROR'],
            ]),
            this.cfg.charset,
          ),
        );
        this.count(l, status === 200 ? 'device_status_answered' : 'device_status_failed');
        return;
      }
      online = s === 'ON';
    }
    const status = await this.message(
      l,
      encodeDoc(
        'Response',
        fieldsXml([
          ['CmdType', 'DeviceStatus'],
          ['SN', doc.sn],
          ['DeviceID', id],
          ['Result', 'OK'],
          ['Online', online ? 'ONLINE' : 'OFFLINE'],
          ['Status', online ? 'OK' : 'ERROR'],
          ['Encode', 'ON'],
          ['Record', 'OFF'],
          ['DeviceTime', gbTime(new Date()).slice(0, 19)],
        ]) + '<Alarmstatus Num="0">\r\n</Alarmstatus>\r\n',
        this.cfg.charset,
      ),
    );
    this.count(l, status === 200 ? 'device_status_answered' : 'device_status_failed');
  }

  // ------------------------------------------------------------------ the superior's controls

  /**
   * DeviceControl / DeviceConfig (§A.2.3) from a superior: never carried out — a superior does not
   * reboot, arm or record the district's devices (operators do, audited, through our API), and we have
   * no PTZ to forward — but answered, as §9.3 asks, with a Response Result ERROR, and audited (who
   * asked what of which device). At most controlPerSecond per superior: beyond, 503 Retry-After, so a
   * flood costs neither audit rows nor answers.
   */
  private controlAsked(l: Link, req: SipRequest, peer: Peer, key: string, doc: ManscdpMessage): void {
    const wait = this.controlLimiter.take((l.controlBucket ??= this.controlLimiter.fresh()));
    if (wait > 0) {
      this.count(l, 'control_limited');
      return this.endpoint.reply(req, peer, 503, 'cascade', key, [['Retry-After', Math.max(1, Math.ceil(wait / 1000))]]);
    }
    this.endpoint.reply(req, peer, 200, 'cascade', key);
    void this.refuseControl(l, peer, doc).catch((e) => this.fail(l, `${doc.cmdType} answer failed: ${(e as Error).message}`));
  }

  private async refuseControl(l: Link, peer: Peer, doc: ManscdpMessage): Promise<void> {
    const target = doc.deviceId || l.localId;
    // What was asked: the command's elements (PTZCmd, TeleBoot, GuardCmd…) as sent, bounded.
    const command = Object.fromEntries(
      doc.el.children
        .filter((c) => !['CmdType', 'SN', 'DeviceID'].includes(c.name))
        .slice(0, 10)
        .map((c) => [
          c.name,
          c.children.length ? Object.fromEntries(c.children.slice(0, 10).map((x) => [x.name, x.text.slice(0, 100)])) : c.text.slice(0, 100),
        ]),
    );
    const actor = { type: 'system' as const, id: null, name: `superior ${l.sup.id}` };
    try {
      await inJobsPool(() =>
        this.db.transaction((m) =>
          requestContext.run({ requestId: randomUUID(), ip: peer.address, actor }, () =>
            this.audit.record(m, {
              action: 'superior_control_refused',
              entity: 'gb_cascade',
              entityId: l.sup.id,
              after: { superiorId: l.sup.id, cmdType: doc.cmdType, sn: doc.sn, deviceId: target, command, result: 'ERROR' },
            }),
          ),
        ),
      );
    } catch (e) {
      this.fail(l, `${doc.cmdType} from the superior not audited: ${(e as Error).message}`);
    }
    const status = await this.message(
      l,
      encodeDoc(
        'Response',
        fieldsXml([
          ['CmdType', doc.cmdType],
          ['SN', doc.sn],
          ['DeviceID', target],
          ['Result', 'ERROR'],
        ]),
        this.cfg.charset,
      ),
    );
    this.count(l, status === 200 ? 'control_refused' : 'control_answer_failed');
  }

  // ------------------------------------------------------------------ the superior's subscriptions

  private contact(l: Link): string {
    return `<sip:${l.localId}@${this.endpoint.advertised}:${this.endpoint.port}${l.sup.transport === 'tcp' ? ';transport=tcp' : ''}>`;
  }

  private activeSub(l: Link, kind: SubscriptionKind): Subscription | null {
    const sub = l.subs[kind];
    return sub && sub.expiresAt > Date.now() ? sub : null;
  }

  /** Forgets every subscription of `l` (no NOTIFY: the superior forgot them, or we are stopping). */
  private dropSubs(l: Link): void {
    for (const sub of Object.values(l.subs)) if (sub?.timer) clearTimeout(sub.timer);
    l.subs = {};
  }

  /** Ends `sub` if it is still the current one of its package; `state`: the terminating NOTIFY's Subscription-State (null: none sent). */
  private endSub(l: Link, sub: Subscription, state: string | null): void {
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = null;
    if (l.subs[sub.kind] === sub) delete l.subs[sub.kind];
    if (state && l.registered) void this.notify(l, sub, Buffer.alloc(0), state);
  }

  /**
   * A superior's SUBSCRIBE (GB/T 28181-2016 §9.11; RFC 6665, we are the notifier), Catalog or Alarm
   * (`Event: Catalog`, `presence` or `Alarm`; the body's CmdType decides). A new one (no To tag)
   * starts a dialog and replaces the superior's previous subscription of that package; one inside the
   * dialog refreshes it (481 when we know no such dialog). Expires 0 ends it (a terminated NOTIFY
   * follows); below subscribeMinSeconds 423 with Min-Expires; the Expires granted is at most
   * subscribeMaxSeconds. The 200 carries the MANSCDP Response (Result OK) platforms expect. No
   * initial NOTIFY of the whole catalog (the superior has its Catalog query for that): NOTIFYs carry
   * changes — camera status (statusNotify) and alarms. An expired subscription gets a NOTIFY
   * `terminated;reason=timeout` and its changes go by MESSAGE again (statusNotify 'always').
   */
  onSubscribe(l: Link, req: SipRequest, peer: Peer, key: string): void {
    if (this.refuse(l, req, peer, key)) return;
    let doc: ManscdpMessage | null = null;
    if (req.body.length) {
      try {
        doc = parseManscdp(req.body);
      } catch {
        this.count(l, 'subscribe_refused');
        return this.endpoint.reply(req, peer, 400, 'cascade', key);
      }
      if (doc.undecodableAt !== undefined) this.count(l, 'undecodable_bytes'); // read with U+FFFD there (charset.ts), not silently
    }
    const kind = subscriptionKind(header(req, 'event'), doc);
    if (!kind) {
      this.count(l, 'subscribe_refused');
      return this.endpoint.reply(req, peer, 489, 'cascade', key, [['Allow-Events', 'Catalog, Alarm']]);
    }
    const existing = l.subs[kind];
    const inDialog = req.to.tag !== null;
    if (inDialog && (!existing || existing.callId !== req.callId || existing.localTag !== req.to.tag)) {
      this.count(l, 'subscribe_refused');
      return this.endpoint.reply(req, peer, 481, 'cascade', key);
    }
    const raw = header(req, 'expires')?.trim();
    const asked = raw && /^\d{1,10}$/.test(raw) ? Number(raw) : 3600;
    if (asked > 0 && asked < this.cfg.subscribeMinSeconds) {
      this.count(l, 'subscribe_refused');
      return this.endpoint.reply(req, peer, 423, 'cascade', key, [['Min-Expires', this.cfg.subscribeMinSeconds]]);
    }
    const granted = Math.min(asked, this.cfg.subscribeMaxSeconds);
    const answer = doc
      ? encodeDoc(
          'Response',
          fieldsXml([
            ['CmdType', kind],
            ['SN', doc.sn],
            ['DeviceID', doc.deviceId || l.localId],
            ['Result', 'OK'],
          ]),
          this.cfg.charset,
        )
      : undefined;
    this.endpoint.reply(
      req,
      peer,
      200,
      'cascade',
      key,
      [
        ['Expires', granted],
        ['Contact', this.contact(l)],
      ],
      answer,
    );
    if (granted === 0) {
      // Un-subscribe (in its dialog, or a fresh SUBSCRIBE with Expires 0 naming the package): ended, told so.
      if (existing) this.endSub(l, existing, 'terminated');
      this.count(l, 'unsubscribed');
      return;
    }
    let sub = existing && inDialog ? existing : null;
    if (!sub) {
      if (existing) this.endSub(l, existing, null);
      const contact = header(req, 'contact');
      const target = contact ? (/<([^>]+)>/.exec(contact)?.[1] ?? contact.split(';')[0]).trim() : this.uri(l);
      const localTag = this.endpoint.toTagFor(req);
      sub = {
        kind,
        callId: req.callId,
        localTag,
        local: `<${req.to.uri}>;tag=${localTag}`,
        remote: req.from.raw,
        target,
        event: header(req, 'event') ?? kind,
        cseq: 0,
        expiresAt: 0,
        timer: null,
      };
      l.subs[kind] = sub;
      this.count(l, kind === 'Catalog' ? 'catalog_subscribed' : 'alarm_subscribed');
    } else this.count(l, 'subscription_refreshed');
    const current = sub;
    current.expiresAt = Date.now() + granted * 1000;
    if (current.timer) clearTimeout(current.timer);
    current.timer = setTimeout(() => {
      this.count(l, 'subscription_expired');
      this.endSub(l, current, 'terminated;reason=timeout');
    }, granted * 1000);
    current.timer.unref();
  }

  /** A NOTIFY in `sub`'s dialog (`state`: its Subscription-State; active ones say how long is left). Resolves with the final status. */
  private async notify(l: Link, sub: Subscription, body: Buffer, state: string): Promise<number> {
    if (!l.peer) return 503;
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const left = Math.max(0, Math.round((sub.expiresAt - Date.now()) / 1000));
    const buf = buildRequest({
      method: 'NOTIFY',
      uri: sub.target,
      via: this.via(l, branch),
      from: sub.local,
      to: sub.remote,
      callId: sub.callId,
      cseq: ++sub.cseq,
      headers: [
        ['Event', sub.event],
        ['Subscription-State', state === 'active' ? `active;expires=${left}` : state],
        ['Contact', this.contact(l)],
        ['User-Agent', 'Shouhu'],
      ],
      body,
      contentType: 'Application/MANSCDP+xml',
    });
    const r = await this.client.transact(l.peer, buf, branch, this.cfg.requestTimeoutMs);
    return typeof r === 'number' ? r : r.status;
  }

  /**
   * A change for the superior (camera status, an alarm): a NOTIFY in its subscription of that package
   * when it holds one, else a MESSAGE. A NOTIFY answered 481 (it forgot the dialog) ends the
   * subscription; the change then goes by MESSAGE — unless it is a status change and statusNotify is
   * 'subscribed' (481 returned: nobody asked for it any more).
   */
  private async deliver(l: Link, kind: SubscriptionKind, body: Buffer): Promise<number> {
    const sub = this.activeSub(l, kind);
    if (!sub) return this.message(l, body);
    const status = await this.notify(l, sub, body, 'active');
    if (status !== 481) return status;
    this.count(l, 'subscription_gone');
    this.endSub(l, sub, null);
    return kind === 'Catalog' && this.cfg.statusNotify === 'subscribed' ? 481 : this.message(l, body);
  }

  // ------------------------------------------------------------------ camera status upward

  /** Whether camera status changes go to `l` (statusNotify; 'subscribed': while it holds a Catalog subscription). */
  private pushesTo(l: Link): boolean {
    return this.cfg.statusNotify === 'always' || (this.cfg.statusNotify === 'subscribed' && this.activeSub(l, 'Catalog') !== null);
  }

  /**
   * Every statusPollMs: the cameras with a transition since the last round (TransitionCursor), their
   * status now as an Event; per superior, a camera whose event differs from what it was last told
   * waits to be pushed (the newest event only; one back to what it was told waits no more). Then each
   * superior's queue is pushed (pushStatus).
   */
  async pollStatus(): Promise<void> {
    if (!this.running || this.statusPolling) return;
    this.statusPolling = true;
    try {
      const changed = await inJobsPool(async () => cameraEvents(this.db, await this.transitions.next(Date.now())));
      for (const l of this.links) {
        if (!this.pushesTo(l)) {
          l.pending.clear();
          continue;
        }
        for (const [ch, ev] of changed) {
          if (l.told.get(ch) === ev) l.pending.delete(ch);
          else l.pending.set(ch, ev);
        }
        void this.pushStatus(l);
      }
    } catch (e) {
      this.endpoint.warn(`cascade: status round failed: ${(e as Error).message}`);
    } finally {
      this.statusPolling = false;
    }
  }

  /**
   * Sends `l`'s waiting status changes while registered: catalogItemsPerMessage cameras per Catalog
   * Notify, at most statusMessagesPerSecond messages a second — a mass outage of thousands is a few
   * batched messages, and what waits keeps coalescing. A refused or unanswered message puts its
   * cameras back (unless newer news came) for the next round.
   */
  private async pushStatus(l: Link): Promise<void> {
    if (l.pushing) return;
    l.pushing = true;
    try {
      const gapMs = 1000 / this.cfg.statusMessagesPerSecond;
      while (this.running && l.registered && l.pending.size > 0 && this.pushesTo(l)) {
        const started = Date.now();
        const batch: [string, CascadeEvent][] = [];
        for (const e of l.pending) {
          batch.push(e);
          if (batch.length >= this.cfg.catalogItemsPerMessage) break;
        }
        for (const [ch] of batch) l.pending.delete(ch);
        const body = statusNotifyBody({
          sn: this.client.nextSn(),
          localId: l.localId,
          changes: batch.map(([channelId, event]) => ({ channelId, event })),
          charset: this.cfg.charset,
        });
        const status = await this.deliver(l, 'Catalog', body);
        if (status !== 200) {
          for (const [ch, ev] of batch) if (!l.pending.has(ch)) l.pending.set(ch, ev);
          this.count(l, 'status_failed');
          this.fail(l, `status Notify of ${batch.length} camera(s) answered ${status}: tried again next round`);
          return;
        }
        for (const [ch, ev] of batch) l.told.set(ch, ev);
        this.count(l, 'status_sent');
        this.count(l, 'status_items', batch.length);
        const wait = started + gapMs - Date.now();
        if (wait > 0 && l.pending.size > 0) await new Promise((r) => setTimeout(r, wait).unref());
      }
    } finally {
      l.pushing = false;
    }
  }

  // ------------------------------------------------------------------ alarms upward

  /**
   * Alarm forwarding (§9.4), durable and never in the intake's way: every alarmPollMs the incidents
   * raised in the last alarmLookbackSeconds of a forwarded source (not drills) get a row per superior
   * in gb_cascade_alarms (its key: at most one forward per incident and superior, whatever restarts
   * or retries happen); rows due are sent as Alarm Notify to superiors we are registered with. 200 →
   * sent; otherwise retried with backoff up to alarmMaxAttempts, then failed (counted, shown). A retry
   * carries the same SN, so a superior that got the first and lost our 200 can fold it. The superior's
   * Alarm Response (Result) marks the row acknowledged.
   */
  async pollAlarms(): Promise<void> {
    if (!this.running || this.polling) return;
    this.polling = true;
    try {
      await inJobsPool(async () => {
        const started = Date.now();
        const floor = started - this.cfg.alarmLookbackSeconds * 1000;
        const from = new Date(Math.max(floor, this.alarmsFrom ? this.alarmsFrom.getTime() - ALARM_OVERLAP_MS : floor));
        const page = await this.incidents.raisedSince(from, this.alarmsAfter, this.cfg.alarmSources, this.cfg.alarmBatchMax);
        const raised = page.map((i) => i.id);
        if (raised.length) {
          await this.db.query(
            `INSERT INTO gb_cascade_alarms (incident_id, superior_id)
             SELECT i, s FROM unnest($1::uuid[]) AS i CROSS JOIN unnest($2::text[]) AS s ON CONFLICT DO NOTHING`,
            [raised, this.links.map((l) => l.sup.id)],
          );
        }
        // A full round: the next one starts from the last taken (the rest of a burst); else from this round's start.
        if (page.length >= this.cfg.alarmBatchMax) {
          const last = page[page.length - 1];
          this.alarmsAfter = { at: new Date(last.firstPressAt), id: last.id };
        } else {
          this.alarmsAfter = null;
          this.alarmsFrom = new Date(started);
        }
        const ready = this.links.filter((l) => l.registered).map((l) => l.sup.id);
        if (ready.length) {
          const due = (await this.db.query(
            `SELECT incident_id AS "incidentId", superior_id AS "superiorId", attempts, sn FROM gb_cascade_alarms
             WHERE state = 'pending' AND next_at <= now() AND superior_id = ANY($1::bpchar[]) ORDER BY next_at LIMIT 50`,
            [ready],
          )) as Omit<AlarmRow, 'incident'>[];
          const incidents = new Map((await this.incidents.forForwarding([...new Set(due.map((d) => d.incidentId))])).map((i) => [i.id, i]));
          await Promise.all(
            due.map((d) => {
              const incident = incidents.get(d.incidentId);
              return incident ? this.forward({ ...d, incident }) : this.giveUp(d, 'incident gone');
            }),
          );
        }
        const now = Date.now();
        if (now - this.lastPrune > 3_600_000) {
          this.lastPrune = now;
          // A row keeps its incident from going twice while it can be looked at again (lookback); kept a day for the record.
          await this.db.query(`UPDATE gb_cascade_alarms SET state = 'failed' WHERE state = 'pending' AND created_at < now() - interval '1 day'`);
          await this.db.query(
            `DELETE FROM gb_cascade_alarms WHERE state <> 'pending' AND created_at < now() - make_interval(secs => greatest($1::int, 86400))`,
            [this.cfg.alarmLookbackSeconds],
          );
        }
      });
    } catch (e) {
      this.endpoint.warn(`cascade: alarm forwarding round failed: ${(e as Error).message}`);
    } finally {
      this.polling = false;
    }
  }

  private async giveUp(d: Omit<AlarmRow, 'incident'>, why: string): Promise<void> {
    await this.db.query(`UPDATE gb_cascade_alarms SET state = 'failed' WHERE incident_id = $1 AND superior_id = $2 AND state = 'pending'`, [
      d.incidentId,
      d.superiorId,
    ]);
    this.endpoint.warn(`cascade: alarm of incident ${d.incidentId} not forwarded: ${why}`);
  }

  /** The Alarm Notify of one incident (§A.2.5.4). */
  alarmBody(l: Link, i: ForwardedIncident, sn: number): Buffer {
    // AlarmMethod (§A.2.6.4): 1 phone (staff / operator alarms), 2 device (alarm buttons, device alarms), 5 video (camera analytics).
    const video = i.channelId !== null && ['video_alarm', 'intrusion', 'tamper'].includes(i.type);
    const method = i.source === 'device' ? (video ? 5 : 2) : 1;
    const what = [i.schoolName, i.location, i.note].filter((s) => s && s.trim()).join(' ');
    const fields: [string, string | number][] = [
      ['CmdType', 'Alarm'],
      ['SN', sn],
      ['DeviceID', i.channelId ?? l.localId],
      ['AlarmPriority', PRIORITY_GB[i.priority] ?? 4],
      ['AlarmMethod', method],
      ['AlarmTime', gbTime(new Date(i.firstPressAt)).slice(0, 19)],
      ['AlarmDescription', what.slice(0, 200)],
    ];
    let inner = fieldsXml(fields);
    if (method === 5 && i.type === 'intrusion') inner += '<Info>\r\n<AlarmType>6</AlarmType>\r\n</Info>\r\n';
    return encodeDoc('Notify', inner, this.cfg.charset);
  }

  private async forward(r: AlarmRow): Promise<void> {
    const l = this.links.find((x) => x.sup.id === r.superiorId.trim());
    if (!l || !l.registered) return;
    const sn = r.sn ?? this.client.nextSn();
    const attempts = r.attempts + 1;
    // The SN is recorded before sending: the superior's Alarm Response may come before our 200 is taken.
    if (r.sn === null)
      await this.db.query(`UPDATE gb_cascade_alarms SET sn = $3 WHERE incident_id = $1 AND superior_id = $2 AND sn IS NULL`, [r.incidentId, l.sup.id, sn]);
    const status = await this.deliver(l, 'Alarm', this.alarmBody(l, r.incident, sn));
    if (status === 200) {
      this.count(l, 'alarm_sent');
      await this.db.query(
        `UPDATE gb_cascade_alarms SET state = 'sent', attempts = $3, sn = $4, last_status = $5, sent_at = now() WHERE incident_id = $1 AND superior_id = $2 AND state = 'pending'`,
        [r.incidentId, l.sup.id, attempts, sn, status],
      );
      return;
    }
    const give = attempts >= this.cfg.alarmMaxAttempts;
    this.count(l, give ? 'alarm_failed' : 'alarm_retry');
    this.fail(l, `Alarm Notify of incident ${r.incidentId} answered ${status}${give ? `: given up after ${attempts} attempts` : ''}`);
    const delay = Math.min(this.cfg.retryMaxMs, this.cfg.retryMinMs * 2 ** Math.min(attempts - 1, 20));
    await this.db.query(
      `UPDATE gb_cascade_alarms SET state = $3, attempts = $4, sn = $5, last_status = $6, next_at = now() + make_interval(secs => $7::double precision / 1000)
       WHERE incident_id = $1 AND superior_id = $2 AND state = 'pending'`,
      [r.incidentId, l.sup.id, give ? 'failed' : 'pending', attempts, sn, status, delay],
    );
    // 4xx/5xx other than a timeout: the superior does not take our messages any more — register again.
    if (status !== 408 && status !== 503 && l.registered) this.lost(l, `Alarm Notify answered ${status}: registering again`);
  }

  /** The superior's Response to an Alarm Notify (§9.4.2): marks the forward acknowledged. */
  private async onAlarmResponse(l: Link, doc: ManscdpMessage): Promise<void> {
    const sn = Number(doc.sn);
    if (!Number.isInteger(sn)) return;
    const result = (childText(doc.el, 'Result') ?? 'OK').trim().toUpperCase();
    this.count(l, result === 'OK' ? 'alarm_acknowledged' : 'alarm_refused');
    await inJobsPool(() =>
      this.db.query(
        `UPDATE gb_cascade_alarms SET state = 'acknowledged', acknowledged_at = now() WHERE superior_id = $1 AND sn = $2 AND state IN ('sent','pending')`,
        [l.sup.id, sn],
      ),
    );
  }

  /** Forwarded alarms by state (the status route). */
  async alarmCounts(): Promise<Record<string, number>> {
    const rows = (await this.db.query(`SELECT state, count(*)::int AS n FROM gb_cascade_alarms GROUP BY state`)) as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }
}

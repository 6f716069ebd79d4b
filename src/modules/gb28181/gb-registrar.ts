import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { GB_ID_PATTERN } from '../registry';
import { ha1, md5, NonceTracker, parseDigest, responseMatches } from './digest';
import { GbCameras } from './gb-cameras';
import { GbCatalog } from './gb-catalog';
import { GbCommands } from './gb-commands';
import { gbTime } from './gb-codes';
import { DeviceState, GbDeviceStates } from './gb-device-states';
import type { Gb28181Config } from '../../config/sections';
import { sipDomain } from './gb28181.config';
import { sipEvents } from './gb28181.metrics';
import { SipEndpoint } from './sip-endpoint';
import { header, params, SipRequest } from './sip-message';
import { Peer, RateLimiter } from './sip-transport';

/**
 * The registrar (§9.1): REGISTER with digest authentication (RFC 2617 MD5, qop=auth; the
 * device's own HA1 or the district default password), registration and unregistration, and the
 * expiry of registrations that were not renewed. A (re)started device is asked what it has.
 */
@Injectable()
export class GbRegistrar {
  private readonly cfg: Gb28181Config;
  private readonly domain: string;
  private readonly nonces: NonceTracker;
  /** REGISTERs being worked on (gb28181.registerMaxInFlight). */
  inFlight = 0;
  /** REGISTERs per source address (gb28181.registerRateLimitPerSecond), authenticated or not. */
  private readonly perSource: RateLimiter;
  /** Device look-ups in Postgres running (gb28181.registerLookupConcurrency) and those waiting their turn (gb28181.registerLookupQueue). */
  private lookups = 0;
  private readonly lookupWaiters: (() => void)[] = [];
  /** Compared against when a device has no HA1 to check, so a refusal costs what a check does. */
  private readonly decoyHa1 = md5(`decoy:${Math.random()}`);
  /** Devices whose after-registration work waits its turn (gb28181.afterRegisterConcurrency), in arrival order. */
  private readonly after: DeviceState[] = [];
  private afterHead = 0;
  private afterRunning = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly states: GbDeviceStates,
    private readonly cameras: GbCameras,
    private readonly catalog: GbCatalog,
    private readonly commands: GbCommands,
  ) {
    this.cfg = config.gb28181;
    this.domain = sipDomain(this.cfg);
    this.nonces = new NonceTracker(this.cfg.nonceTtlSeconds * 1000);
    this.perSource = new RateLimiter(this.cfg.registerRateLimitPerSecond, this.cfg.registerRateLimitBurst);
  }

  /** What a nonce is bound to: the id it challenged (From user) and the address the challenge went to. */
  private static nonceBinding(req: SipRequest, peer: Peer): string {
    return `${req.from.user}\n${peer.address}`;
  }

  private challenge(req: SipRequest, peer: Peer, key: string, stale: boolean): void {
    const nonce = this.nonces.issue(GbRegistrar.nonceBinding(req, peer));
    const v = `Digest realm="${this.domain}", nonce="${nonce}", qop="auth", algorithm=MD5${stale ? ', stale=true' : ''}`;
    this.endpoint.reply(req, peer, 401, 'register', key, [['WWW-Authenticate', v]]);
  }

  /**
   * Whether a REGISTER can be taken now; if not it has been answered 503 with a Retry-After drawn
   * from 1…gb28181.registerRetryAfterSeconds (a registration storm comes back spread out; never a
   * silent drop, never 486: wvp-GB28181-pro #1935).
   */
  admit(req: SipRequest, peer: Peer, key: string): boolean {
    // Every REGISTER counts against its source address first (authenticated or not, attack pass 4 #1, #4): over it
    // 503 with Retry-After, not cached (a retransmission is counted again) — a device's own budget is spent only once
    // its digest is verified (register), so no one else's REGISTERs naming it can use it up.
    const wait = this.perSource.perSecond > 0 ? this.perSource.take(this.perSource.source(peer.address, 0)) : 0;
    if (wait > 0) {
      sipEvents.inc({ event: 'register_source_limited' });
      this.endpoint.reply(req, peer, 503, 'register', null, [['Retry-After', Math.max(1, Math.ceil(wait / 1000))]]);
      return false;
    }
    if (this.inFlight < this.cfg.registerMaxInFlight) return true;
    sipEvents.inc({ event: 'register_overload' });
    const retry = this.retryAfter();
    // Cached like any answer: a retransmission of this REGISTER gets this very 503 (RFC 3261 §17.2.2), the device's next try is a new transaction.
    this.endpoint.reply(req, peer, 503, 'register', key, [['Retry-After', retry]]);
    return false;
  }

  /** A Retry-After drawn from 1…gb28181.registerRetryAfterSeconds: those refused together come back spread out. */
  private retryAfter(): number {
    return 1 + Math.floor(Math.random() * this.cfg.registerRetryAfterSeconds);
  }

  /**
   * A REGISTER; `key` is its transaction (marked as being worked on). One that cannot be decided
   * (the device's row could not be read: the database is slow or away) is answered 503 with
   * Retry-After, as overload is: the device registers a little later instead of giving up on a 500.
   */
  async onRegister(req: SipRequest, peer: Peer, key: string): Promise<void> {
    this.inFlight++;
    try {
      await this.register(req, peer, key);
    } catch (e) {
      sipEvents.inc({ event: 'register_unavailable' });
      this.endpoint.fail(req, peer, key, 'register', e, this.retryAfter());
    } finally {
      this.inFlight--;
    }
  }

  private async register(req: SipRequest, peer: Peer, key: string): Promise<void> {
    const id = req.from.user;
    // Ids that are not 20 digits are malformed input for GB/T 28181: 400, never a challenge.
    if (!GB_ID_PATTERN.test(id))
      return this.endpoint.reply(req, peer, 400, 'register', key, [['Warning', '399 shouhu "From user must be a 20-digit GB/T 28181 id"']]);
    const contact = header(req, 'contact');
    const rawExpires = header(req, 'expires') ?? (contact ? params(contact.replace(/^[^>]*>/, '')).get('expires') : undefined);
    if (rawExpires === undefined || !/^\d{1,10}$/.test(rawExpires))
      return this.endpoint.reply(req, peer, 400, 'register', key, [['Warning', '399 shouhu "Expires required"']]);
    const expires = Number(rawExpires);
    const authz = header(req, 'authorization');
    if (!authz) return this.challenge(req, peer, key, false);
    const creds = parseDigest(authz);
    if (!creds) return this.endpoint.reply(req, peer, 400, 'register', key);
    if (creds.realm !== this.domain) return this.challenge(req, peer, key, false);
    if (creds.algorithm && creds.algorithm.toUpperCase() !== 'MD5') return this.challenge(req, peer, key, false);
    if (creds.qop !== undefined && creds.qop !== 'auth') return this.challenge(req, peer, key, false);
    // Bound to this id and address (a nonce from another challenge is challenged anew, no look-up), used once without qop.
    const bind = GbRegistrar.nonceBinding(req, peer);
    const nonce = this.nonces.check(creds.nonce, creds.qop ? creds.nc : undefined, bind);
    if (nonce !== 'ok') return this.challenge(req, peer, key, nonce !== 'unknown');

    const state = await this.lookup(id);
    // The digest username is the device id (§9.1.2.1) unless an admin set another for this device (issue 16 §5).
    const user = state.authUsername ?? id;
    const own = this.states.ownPassword(state);
    const h1 = own ? state.ha1 : this.cfg.defaultPassword ? ha1(user, this.domain, this.cfg.defaultPassword) : null;
    // A response is computed and compared whatever the id: an unknown id, a wrong username and a wrong password cost the same.
    const matches = responseMatches(h1 ?? this.decoyHa1, 'REGISTER', creds, req.body);
    if (creds.username !== user || !h1 || !matches) return this.endpoint.reply(req, peer, 403, 'register', key);
    this.nonces.commit(creds.nonce, creds.qop ? creds.nc : undefined, bind);
    // The device's own budget, now that it is the device (attack pass 4 #4: unauthenticated REGISTERs naming it spent it).
    if (this.endpoint.deviceLimited(state, req, peer)) return this.endpoint.forget(key);
    // RFC 3261 §10.3 step 7: under a live registration's Call-ID only a higher CSeq updates it (a replay or a reordered old
    // REGISTER does not). A lapsed registration is no binding: a device that restarts its CSeq under a fixed Call-ID gets in again.
    if (state.registered && state.expiresAt > Date.now() && state.callId === req.callId && state.cseq > 0 && req.cseq.seq <= state.cseq)
      return this.endpoint.reply(req, peer, 400, 'register', key, [['Warning', '399 shouhu "CSeq not higher than the registration\'s"']]);

    const now = Date.now();
    const date: [string, string] = ['Date', gbTime(new Date(now))];
    if (!own && !this.states.known(state)) {
      // A new device id on the default password (A11). Unregistering ends nothing and is not kept (no row is made for it).
      if (expires === 0) return this.endpoint.reply(req, peer, 200, 'unregister', key, [date, ['Expires', 0]]);
      if (this.states.defaultPasswordDevices >= this.cfg.defaultPasswordMaxDevices) {
        sipEvents.inc({ event: 'default_password_refused' });
        this.endpoint.warn(
          `REGISTER of new device ${id} with the default password refused: ${this.states.defaultPasswordDevices} device(s) registered with it, gb28181.defaultPasswordMaxDevices ${this.cfg.defaultPasswordMaxDevices}`,
        );
        return this.endpoint.reply(req, peer, 403, 'register', key, [['Warning', '399 shouhu "default password device limit reached"']]);
      }
    }
    this.states.keep(state);

    if (expires === 0) {
      const was = state.registered;
      state.callId = req.callId;
      state.cseq = req.cseq.seq;
      this.unregister(state, now);
      this.endpoint.reply(req, peer, 200, 'unregister', key, [date, ['Expires', 0]]);
      if (was) await this.cameras.expire(state, now);
      return;
    }
    const granted = Math.min(expires, this.cfg.maxExpiresSeconds);
    const fresh = !state.registered || state.expiresAt <= now || state.callId !== req.callId;
    if (!own && state.registeredAt === null) this.states.defaultPasswordDevices++; // its first registration, on the default password
    state.registered = true;
    state.callId = req.callId;
    state.cseq = req.cseq.seq;
    state.peer = peer;
    state.expiresAt = now + granted * 1000;
    if (fresh) state.registeredAt = now;
    this.states.touch(id);
    const headers: [string, string | number][] = [];
    if (contact) headers.push(['Contact', contact]);
    headers.push(['Expires', granted], date);
    this.endpoint.reply(req, peer, 200, 'register', key, headers);
    if (fresh) {
      // Its cameras at once (its keepalives' heartbeats need them; one indexed read), only the queries wait their turn.
      void this.cameras.camerasOf(state, true).catch((e) => this.endpoint.warn(`camera lookup of ${id} failed: ${(e as Error).message}`));
      this.queueAfterRegister(state);
    }
  }

  /**
   * The device's state; a read of its row (not in memory, not recently found absent) waits for one of
   * gb28181.registerLookupConcurrency slots, so REGISTERs never hold more of the request pool than that
   * and alarm intake keeps the rest (attack pass 4 #1: a REGISTER flood for made-up ids made HTTP presses
   * 503 UNAVAILABLE.DATABASE). Past gb28181.registerLookupQueue waiting it throws: the REGISTER is
   * answered 503 with Retry-After (onRegister).
   */
  private async lookup(id: string): Promise<DeviceState> {
    const cached = this.states.cached(id);
    if (cached) return cached;
    if (this.lookups >= this.cfg.registerLookupConcurrency) {
      if (this.lookupWaiters.length >= this.cfg.registerLookupQueue) {
        sipEvents.inc({ event: 'register_lookup_busy' });
        throw new Error('device look-ups of REGISTERs are at gb28181.registerLookupConcurrency + registerLookupQueue');
      }
      await new Promise<void>((resolve) => this.lookupWaiters.push(resolve));
    } else this.lookups++;
    try {
      return await this.states.stateOf(id);
    } finally {
      const next = this.lookupWaiters.shift();
      if (next) next();
      else this.lookups--;
    }
  }

  /**
   * A (re)started device: learn its cameras and school, then ask what it has (§9.5, §9.5.3), its
   * keepalive settings (BasicParam, issue 16 §6) and SUBSCRIBE to its Catalog — at most
   * gb28181.afterRegisterConcurrency devices at once, the others in arrival order, so a
   * registration storm is answered at the pace REGISTERs arrive and its queries follow behind.
   */
  private queueAfterRegister(state: DeviceState): void {
    this.after.push(state);
    this.runAfterRegister();
  }

  private runAfterRegister(): void {
    while (this.afterRunning < this.cfg.afterRegisterConcurrency && this.afterHead < this.after.length) {
      const state = this.after[this.afterHead++];
      if (this.afterHead > 1024 && this.afterHead * 2 > this.after.length) {
        this.after.splice(0, this.afterHead);
        this.afterHead = 0;
      }
      this.afterRunning++;
      void this.afterRegister(state)
        .catch((e) => this.endpoint.warn(`after-registration work of ${state.deviceId} failed: ${(e as Error).message}`))
        .finally(() => {
          this.afterRunning--;
          this.runAfterRegister();
        });
    }
  }

  private async afterRegister(state: DeviceState): Promise<void> {
    if (!state.registered) return;
    await this.cameras.camerasOf(state);
    // Best effort, each bounded by its own timeout; the slot is held until they are answered.
    this.commands.queryOnRegister(state);
    await Promise.all([
      this.catalog.queryDevice(state),
      this.catalog.subscribeCatalog(state).catch((e) => this.endpoint.warn(`SUBSCRIBE of ${state.deviceId} failed: ${(e as Error).message}`)),
    ]);
  }

  /** Devices waiting for their after-registration work (tests, metrics). */
  get afterRegisterWaiting(): number {
    return this.after.length - this.afterHead + this.afterRunning;
  }

  private unregister(state: DeviceState, now: number): void {
    state.registered = false;
    this.catalog.endSubscription(state);
    state.expiresAt = Math.min(state.expiresAt, now);
    this.states.touch(state.deviceId);
  }

  /** Housekeeping: registrations not renewed in time end (their cameras go offline); old nonces are forgotten. */
  async expireDue(now: number): Promise<void> {
    const expired: DeviceState[] = [];
    for (const s of this.states.devices.values()) {
      if (s.registered && s.expiresAt <= now) {
        s.registered = false;
        this.catalog.endSubscription(s);
        this.states.touch(s.deviceId);
        expired.push(s);
      }
    }
    for (const s of expired) await this.cameras.expire(s, s.expiresAt);
    if (expired.length) sipEvents.inc({ event: 'registration_expired' }, expired.length);
    this.nonces.prune();
    this.perSource.prune(now);
    this.states.pruneAbsent(now);
  }
}

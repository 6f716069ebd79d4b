import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { GB_ID_PATTERN } from '../registry';
import { ha1, NonceTracker, parseDigest, responseMatches } from './digest';
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
import { Peer } from './sip-transport';

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
  }

  private challenge(req: SipRequest, peer: Peer, key: string, stale: boolean): void {
    const nonce = this.nonces.issue();
    const v = `Digest realm="${this.domain}", nonce="${nonce}", qop="auth", algorithm=MD5${stale ? ', stale=true' : ''}`;
    this.endpoint.reply(req, peer, 401, 'register', key, [['WWW-Authenticate', v]]);
  }

  /** A REGISTER; `key` is its transaction (marked as being worked on). */
  async onRegister(req: SipRequest, peer: Peer, key: string): Promise<void> {
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
    const nonce = this.nonces.check(creds.nonce, creds.qop ? creds.nc : undefined);
    if (nonce !== 'ok') return this.challenge(req, peer, key, nonce !== 'unknown');

    const state = await this.states.stateOf(id);
    // The digest username is the device id (§9.1.2.1) unless an admin set another for this device (issue 16 §5).
    const user = state.authUsername ?? id;
    if (creds.username !== user) return this.endpoint.reply(req, peer, 403, 'register', key);
    const own = this.states.ownPassword(state);
    const h1 = own ? state.ha1 : this.cfg.defaultPassword ? ha1(user, this.domain, this.cfg.defaultPassword) : null;
    if (!h1 || !responseMatches(h1, 'REGISTER', creds)) return this.endpoint.reply(req, peer, 403, 'register', key);
    this.nonces.commit(creds.nonce, creds.qop ? creds.nc : undefined);

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
    state.peer = peer;
    state.expiresAt = now + granted * 1000;
    if (fresh) state.registeredAt = now;
    this.states.touch(id);
    const headers: [string, string | number][] = [];
    if (contact) headers.push(['Contact', contact]);
    headers.push(['Expires', granted], date);
    this.endpoint.reply(req, peer, 200, 'register', key, headers);
    if (fresh) {
      // A (re)started device: learn its cameras and school, then ask what it has (§9.5, §9.5.3).
      await this.cameras.camerasOf(state, true);
      void this.catalog.queryDevice(state);
      // Its own keepalive settings (BasicParam), so its cameras' liveness follows them (issue 16 §6); best effort.
      this.commands.queryOnRegister(state);
      void this.catalog.subscribeCatalog(state).catch((e) => this.endpoint.warn(`SUBSCRIBE of ${id} failed: ${(e as Error).message}`));
    }
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
  }
}

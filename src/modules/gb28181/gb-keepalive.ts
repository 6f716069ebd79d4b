import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { DeviceHealthService } from '../device-health';
import { GB_ID_PATTERN } from '../registry';
import { GbCameras } from './gb-cameras';
import { GbChannelStatus } from './gb-channel-status';
import { DeviceState, fromRegisteredPeer, GbDeviceStates } from './gb-device-states';
import { FastKeepalive } from './keepalive-fast';
import { XmlElement } from './manscdp';
import { SipEndpoint } from './sip-endpoint';
import { ResponseBasis } from './sip-message';
import { Peer } from './sip-transport';

/**
 * Keepalive (§9.6.1) → device health. Nearly all SIP traffic at scale (one million devices every
 * 60 s), so this path allocates nothing per message beyond the answer, never awaits, and makes
 * one device look-up; heartbeats are batched into one pipelined Redis round trip per batch.
 */
@Injectable()
export class GbKeepalive {
  private readonly maxBatchSize: number;
  private heartbeatQueue: string[] = [];
  private heartbeatFlush: NodeJS.Timeout | null = null;
  private heartbeatsInFlight = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly states: GbDeviceStates,
    private readonly cameras: GbCameras,
    private readonly health: DeviceHealthService,
    private readonly channels: GbChannelStatus,
  ) {
    this.maxBatchSize = config.liveness.maxBatchSize;
  }

  /**
   * A keepalive recognised by the fast path, handled as the general path would: a
   * retransmission of a cached transaction, or a keepalive from a registered device. Anything
   * else (ids that are not 20 digits, unknown or unregistered devices, a source other than the
   * registration's: 400/403) returns false
   * and goes the general way, so those answers are built in one place only.
   */
  onFast(ka: FastKeepalive, peer: Peer): boolean {
    const id = ka.from.user;
    if (!this.endpoint.noneCached && this.endpoint.retransmitted(this.endpoint.txKey(ka, 'MESSAGE', peer), peer)) return true;
    if (!GB_ID_PATTERN.test(id)) return false;
    const state = this.states.devices.get(id);
    const now = Date.now();
    if (!state || !state.registered || state.expiresAt <= now || !fromRegisteredPeer(state, peer)) return false;
    if (this.endpoint.deviceLimited(state, ka, peer)) return true;
    try {
      this.onKeepalive(ka, peer, state, now);
    } catch (e) {
      this.endpoint.fail(ka, peer, null, 'dispatch', e);
    }
    return true;
  }

  /** A keepalive from a registered device: answered, and the heartbeats of its cameras not reported down queued. */
  onKeepalive(req: ResponseBasis, peer: Peer, state: DeviceState, now: number, el: XmlElement | null = null): void {
    // Faulty channels listed in <Info> (or none: a plain keepalive after a list) — one size check on the fast path.
    if (el || state.faultyChannels.size) this.channels.onKeepalive(state, el);
    // Not cached: the answer is deterministic (To tag from the branch), and a repeat is harmless.
    this.endpoint.reply(req, peer, 200, 'keepalive', null);
    state.lastKeepaliveAt = now;
    this.heartbeatsOf(state);
  }

  /** The heartbeats of a device's cameras queued (its cameras looked up first when not known yet). */
  private heartbeatsOf(state: DeviceState): void {
    if (state.heartbeatIds) this.queueHeartbeats(state.heartbeatIds);
    else
      void this.cameras.camerasOf(state).then(
        () => this.queueHeartbeats(state.heartbeatIds ?? []),
        (e) => this.endpoint.warn(`camera lookup failed: ${(e as Error).message}`),
      );
  }

  /**
   * Keepalives a SIP helper process answered (SipWorkers): recorded as those answered here — the
   * device's last keepalive, its faulty-channel list cleared if it had one, its cameras' heartbeats.
   * A device no longer registered by now (it unregistered meanwhile) gets no heartbeat.
   */
  onRemote(ids: string[], now = Date.now()): void {
    for (const id of ids) {
      const state = this.states.devices.get(id);
      if (!state || !state.registered || state.expiresAt <= now) continue;
      try {
        if (state.faultyChannels.size) this.channels.onKeepalive(state, null);
        state.lastKeepaliveAt = now;
        this.heartbeatsOf(state);
      } catch (e) {
        this.endpoint.warn(`keepalive of ${id} (helper process) not recorded: ${(e as Error).message}`);
      }
    }
  }

  /** Heartbeats are batched (one pipelined Redis round trip per batch), as the HTTP gateway route does. */
  private queueHeartbeats(ids: string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.heartbeatQueue.push(id);
    const max = this.maxBatchSize;
    if (this.heartbeatQueue.length >= max && this.heartbeatsInFlight < 4) void this.flush();
    else this.heartbeatFlush ??= setTimeout(() => void this.flush(), 10);
  }

  /** Records the queued heartbeats (a batch at a time; failures are logged, rarely). */
  async flush(): Promise<void> {
    if (this.heartbeatFlush) clearTimeout(this.heartbeatFlush);
    this.heartbeatFlush = null;
    if (this.heartbeatQueue.length === 0) return;
    const max = this.maxBatchSize;
    const batch = this.heartbeatQueue.splice(0, max);
    if (this.heartbeatQueue.length) this.heartbeatFlush = setTimeout(() => void this.flush(), 0);
    this.heartbeatsInFlight++;
    try {
      // Checked again as it is written: a camera whose channel was reported down since its keepalive is left out.
      await this.health.recordHeartbeats(batch, new Date(), this.cameras.mayBeat);
    } catch (e) {
      this.endpoint.warn(`recording ${batch.length} keepalive heartbeat(s) failed: ${(e as Error).message}`);
    } finally {
      this.heartbeatsInFlight--;
    }
  }

  /** Shutdown, before the socket closes: no more scheduled flushes (call `flush` after the socket is closed). */
  stopTimer(): void {
    if (this.heartbeatFlush) clearTimeout(this.heartbeatFlush);
  }
}

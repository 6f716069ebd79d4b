import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { DeviceHealthService } from '../device-health';
import { GB_ID_PATTERN } from '../registry';
import { GbCameras } from './gb-cameras';
import { DeviceState, GbDeviceStates } from './gb-device-states';
import { sipEvents } from './gb28181.metrics';
import { Gb28181Store } from './gb28181.store';
import { buildManscdp, child, childText, ManscdpMessage, XmlElement } from './manscdp';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';

/** A channel as its device reports it: up, down, or a word we do not know (no change). */
export type ChannelReport = 'on' | 'off' | null;

/**
 * A Catalog `Status` (GB/T 28181-2016 §A.2.6.3: ON / OFF; firmware also sends ONLINE / OFFLINE / OK)
 * or a Catalog Notify `Event` (§A.2.6.3 / 2022 §A.2.5.3: ON, OFF, VLOST video lost, DEFECT fault;
 * ADD / UPDATE carry a Status; DEL removes the channel).
 */
export function channelReport(word: string | undefined): ChannelReport {
  switch ((word ?? '').trim().toUpperCase()) {
    case 'ON':
    case 'ONLINE':
    case 'OK':
      return 'on';
    case 'OFF':
    case 'OFFLINE':
    case 'VLOST':
    case 'DEFECT':
    case 'DEL':
      return 'off';
    default:
      return null;
  }
}

/**
 * Each channel's own state (issue 16 §2): a camera behind a live NVR follows what the NVR reports
 * of that channel, not the NVR's keepalive. Down (Catalog Status OFF, Catalog Notify Event
 * OFF/VLOST/DEFECT, listed in a Keepalive's `<Info>` as faulty) → the camera's deadline is brought
 * forward (DeviceHealthService.expire), so the next sweep records it offline with its transition,
 * outage and fault timer, and the NVR's keepalives no longer refresh it; up (ON) → a heartbeat, so
 * it is back online at once. Statuses from catalogs and notifications are kept in gb_channels
 * (a restart keeps knowing which channels are down); the keepalive list is replaced by each
 * keepalive that carries one, and a plain keepalive means none is faulty.
 */
@Injectable()
export class GbChannelStatus {
  private readonly cfg: Gb28181Config;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly store: Gb28181Store,
    private readonly cameras: GbCameras,
    private readonly health: DeviceHealthService,
    private readonly endpoint: SipEndpoint,
    private readonly client: SipClient,
    private readonly states: GbDeviceStates,
  ) {
    this.cfg = config.gb28181;
  }

  /** A complete Catalog was recorded: every channel's Status counts (unknown words change nothing). */
  async onCatalog(state: DeviceState, items: { channelId: string; status: string }[]): Promise<void> {
    await this.apply(
      state,
      items.map((i) => [i.channelId, channelReport(i.status)]),
    );
  }

  /** A Catalog notification (NOTIFY after SUBSCRIBE, or MESSAGE, §9.11.2): each Item's Event (or Status). */
  async onCatalogNotify(state: DeviceState, el: XmlElement): Promise<void> {
    const reports: [string, ChannelReport][] = [];
    const changes: { channelId: string; status: string }[] = [];
    for (const item of child(el, 'DeviceList')?.children ?? []) {
      if (item.name !== 'Item') continue;
      const ch = childText(item, 'DeviceID') ?? '';
      if (!GB_ID_PATTERN.test(ch)) continue;
      const event = childText(item, 'Event');
      const r = channelReport(event === undefined || /^(ADD|UPDATE)$/i.test(event) ? childText(item, 'Status') : event);
      if (r === null) continue;
      reports.push([ch, r]);
      changes.push({ channelId: ch, status: r === 'on' ? 'ON' : (event ?? 'OFF').toUpperCase() });
    }
    sipEvents.inc({ event: 'catalog_notify' });
    await this.store.setChannelStatuses(state.deviceId, changes);
    await this.apply(state, reports);
  }

  /**
   * The faulty channels of a keepalive (§A.2.5: `<Info><DeviceList><Item>` or `<Info><DeviceID>`),
   * replacing the previous list; `el` null = a plain keepalive (none faulty). Synchronous for the
   * keepalive's own heartbeats (they skip the faulty ones at once); the transitions follow in the background.
   */
  onKeepalive(state: DeviceState, el: XmlElement | null): void {
    const info = el ? child(el, 'Info') : undefined;
    if (!info && state.faultyChannels.size === 0) return;
    const listed = new Set<string>();
    const add = (id: string | undefined) => id && GB_ID_PATTERN.test(id.trim()) && listed.add(id.trim());
    for (const c of info?.children ?? []) {
      if (c.name === 'DeviceID') add(c.text);
      else if (c.name === 'DeviceList') for (const item of c.children) if (item.name === 'Item') add(childText(item, 'DeviceID') ?? item.text);
    }
    const before = state.faultyChannels;
    if (listed.size === before.size && [...listed].every((ch) => before.has(ch))) return;
    const recovered = [...before].filter((ch) => !listed.has(ch));
    state.faultyChannels = listed;
    this.cameras.recomputeHeartbeats(state);
    void this.apply(
      state,
      recovered.map((ch) => [ch, state.offChannels?.has(ch) ? 'off' : 'on']),
    ).catch((e) => this.endpoint.warn(`channel status of ${state.deviceId} not applied: ${(e as Error).message}`));
  }

  /**
   * DeviceStatus when in doubt (issue 16 §2; GB/T 28181-2016 §9.5.2): a registered device that does
   * not tell us of channel changes (its Catalog SUBSCRIBE refused or unanswered, or subscriptions
   * off) and has channels reported down is asked about them (a DeviceStatus Query naming each
   * channel, `deviceStatusQueryMaxChannels` a round, in turn) every `deviceStatusQuerySeconds`; the
   * answers come as MESSAGEs (`onDeviceStatus`). Called by housekeeping; sends in the background.
   */
  queryInDoubt(now: number): void {
    const period = this.cfg.deviceStatusQuerySeconds * 1000;
    if (period === 0) return;
    const subscribing = this.cfg.catalogSubscribeSeconds > 0;
    for (const s of this.states.devices.values()) {
      // Told of changes: subscribing and not refused (granted, or its first answer still awaited).
      const toldOfChanges = subscribing && s.subscription?.granted !== false;
      if (!s.offChannels?.size || !s.registered || !s.peer || toldOfChanges) {
        s.statusQueryAt = 0;
        continue;
      }
      // In doubt from now: first asked one period later (a channel just reported down is not asked about at once).
      if (s.statusQueryAt === 0) s.statusQueryAt = now + period;
      if (s.statusQueryAt > now) continue;
      s.statusQueryAt = now + period;
      // In turn: the channels asked about go to the back of the set, so the next round asks the others first.
      const asked = [...s.offChannels].slice(0, this.cfg.deviceStatusQueryMaxChannels);
      for (const ch of asked) {
        s.offChannels.delete(ch);
        s.offChannels.add(ch);
      }
      sipEvents.inc({ event: 'device_status_query' }, asked.length);
      for (const ch of asked)
        void this.client
          .sendMessage(
            s,
            buildManscdp('Query', [
              ['CmdType', 'DeviceStatus'],
              ['SN', this.client.nextSn()],
              ['DeviceID', ch],
            ]),
          )
          .catch(() => undefined);
    }
  }

  /**
   * A DeviceStatus response (§A.2.6.5): for one of its channels, `Online` ONLINE with `Status` OK is
   * that channel up, OFFLINE (or Status ERROR) down; recorded on the channel as a notification is,
   * then applied. A failed query (`Result` not OK), an answer about the device itself or a word we
   * do not know changes nothing.
   */
  async onDeviceStatus(state: DeviceState, doc: ManscdpMessage): Promise<void> {
    const ch = doc.deviceId.trim();
    sipEvents.inc({ event: 'device_status' });
    if (!GB_ID_PATTERN.test(ch) || ch === state.deviceId) return;
    const word = (name: string) => (childText(doc.el, name) ?? '').trim().toUpperCase();
    if (word('Result') !== '' && word('Result') !== 'OK') return;
    const online = word('Online');
    const status = word('Status');
    const r: ChannelReport =
      online === 'OFFLINE' || status === 'ERROR' ? 'off' : online === 'ONLINE' && (status === '' || status === 'OK' || status === 'ON') ? 'on' : null;
    if (r === null) return;
    await this.store.setChannelStatuses(state.deviceId, [{ channelId: ch, status: r === 'on' ? 'ON' : 'OFF' }]);
    await this.apply(state, [[ch, r]]);
  }

  /**
   * Applies reports: the device's down set changes, the heartbeat list is recomputed, cameras of
   * down channels are expired (idempotent: only cameras that still have a deadline are touched)
   * and cameras of channels that came back get a heartbeat.
   *
   * Applications of one device run side by side (none waits for another: a stuck one holds
   * nothing back), so their Redis writes may interleave. What keeps the outcome right is that
   * every write is decided at the moment it is sent, from the state as it is then, on the one
   * Redis connection of DeviceHealthService (which keeps the order of what is sent): the down set
   * is read right before `expire`, and the heartbeat of a channel that came back is sent only if
   * its camera is still not down and the device still registered (`keep`, checked in the same
   * synchronous step as the write). So a Catalog's ON still on its way when a later keepalive
   * lists that channel as faulty is dropped, and the faulty list's expiry is never undone by it.
   */
  private async apply(state: DeviceState, reports: [string, ChannelReport][]): Promise<void> {
    await this.cameras.camerasOf(state);
    const off = (state.offChannels ??= new Set());
    const back: string[] = [];
    for (const [ch, r] of reports) {
      if (r === 'off') off.add(ch);
      else if (r === 'on') {
        off.delete(ch);
        if (!state.faultyChannels.has(ch)) back.push(ch);
      }
    }
    this.cameras.recomputeHeartbeats(state);
    const down = [...this.cameras.downCameras(state)];
    const up = back.map((ch) => state.cameraByChannel?.get(ch)).filter((id): id is string => !!id);
    if (down.length) await this.health.expire(down, new Date());
    if (up.length) await this.health.recordHeartbeats(up, new Date(), (id) => state.registered && this.cameras.mayBeat(id));
  }
}

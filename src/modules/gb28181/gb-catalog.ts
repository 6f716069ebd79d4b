import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { malformedInput } from '../../infra/observability/metrics';
import { storableText } from '../../infra/text/storable';
import { GbCameras } from './gb-cameras';
import { CATALOG_ITEM_ID, channelKind } from './gb-codes';
import { GbChannelStatus } from './gb-channel-status';
import { DeviceState, GbDeviceStates } from './gb-device-states';
import type { Gb28181Config } from '../../config/sections';
import { sipEvents } from './gb28181.metrics';
import { CatalogItem, Gb28181Store } from './gb28181.store';
import { buildManscdp, child, childText, ManscdpMessage } from './manscdp';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';

interface CatalogAssembly {
  deviceId: string;
  sumNum: number;
  items: Map<string, CatalogItem>;
  /** Items that could not be taken (bad ids): they still count toward SumNum, so the Catalog completes. */
  refused: number;
  timer: NodeJS.Timeout;
}

const CATALOG_MAX_ITEMS = 10_000;

/**
 * What a device has: the platform's Catalog (§9.5.3) and DeviceInfo (§9.5.4) queries, and their
 * answers — Catalog responses assembled from their parts (SumNum) into gb_channels, whose
 * channels become cameras when the device has a school; DeviceInfo recorded on the device.
 */
@Injectable()
export class GbCatalog {
  private readonly cfg: Gb28181Config;
  private readonly assemblies = new Map<string, CatalogAssembly>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly store: Gb28181Store,
    private readonly states: GbDeviceStates,
    private readonly cameras: GbCameras,
    private readonly client: SipClient,
    private readonly endpoint: SipEndpoint,
    private readonly channels: GbChannelStatus,
  ) {
    this.cfg = config.gb28181;
  }

  /** After registration: Catalog (§9.5.3) and DeviceInfo (§9.5.4) queries. */
  async queryDevice(state: DeviceState): Promise<{ catalog: number; deviceInfo: number }> {
    const q = (cmd: string) =>
      this.client.sendMessage(
        state,
        buildManscdp('Query', [
          ['CmdType', cmd],
          ['SN', this.client.nextSn()],
          ['DeviceID', state.deviceId],
        ]),
      );
    const [catalog, deviceInfo] = await Promise.all([q('Catalog'), q('DeviceInfo')]);
    sipEvents.inc({ event: catalog === 200 ? 'catalog_query_ok' : 'catalog_query_failed' });
    return { catalog, deviceInfo };
  }

  /**
   * SUBSCRIBE to the device's Catalog changes (GB/T 28181-2016 §9.11.1) for `catalogSubscribeSeconds`,
   * refreshed at 80 % of the period the device granted (RFC 6665 §4.1.2.1: refresh before expiry);
   * a refused or unanswered SUBSCRIBE is tried again at the same pace (many older devices do not
   * support it; their catalog statuses and keepalives still count). Ends with the registration.
   */
  async subscribeCatalog(state: DeviceState): Promise<void> {
    const expires = this.cfg.catalogSubscribeSeconds;
    if (expires === 0 || !state.registered) return;
    const sub = (state.subscription ??= {
      callId: `${randomBytes(8).toString('hex')}@${this.endpoint.advertised}`,
      fromTag: randomBytes(4).toString('hex'),
      cseq: 0,
      timer: null,
    });
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = null;
    sub.cseq++;
    const r = await this.client.subscribe(state, { callId: sub.callId, fromTag: sub.fromTag, cseq: sub.cseq, expires, sn: this.client.nextSn() });
    const ok = r.status >= 200 && r.status < 300;
    sipEvents.inc({ event: ok ? 'catalog_subscribed' : 'catalog_subscribe_failed' });
    if (state.subscription !== sub || !state.registered) return;
    const period = ok && r.expires ? Math.min(r.expires, expires) : expires;
    sub.timer = setTimeout(() => void this.subscribeCatalog(state).catch(() => undefined), Math.max(1000, period * 800));
    sub.timer.unref();
  }

  /** The registration ended: no more subscription refreshes (the device's own subscription lapses). */
  endSubscription(state: DeviceState): void {
    if (state.subscription?.timer) clearTimeout(state.subscription.timer);
    state.subscription = null;
  }

  /** Queries a registered device again (admin); null when it is not registered here. */
  async requery(deviceId: string): Promise<{ catalog: number; deviceInfo: number } | null> {
    const s = this.states.devices.get(deviceId);
    if (!s || !s.registered || !s.peer) return null;
    return this.queryDevice(s);
  }

  /** One part of a Catalog response (already answered 200). */
  onCatalogPart(state: DeviceState, doc: ManscdpMessage): void {
    const sumNum = Number(childText(doc.el, 'SumNum'));
    if (!Number.isInteger(sumNum) || sumNum < 0 || sumNum > CATALOG_MAX_ITEMS) {
      malformedInput.inc({ source: 'sip', reason: 'catalog_sumnum' });
      return;
    }
    const k = `${state.deviceId}:${doc.sn}`;
    let a = this.assemblies.get(k);
    if (!a) {
      a = {
        deviceId: state.deviceId,
        sumNum,
        items: new Map(),
        refused: 0,
        timer: setTimeout(() => void this.finishCatalog(k, true), this.cfg.catalogTimeoutMs),
      };
      a.timer.unref();
      this.assemblies.set(k, a);
    }
    const list = child(doc.el, 'DeviceList');
    for (const item of list?.children ?? []) {
      if (item.name !== 'Item') continue;
      const ch = (childText(item, 'DeviceID') ?? '').trim();
      // Civil codes (2–8 digits), business groups and virtual organisations are items too: they count toward SumNum.
      if (!CATALOG_ITEM_ID.test(ch)) {
        malformedInput.inc({ source: 'sip', reason: 'catalog_item' });
        a.refused++;
        continue;
      }
      const num = (s: string | undefined) => (s && /^-?\d{1,3}(\.\d+)?$/.test(s) && Number(s) !== 0 ? Number(s) : null);
      a.items.set(ch, {
        channelId: ch,
        kind: channelKind(ch),
        businessGroupId: storableText(childText(item, 'BusinessGroupID') ?? '', 20),
        name: storableText(childText(item, 'Name') ?? '', 200),
        manufacturer: storableText(childText(item, 'Manufacturer') ?? '', 100),
        model: storableText(childText(item, 'Model') ?? '', 100),
        status: storableText(childText(item, 'Status') ?? '', 20),
        parentId: storableText(childText(item, 'ParentID') ?? '', 200),
        longitude: num(childText(item, 'Longitude')),
        latitude: num(childText(item, 'Latitude')),
      });
    }
    if (a.items.size + a.refused >= a.sumNum) void this.finishCatalog(k, false);
  }

  /** All parts arrived (or the wait ran out): record the channels and place them as cameras if the device has a school. */
  private async finishCatalog(k: string, timedOut: boolean): Promise<void> {
    const a = this.assemblies.get(k);
    if (!a) return;
    this.assemblies.delete(k);
    clearTimeout(a.timer);
    sipEvents.inc({ event: timedOut ? 'catalog_partial' : 'catalog_complete' });
    try {
      const items = [...a.items.values()];
      // A complete Catalog is the device's whole set (a new SN, a new set; SumNum 0: none): what it no longer lists is removed.
      const removed = await this.store.saveCatalog(a.deviceId, items, !timedOut);
      if (removed.length) sipEvents.inc({ event: 'channels_removed' }, removed.length);
      const state = this.states.devices.get(a.deviceId);
      if (state?.schoolId) await this.cameras.placeChannels(a.deviceId, state.schoolId);
      // Each channel's own Status: a channel reported OFF (or removed) is a camera offline, whatever the NVR's keepalives say.
      if (state)
        await this.channels.onCatalog(state, [...items.filter((i) => i.kind === 'camera'), ...removed.map((channelId) => ({ channelId, status: 'OFF' }))]);
    } catch (e) {
      this.endpoint.warn(`catalog of ${a.deviceId} not recorded: ${(e as Error).message}`);
    }
  }

  /** A DeviceInfo response (already answered 200): recorded on the device, in the background. */
  onDeviceInfo(state: DeviceState, doc: ManscdpMessage): void {
    this.store
      .setDeviceInfo(state.deviceId, {
        name: storableText(childText(doc.el, 'DeviceName') ?? '', 200),
        manufacturer: storableText(childText(doc.el, 'Manufacturer') ?? '', 100),
        model: storableText(childText(doc.el, 'Model') ?? '', 100),
        firmware: storableText(childText(doc.el, 'Firmware') ?? '', 100),
        channelCount: /^\d{1,6}$/.test(childText(doc.el, 'Channel') ?? '') ? Number(childText(doc.el, 'Channel')) : null,
      })
      .catch((e) => this.endpoint.warn(`DeviceInfo of ${state.deviceId} not saved: ${(e as Error).message}`));
  }

  /** Shutdown: catalogs still being assembled are dropped. */
  stop(): void {
    for (const c of this.assemblies.values()) clearTimeout(c.timer);
    this.assemblies.clear();
    for (const s of this.states.devices.values()) if (s.subscription) this.endSubscription(s);
  }
}

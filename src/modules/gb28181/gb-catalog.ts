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
  /** The wait for the other parts; null until the assembly is kept open. */
  timer: NodeJS.Timeout | null;
}

const CATALOG_MAX_ITEMS = 10_000;

/** A Catalog to record: a complete one (`replace`) or what arrived of one before the wait ran out. */
interface CatalogSave {
  deviceId: string;
  items: CatalogItem[];
  replace: boolean;
}

/**
 * What a device has: the platform's Catalog (§9.5.3) and DeviceInfo (§9.5.4) queries, and their
 * answers — Catalog responses assembled from their parts (SumNum) into gb_channels, whose
 * channels become cameras when the device has a school; DeviceInfo recorded on the device.
 */
@Injectable()
export class GbCatalog {
  private readonly cfg: Gb28181Config;
  /** Open assemblies by `deviceId:SN`, oldest first (Map order). */
  private readonly assemblies = new Map<string, CatalogAssembly>();
  /** Open assemblies per device (their keys, oldest first). */
  private readonly assembliesOf = new Map<string, string[]>();
  /** Per device with a save running or waiting: at most one running and one waiting (a newer catalog replaces it). */
  private readonly saves = new Map<string, { running: boolean; waiting: CatalogSave | null }>();
  /** Devices whose waiting save may start (insertion order = first come, first served). */
  private readonly ready = new Set<string>();
  private savesRunning = 0;

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
      granted: null,
    });
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = null;
    sub.cseq++;
    const r = await this.client.subscribe(state, { callId: sub.callId, fromTag: sub.fromTag, cseq: sub.cseq, expires, sn: this.client.nextSn() });
    const ok = r.status >= 200 && r.status < 300;
    sipEvents.inc({ event: ok ? 'catalog_subscribed' : 'catalog_subscribe_failed' });
    if (state.subscription !== sub || !state.registered) return;
    sub.granted = ok;
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
    const open = this.assemblies.get(k);
    const a: CatalogAssembly = open ?? { deviceId: state.deviceId, sumNum, items: new Map(), refused: 0, timer: null };
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
    if (a.items.size + a.refused >= a.sumNum) {
      if (open) this.closeAssembly(k, a);
      sipEvents.inc({ event: 'catalog_complete' });
      this.queueSave({ deviceId: a.deviceId, items: [...a.items.values()], replace: true });
    } else if (!open) this.openAssembly(k, a);
  }

  /**
   * Keeps an assembly open for its next parts (attack notes F10: parts with ever-new SNs must not
   * pile up): a device over `catalogMaxAssembliesPerDevice` loses its oldest; over
   * `catalogMaxAssemblies` in all, the new one is not opened (this part is dropped, counted).
   */
  private openAssembly(k: string, a: CatalogAssembly): void {
    const mine = this.assembliesOf.get(a.deviceId) ?? [];
    while (mine.length >= this.cfg.catalogMaxAssembliesPerDevice) {
      const oldest = mine[0];
      this.closeAssembly(oldest, this.assemblies.get(oldest)!);
      sipEvents.inc({ event: 'catalog_evicted' });
    }
    if (this.assemblies.size >= this.cfg.catalogMaxAssemblies) {
      sipEvents.inc({ event: 'catalog_refused' });
      return;
    }
    a.timer = setTimeout(() => this.timedOut(k), this.cfg.catalogTimeoutMs);
    a.timer.unref();
    this.assemblies.set(k, a);
    mine.push(k);
    this.assembliesOf.set(a.deviceId, mine);
  }

  private closeAssembly(k: string, a: CatalogAssembly): void {
    if (a.timer) clearTimeout(a.timer);
    this.assemblies.delete(k);
    const mine = this.assembliesOf.get(a.deviceId);
    const i = mine?.indexOf(k) ?? -1;
    if (i >= 0) mine!.splice(i, 1);
    if (mine && mine.length === 0) this.assembliesOf.delete(a.deviceId);
  }

  /** The wait for the rest of a Catalog ran out: what arrived is kept (nothing is removed for it). */
  private timedOut(k: string): void {
    const a = this.assemblies.get(k);
    if (!a) return;
    this.closeAssembly(k, a);
    sipEvents.inc({ event: 'catalog_partial' });
    this.queueSave({ deviceId: a.deviceId, items: [...a.items.values()], replace: false });
  }

  /** Catalog saves running and waiting (all devices). */
  savesInFlight(): { running: number; waiting: number } {
    let waiting = 0;
    for (const d of this.saves.values()) if (d.waiting) waiting++;
    return { running: this.savesRunning, waiting };
  }

  /** Open assemblies (all devices, or one device's). */
  openAssemblies(deviceId?: string): number {
    return deviceId === undefined ? this.assemblies.size : (this.assembliesOf.get(deviceId)?.length ?? 0);
  }

  /**
   * Queues a save: one device's saves run one after another, the one waiting is replaced by a newer
   * one (the device's latest catalog is what counts; counted as catalog_superseded), and at most
   * `catalogSaveConcurrency` run at once, devices first come first served.
   */
  private queueSave(save: CatalogSave): void {
    let d = this.saves.get(save.deviceId);
    if (!d) this.saves.set(save.deviceId, (d = { running: false, waiting: null }));
    if (d.waiting) sipEvents.inc({ event: 'catalog_superseded' });
    d.waiting = save;
    if (!d.running) this.ready.add(save.deviceId);
    this.pumpSaves();
  }

  private pumpSaves(): void {
    while (this.savesRunning < this.cfg.catalogSaveConcurrency && this.ready.size) {
      const deviceId = this.ready.values().next().value as string;
      this.ready.delete(deviceId);
      const d = this.saves.get(deviceId);
      if (!d?.waiting) continue;
      const save = d.waiting;
      d.waiting = null;
      d.running = true;
      this.savesRunning++;
      void this.recordCatalog(save).finally(() => {
        this.savesRunning--;
        d.running = false;
        if (d.waiting) this.ready.add(deviceId);
        else if (this.saves.get(deviceId) === d) this.saves.delete(deviceId);
        this.pumpSaves();
      });
    }
  }

  /** Records the channels, places them as cameras if the device has a school, and applies their statuses. */
  private async recordCatalog(save: CatalogSave): Promise<void> {
    const { deviceId, items } = save;
    try {
      // A complete Catalog is the device's whole set (a new SN, a new set; SumNum 0: none): what it no longer lists is removed.
      const removed = await this.store.saveCatalog(deviceId, items, save.replace, this.cfg.catalogRowsPerStatement);
      if (removed.length) sipEvents.inc({ event: 'channels_removed' }, removed.length);
      const state = this.states.devices.get(deviceId);
      if (state?.schoolId) await this.cameras.placeChannels(deviceId, state.schoolId);
      // Each channel's own Status: a channel reported OFF (or removed) is a camera offline, whatever the NVR's keepalives say.
      if (state)
        await this.channels.onCatalog(state, [...items.filter((i) => i.kind === 'camera'), ...removed.map((channelId) => ({ channelId, status: 'OFF' }))]);
    } catch (e) {
      this.endpoint.warn(`catalog of ${deviceId} not recorded: ${(e as Error).message}`);
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

  /** Shutdown: catalogs still being assembled, and saves not started, are dropped. */
  stop(): void {
    for (const c of this.assemblies.values()) if (c.timer) clearTimeout(c.timer);
    this.assemblies.clear();
    this.assembliesOf.clear();
    this.ready.clear();
    for (const d of this.saves.values()) d.waiting = null;
    for (const s of this.states.devices.values()) if (s.subscription) this.endSubscription(s);
  }
}

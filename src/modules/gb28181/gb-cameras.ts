import { Injectable } from '@nestjs/common';
import { DeviceHealthService } from '../device-health';
import { GbProvisioningService } from '../registry';
import { isOrganisationNode } from './gb-codes';
import { DeviceState, GbDeviceStates } from './gb-device-states';
import { sipEvents } from './gb28181.metrics';
import { Gb28181Store } from './gb28181.store';

/** A channel an admin places, with optional overrides of what the device reported. */
export interface ChannelPlacement {
  channelId: string;
  name?: string;
  areaKind?: string;
  location?: string;
}

export interface PlacedChannel {
  deviceId: string;
  channelId: string;
  cameraId: string;
  created: boolean;
}

/**
 * The link between GB/T 28181 devices and registry cameras: which cameras a device's keepalives
 * stand for, placing reported channels as cameras, and keeping the liveness index in step so a
 * new camera's first keepalive counts.
 */
@Injectable()
export class GbCameras {
  constructor(
    private readonly store: Gb28181Store,
    private readonly states: GbDeviceStates,
    private readonly provisioning: GbProvisioningService,
    private readonly health: DeviceHealthService,
  ) {}

  /**
   * The SIP server (re)started: no camera of a GB/T 28181 device is declared offline before
   * `until` (gb28181.restartGraceSeconds) — its keepalives went nowhere while we were down, and its
   * re-registration may wait its turn in the storm that follows. Returns how many deadlines were lifted.
   */
  async restartGrace(until: number): Promise<number> {
    const devices = await this.store.deviceIds();
    let lifted = 0;
    for (let i = 0; i < devices.length; i += 10_000) {
      const cams = await this.provisioning.camerasOfDevices(devices.slice(i, i + 10_000));
      lifted += await this.health.holdOffline(cams, until);
    }
    return lifted;
  }

  /**
   * Registry cameras of a device (looked up once, then after catalogs and assignments). A device
   * with no school yet inherits the school of cameras already registered under its id.
   */
  camerasOf(state: DeviceState, reload = false): Promise<string[]> {
    if (state.cameraIds && !reload) return Promise.resolve(state.cameraIds);
    state.loadingCameras ??= (async () => {
      try {
        const [cams, off] = await Promise.all([
          this.provisioning.gbDeviceCameras(state.deviceId),
          state.offChannels ? Promise.resolve(null) : this.store.downChannels(state.deviceId),
        ]);
        if (off) state.offChannels ??= new Set(off);
        state.cameraIds = cams.map((c) => c.id);
        state.cameraByChannel = new Map(cams.map((c) => [c.channelId, c.id]));
        for (const c of cams) this.deviceOf.set(c.id, state.deviceId);
        this.recomputeHeartbeats(state);
        if (!state.schoolId && cams.length) {
          state.schoolId = cams[0].schoolId;
          this.states.touch(state.deviceId);
        }
        // Cameras the liveness index has not seen yet (just created) join it now, with a deadline.
        if (state.cameraIds.some((c) => !this.health.isIndexed(c))) await this.refreshIndex();
        return state.cameraIds;
      } finally {
        state.loadingCameras = null;
      }
    })();
    return state.loadingCameras;
  }

  /**
   * The cameras a keepalive of this device refreshes: all of its cameras but those of channels it
   * reported down (GB/T 28181 Catalog Status OFF, Notify Event OFF/VLOST/DEFECT, Keepalive faulty
   * list). Computed here, when either side changes, so the keepalive path only reads an array.
   */
  recomputeHeartbeats(state: DeviceState): void {
    if (!state.cameraIds || !state.cameraByChannel) return;
    const down = this.downCameras(state);
    state.heartbeatIds = down.size === 0 ? state.cameraIds : state.cameraIds.filter((id) => !down.has(id));
    for (const id of state.downCameraIds ?? []) if (!down.has(id)) this.down.delete(id);
    for (const id of down) this.down.add(id);
    state.downCameraIds = down.size ? down : null;
  }

  /**
   * Cameras of all devices whose channel is reported down now (the union of `downCameras` as of
   * the last `recomputeHeartbeats`). Heartbeats decided earlier are checked against it at the
   * moment they are written (DeviceHealthService.recordHeartbeats `keep`), so one decided before a
   * channel went down never lands after that channel's expiry.
   */
  private readonly down = new Set<string>();

  /**
   * The device id of each camera looked up (`camerasOf`): a heartbeat is written only while that
   * device is registered, checked the same way — so a keepalive's heartbeat decided before the
   * device unregistered (REGISTER Expires: 0) or its registration expired never lands after the
   * expiry of its cameras and brings them back online.
   */
  private readonly deviceOf = new Map<string, string>();

  /**
   * Whether a heartbeat may be written for this camera now: its channel is not reported down (`down`)
   * and its device is still registered (`deviceOf`). Asked by DeviceHealthService.recordHeartbeats
   * in the step that sends the write, on the Redis connection `expire` uses.
   */
  readonly mayBeat = (cameraId: string): boolean => {
    if (this.down.size !== 0 && this.down.has(cameraId)) return false;
    const deviceId = this.deviceOf.get(cameraId);
    return deviceId !== undefined && this.states.devices.get(deviceId)?.registered === true;
  };

  /** Camera ids of the device's channels reported down (needs `camerasOf` loaded). */
  downCameras(state: DeviceState): Set<string> {
    const out = new Set<string>();
    const map = state.cameraByChannel;
    if (!map) return out;
    for (const set of [state.offChannels, state.faultyChannels])
      for (const ch of set ?? []) {
        const cam = map.get(ch);
        if (cam) out.add(cam);
      }
    return out;
  }

  /**
   * Registration ended (`registered` already false, so `mayBeat` refuses their heartbeats from now):
   * the device's cameras go offline at the next device-health sweep.
   */
  async expire(state: DeviceState, at: number): Promise<void> {
    const ids = await this.camerasOf(state);
    if (ids.length) await this.health.expire(ids, new Date(at));
  }

  /**
   * Creates registry cameras for a device's unplaced channels (organisation nodes excepted)
   * under a school, links them, and brings them into device health.
   */
  async placeChannels(deviceId: string, schoolId: string, only?: ChannelPlacement[]): Promise<PlacedChannel[]> {
    const placed = await this.store.db.transaction(async (m) => {
      const rows = (
        await this.store.unplacedChannels(
          deviceId,
          only?.map((o) => o.channelId),
          m,
        )
      ).filter((c) => !isOrganisationNode(c.channelId));
      const extra = new Map((only ?? []).map((o) => [o.channelId, o]));
      const cams = await this.provisioning.provisionGbCameras(
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
      const state = this.states.devices.get(deviceId);
      if (state) await this.camerasOf(state, true);
      else await this.refreshIndex();
    }
    return placed;
  }

  /**
   * New cameras join the liveness index with a deadline (as the worker's periodic refresh would
   * do a little later), so their first keepalive records them online. Concurrent callers share
   * one load; a call during a load gets one more load after it (to see rows committed meanwhile).
   */
  private refreshIndex(): Promise<void> {
    return this.health.refreshIndex({ seed: true });
  }
}

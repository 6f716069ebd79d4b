import type { DeviceIndexRow, WatchedDeviceKind } from '../registry/registry.service';

/** One watched device as the hot path needs it; `intervalSec` 0 = the configured default. */
export interface IndexedDevice {
  id: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  intervalSec: number;
}

/** The Redis member naming a device: kind letter + uuid, so the sweep knows the table without a lookup. */
export function memberOf(d: { kind: WatchedDeviceKind; id: string }): string {
  return (d.kind === 'camera' ? 'c:' : 'a:') + d.id;
}

export function parseMember(m: string): { kind: WatchedDeviceKind; id: string } {
  return { kind: m.charCodeAt(0) === 99 /* c */ ? 'camera' : 'alarm_device', id: m.slice(2) };
}

/** External key of a camera (GB/T 28181 device id + channel id) or an alarm button (code). */
export const cameraKey = (deviceId: string, channelId: string) => deviceId + channelId;
export const alarmKey = (code: string) => 'a:' + code;

/**
 * In-memory map from device uuids and external ids to what a heartbeat needs (school, interval),
 * loaded from the registry at boot and refreshed incrementally. Lookups are O(1) and never touch
 * Postgres; school ids are interned so a million entries share a few thousand strings.
 */
export class LivenessIndex {
  private byId = new Map<string, IndexedDevice>();
  private byExt = new Map<string, IndexedDevice>();
  private schools = new Map<string, string>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): IndexedDevice | undefined {
    return this.byId.get(id);
  }

  byExternal(key: string): IndexedDevice | undefined {
    return this.byExt.get(key);
  }

  /** Adds or replaces a device (a changed external id or school replaces the old entry). */
  put(row: DeviceIndexRow): IndexedDevice {
    let school = this.schools.get(row.schoolId);
    if (school === undefined) this.schools.set(row.schoolId, (school = row.schoolId));
    const d: IndexedDevice = { id: row.id, kind: row.kind, schoolId: school, intervalSec: row.keepaliveSeconds ?? 0 };
    this.byId.set(row.id, d);
    if (row.kind === 'camera' && row.deviceId && row.channelId) this.byExt.set(cameraKey(row.deviceId, row.channelId), d);
    else if (row.kind === 'alarm_device' && row.code) this.byExt.set(alarmKey(row.code), d);
    return d;
  }

  /** Swaps in a freshly built index (a full reload drops devices removed from the registry). */
  replaceWith(other: LivenessIndex): void {
    this.byId = other.byId;
    this.byExt = other.byExt;
    this.schools = other.schools;
  }
}

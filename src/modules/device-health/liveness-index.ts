import type { DeviceIndexRow, WatchedDeviceKind } from '../registry';

/** One watched device as the hot path needs it; `intervalSec` 0 = the configured default. */
export interface IndexedDevice {
  id: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  intervalSec: number;
  /** Silence after which it is offline, in seconds, when its GB/T 28181 device reported its own (0 = intervalSec × missedBeforeOffline). */
  offlineAfterSec: number;
}

/** The Redis member naming a device: kind letter + uuid, so the sweep knows the table without a lookup. */
export function memberOf(d: { kind: WatchedDeviceKind; id: string }): string {
  return (d.kind === 'camera' ? 'c:' : 'a:') + d.id;
}

export function parseMember(m: string): { kind: WatchedDeviceKind; id: string } {
  return { kind: m.charCodeAt(0) === 99 /* c */ ? 'camera' : 'alarm_device', id: m.slice(2) };
}

/** The liveness shard (0 … shards-1) holding a device's deadline and "not online" membership: a hash of its uuid. */
export function shardOf(id: string, shards: number): number {
  return shards === 1 ? 0 : (hash2(id, '') >>> 0) % shards;
}

/** External key of a camera (GB/T 28181 device id + channel id) or an alarm button (code). */
export const cameraKey = (deviceId: string, channelId: string) => deviceId + channelId;
export const alarmKey = (code: string) => 'a:' + code;
const ALARM_PREFIX = 'a:';

const EMPTY = -1;

/** FNV-1a over the chars of a then b, with a final mix so the low bits (the bucket) spread well. */
function hash2(a: string, b: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 16777619);
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b.charCodeAt(i), 16777619);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

/**
 * Open-addressing hash table (linear probing) from a key hash to a device slot. Each bucket is
 * two int32s, [slot, full hash], so probes that collide on the bucket are rejected without
 * touching the device's data; the caller checks the key itself on a full-hash match. Entries
 * are never deleted: a device whose key changed simply stops matching its old entry (the
 * caller compares against the device's current key), and a full reload builds a fresh table.
 */
class SlotTable {
  private buckets: Int32Array;
  private mask: number;
  private used = 0;

  constructor(expected = 1024) {
    let n = 1024;
    while (n < expected * 2) n *= 2;
    this.mask = n - 1;
    this.buckets = new Int32Array(2 * n).fill(EMPTY);
  }

  /** First bucket of a hash; walk with next() while slotAt() is not EMPTY. */
  start(h: number): number {
    return h & this.mask;
  }
  next(b: number): number {
    return (b + 1) & this.mask;
  }
  slotAt(b: number): number {
    return this.buckets[2 * b];
  }
  hashAt(b: number): number {
    return this.buckets[2 * b + 1];
  }

  insert(h: number, slot: number): void {
    if ((this.used + 1) * 2 > this.mask + 1) this.grow();
    let b = h & this.mask;
    while (this.buckets[2 * b] !== EMPTY) b = (b + 1) & this.mask;
    this.buckets[2 * b] = slot;
    this.buckets[2 * b + 1] = h;
    this.used++;
  }

  private grow(): void {
    const old = this.buckets;
    this.mask = 2 * (this.mask + 1) - 1;
    this.buckets = new Int32Array(2 * (this.mask + 1)).fill(EMPTY);
    this.used = 0;
    for (let i = 0; i < old.length; i += 2) if (old[i] !== EMPTY) this.insert(old[i + 1], old[i]);
  }
}

/** All of an index's data, swapped as one by replaceWith(). */
class IndexData {
  count = 0;
  /** Per slot: the Redis member ("c:<uuid>" / "a:<uuid>"), which also carries the kind and the id. */
  members: string[] = [];
  school: Uint32Array;
  interval: Int32Array;
  /** Per slot: seconds of silence before offline when set (DeviceIndexRow.offlineAfterSeconds), 0 = from the interval. */
  offlineAfter: Int32Array;
  /** Per slot: where the external key's bytes are in extPool (length 0 = none). */
  extOff: Int32Array;
  extLen: Uint8Array;
  extPool: Uint8Array;
  extUsed = 0;
  byId: SlotTable;
  byExt: SlotTable;
  schoolIds: string[] = [];
  schoolIdx = new Map<string, number>();

  constructor(expected: number) {
    const cap = Math.max(1024, expected);
    this.school = new Uint32Array(cap);
    this.interval = new Int32Array(cap);
    this.offlineAfter = new Int32Array(cap);
    this.extOff = new Int32Array(cap);
    this.extLen = new Uint8Array(cap);
    this.extPool = new Uint8Array(cap * 40);
    this.byId = new SlotTable(expected);
    this.byExt = new SlotTable(expected);
  }
}

const grown = <T extends Int32Array | Uint32Array | Uint8Array>(a: T, min: number): T => {
  if (a.length >= min) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(min, a.length * 2));
  b.set(a);
  return b;
};

/**
 * In-memory map from device uuids and external ids (GB/T 28181 device + channel id, alarm
 * code) to what a heartbeat needs (Redis member, school, interval), loaded from the registry
 * at boot and refreshed incrementally. Lookups are O(1) and never touch Postgres.
 *
 * Compact on purpose: at a million devices a Map of per-device objects costs hundreds of MB of
 * V8 heap and most of the ingest CPU (string hashing plus cache misses on scattered objects).
 * Here a device is a small integer slot into typed arrays; the only per-device JS object is its
 * member string. External keys live as bytes in one pool, so a lookup hashes the request's
 * strings without concatenating them and compares bytes in place.
 */
export class LivenessIndex {
  private d: IndexData;

  constructor(expected = 0) {
    this.d = new IndexData(expected);
  }

  get size(): number {
    return this.d.count;
  }

  // ------------------------------------------------------------ slot lookups (hot path)

  /** Slot of a device by uuid, or -1. */
  slotOf(id: string): number {
    const d = this.d;
    const t = d.byId;
    const h = hash2(id, '');
    for (let b = t.start(h); ; b = t.next(b)) {
      const s = t.slotAt(b);
      if (s === EMPTY) return -1;
      if (t.hashAt(b) !== h) continue;
      const m = d.members[s];
      if (m.length !== id.length + 2) continue;
      let i = 0;
      while (i < id.length && m.charCodeAt(i + 2) === id.charCodeAt(i)) i++;
      if (i === id.length) return s;
    }
  }

  /** Slot of a camera by GB/T 28181 device id + channel id, or -1. */
  slotOfCamera(deviceId: string, channelId: string): number {
    return this.slotOfExt(deviceId, channelId);
  }

  /** Slot of an alarm button by code, or -1. */
  slotOfAlarm(code: string): number {
    return this.slotOfExt(ALARM_PREFIX, code);
  }

  private slotOfExt(a: string, b: string): number {
    const d = this.d;
    const t = d.byExt;
    const h = hash2(a, b);
    const len = a.length + b.length;
    for (let k = t.start(h); ; k = t.next(k)) {
      const s = t.slotAt(k);
      if (s === EMPTY) return -1;
      if (t.hashAt(k) !== h || d.extLen[s] !== len) continue;
      const off = d.extOff[s];
      const pool = d.extPool;
      let i = 0;
      while (i < a.length && pool[off + i] === a.charCodeAt(i)) i++;
      if (i < a.length) continue;
      let j = 0;
      while (j < b.length && pool[off + i + j] === b.charCodeAt(j)) j++;
      if (j === b.length) return s;
    }
  }

  // ------------------------------------------------------------ slot data

  member(slot: number): string {
    return this.d.members[slot];
  }
  id(slot: number): string {
    return this.d.members[slot].slice(2);
  }
  kind(slot: number): WatchedDeviceKind {
    return this.d.members[slot].charCodeAt(0) === 99 /* c */ ? 'camera' : 'alarm_device';
  }
  schoolId(slot: number): string {
    return this.d.schoolIds[this.d.school[slot]];
  }
  /** Keepalive override in seconds, 0 = the configured default. */
  intervalSec(slot: number): number {
    return this.d.interval[slot];
  }
  /** Seconds of silence before offline the device's GB/T 28181 device reported (0 = from the interval). */
  offlineAfterSec(slot: number): number {
    return this.d.offlineAfter[slot];
  }

  /** The device as an object (for the rare paths; the hot path stays on slots). */
  device(slot: number): IndexedDevice {
    return {
      id: this.id(slot),
      kind: this.kind(slot),
      schoolId: this.schoolId(slot),
      intervalSec: this.intervalSec(slot),
      offlineAfterSec: this.offlineAfterSec(slot),
    };
  }

  get(id: string): IndexedDevice | undefined {
    const s = this.slotOf(id);
    return s < 0 ? undefined : this.device(s);
  }

  /** By external key (cameraKey / alarmKey); the hash and the stored bytes are of the whole key. */
  byExternal(key: string): IndexedDevice | undefined {
    const s = this.slotOfExt(key, '');
    return s < 0 ? undefined : this.device(s);
  }

  // ------------------------------------------------------------ loading

  /** Adds or replaces a device (a changed external id or school replaces the old one); returns its slot. */
  put(row: DeviceIndexRow): number {
    const d = this.d;
    let s = this.slotOf(row.id);
    if (s < 0) {
      s = d.count++;
      if (s >= d.school.length) {
        d.school = grown(d.school, s + 1);
        d.interval = grown(d.interval, s + 1);
        d.offlineAfter = grown(d.offlineAfter, s + 1);
        d.extOff = grown(d.extOff, s + 1);
        d.extLen = grown(d.extLen, s + 1);
      }
      d.members[s] = flat((row.kind === 'camera' ? 'c:' : 'a:') + row.id);
      d.byId.insert(hash2(row.id, ''), s);
    }
    let school = d.schoolIdx.get(row.schoolId);
    if (school === undefined) {
      school = d.schoolIds.push(row.schoolId) - 1;
      d.schoolIdx.set(row.schoolId, school);
    }
    d.school[s] = school;
    d.interval[s] = row.keepaliveSeconds ?? 0;
    d.offlineAfter[s] = row.offlineAfterSeconds ?? 0;
    if (row.kind === 'camera' && row.deviceId && row.channelId) this.setExt(s, row.deviceId, row.channelId);
    else if (row.kind === 'alarm_device' && row.code) this.setExt(s, ALARM_PREFIX, row.code);
    else d.extLen[s] = 0;
    return s;
  }

  private setExt(s: number, a: string, b: string): void {
    const d = this.d;
    const len = a.length + b.length;
    if (d.extLen[s] === len) {
      // Unchanged key (the common case of a refresh): nothing to do.
      const off = d.extOff[s];
      let same = true;
      for (let i = 0; i < len && same; i++) same = d.extPool[off + i] === (i < a.length ? a.charCodeAt(i) : b.charCodeAt(i - a.length));
      if (same) return;
    }
    // Keys are ASCII by the registry's validation; anything else could never match a lookup.
    if (len > 255 || /[^\x20-\x7e]/.test(a + b)) {
      d.extLen[s] = 0;
      return;
    }
    d.extPool = grown(d.extPool, d.extUsed + len);
    const off = d.extUsed;
    for (let i = 0; i < a.length; i++) d.extPool[off + i] = a.charCodeAt(i);
    for (let i = 0; i < b.length; i++) d.extPool[off + a.length + i] = b.charCodeAt(i);
    d.extUsed += len;
    d.extOff[s] = off;
    d.extLen[s] = len;
    d.byExt.insert(hash2(a, b), s);
  }

  /** Swaps in a freshly built index (a full reload drops devices removed from the registry). */
  replaceWith(other: LivenessIndex): void {
    this.d = other.d;
  }
}

/**
 * A sequential copy of an ASCII string. V8 keeps a concatenation as a rope of its parts (here
 * the row's whole id string plus a 32-byte node); a million of them cost ~50 % more heap and an
 * indirection on every read.
 */
function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

import { alarmKey, cameraKey, LivenessIndex } from '../../src/modules/device-health/liveness-index';
import type { DeviceIndexRow } from '../../src/modules/registry/device-status.service';

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const gb = (prefix: string, n: number) => prefix + String(n).padStart(7, '0');
const camera = (n: number, over: Partial<DeviceIndexRow> = {}): DeviceIndexRow => ({
  id: uuid(n),
  kind: 'camera',
  schoolId: uuid(900_000 + (n % 7)),
  deviceId: gb('3401000000132', n),
  channelId: gb('3401000000131', n),
  code: null,
  keepaliveSeconds: null,
  offlineAfterSeconds: null,
  status: 'online',
  updatedAt: new Date(0),
  ...over,
});
const alarm = (n: number, code: string): DeviceIndexRow => ({ ...camera(n), kind: 'alarm_device', deviceId: null, channelId: null, code });

describe('LivenessIndex (compact slot index)', () => {
  it('finds every device by uuid and by external key after growing past its initial size', () => {
    const index = new LivenessIndex(); // starts at 1024 slots, grows
    for (let n = 1; n <= 5000; n++) index.put(camera(n, n % 3 === 0 ? { keepaliveSeconds: 30 } : {}));
    index.put(alarm(6000, 'BTN-01.a_b'));
    expect(index.size).toBe(5001);
    for (let n = 1; n <= 5000; n++) {
      const s = index.slotOfCamera(gb('3401000000132', n), gb('3401000000131', n));
      expect(s).toBe(index.slotOf(uuid(n)));
      expect(index.member(s)).toBe(`c:${uuid(n)}`);
      expect(index.id(s)).toBe(uuid(n));
      expect(index.kind(s)).toBe('camera');
      expect(index.schoolId(s)).toBe(uuid(900_000 + (n % 7)));
      expect(index.intervalSec(s)).toBe(n % 3 === 0 ? 30 : 0);
    }
    const a = index.slotOfAlarm('BTN-01.a_b');
    expect(index.device(a)).toEqual({ id: uuid(6000), kind: 'alarm_device', schoolId: uuid(900_000 + (6000 % 7)), intervalSec: 0, offlineAfterSec: 0 });
    expect(index.member(a)).toBe(`a:${uuid(6000)}`);
    expect(index.byExternal(alarmKey('BTN-01.a_b'))?.id).toBe(uuid(6000));
    expect(index.byExternal(cameraKey(gb('3401000000132', 42), gb('3401000000131', 42)))?.id).toBe(uuid(42));
  });

  it('does not confuse near keys: other channel, swapped halves, prefixes, unknown ids', () => {
    const index = new LivenessIndex();
    index.put(camera(1));
    index.put(alarm(2, 'X1'));
    expect(index.slotOfCamera(gb('3401000000132', 1), gb('3401000000131', 2))).toBe(-1);
    expect(index.slotOfCamera(gb('3401000000131', 1), gb('3401000000132', 1))).toBe(-1);
    expect(index.slotOfCamera(gb('3401000000132', 1) + gb('3401000000131', 1), '')).toBe(0); // same bytes, same device
    expect(index.slotOfAlarm('X')).toBe(-1);
    expect(index.slotOfAlarm('X12')).toBe(-1);
    expect(index.slotOf(uuid(3))).toBe(-1);
    expect(index.slotOf(uuid(1).slice(0, 35))).toBe(-1);
    expect(index.get(uuid(2))?.kind).toBe('alarm_device');
  });

  it('on a re-put: keeps the slot, and a changed external key, school or interval replaces the old one', () => {
    const index = new LivenessIndex();
    const s = index.put(camera(1));
    index.put(camera(2));
    expect(index.put(camera(1, { deviceId: gb('3401000000132', 77), schoolId: uuid(5), keepaliveSeconds: 10 }))).toBe(s);
    expect(index.size).toBe(2);
    expect(index.slotOfCamera(gb('3401000000132', 1), gb('3401000000131', 1))).toBe(-1); // the old key no longer resolves
    expect(index.slotOfCamera(gb('3401000000132', 77), gb('3401000000131', 1))).toBe(s);
    expect(index.device(s)).toEqual({ id: uuid(1), kind: 'camera', schoolId: uuid(5), intervalSec: 10, offlineAfterSec: 0 });
    // What its GB/T 28181 device reported of itself (HeartBeatInterval × HeartBeatCount) is kept beside it, and replaced too.
    index.put(camera(1, { deviceId: gb('3401000000132', 77), schoolId: uuid(5), offlineAfterSeconds: 600 }));
    expect(index.device(s)).toEqual({ id: uuid(1), kind: 'camera', schoolId: uuid(5), intervalSec: 0, offlineAfterSec: 600 });
    expect(index.offlineAfterSec(s)).toBe(600);
    // The key handed back to another device resolves to that one.
    index.put(camera(3, { deviceId: gb('3401000000132', 1), channelId: gb('3401000000131', 1) }));
    expect(index.id(index.slotOfCamera(gb('3401000000132', 1), gb('3401000000131', 1)))).toBe(uuid(3));
    // A camera that lost its GB ids has no external key.
    index.put(camera(2, { deviceId: null }));
    expect(index.slotOfCamera(gb('3401000000132', 2), gb('3401000000131', 2))).toBe(-1);
    expect(index.slotOf(uuid(2))).toBeGreaterThanOrEqual(0);
  });

  it('replaceWith swaps in a fresh index (devices removed from the registry drop out)', () => {
    const index = new LivenessIndex();
    index.put(camera(1));
    index.put(camera(2));
    const fresh = new LivenessIndex();
    fresh.put(camera(2));
    index.replaceWith(fresh);
    expect(index.size).toBe(1);
    expect(index.slotOf(uuid(1))).toBe(-1);
    expect(index.id(index.slotOfCamera(gb('3401000000132', 2), gb('3401000000131', 2)))).toBe(uuid(2));
  });
});

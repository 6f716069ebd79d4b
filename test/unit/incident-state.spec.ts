import { allowedFrom, transition } from '../../src/modules/alarms/incident-state';
import { devicePriority } from '../../src/modules/alarms/device-priority';
import type { IncidentType, Priority } from '../../src/modules/alarms/alarms.constants';

describe('incident state machine', () => {
  it('walks the lifecycle raised → acknowledged → dispatched → on_scene → resolved', () => {
    expect(transition('raised', 'acknowledge')).toEqual({ ok: true, to: 'acknowledged', changes: true });
    expect(transition('acknowledged', 'dispatch')).toMatchObject({ ok: true, to: 'dispatched' });
    expect(transition('dispatched', 'on_scene')).toMatchObject({ ok: true, to: 'on_scene' });
    expect(transition('on_scene', 'resolve')).toMatchObject({ ok: true, to: 'resolved' });
  });

  it('lets the school cancel only before acknowledgement', () => {
    expect(transition('raised', 'cancel')).toMatchObject({ ok: true, to: 'cancelled' });
    expect(transition('acknowledged', 'cancel')).toMatchObject({ ok: false, code: 'ALARM.INVALID_TRANSITION' });
  });

  it('answers a second acknowledgement with ALREADY_ACKNOWLEDGED', () => {
    for (const s of ['acknowledged', 'dispatched', 'on_scene', 'resolved'] as const)
      expect(transition(s, 'acknowledge')).toMatchObject({ ok: false, code: 'ALARM.ALREADY_ACKNOWLEDGED' });
    expect(transition('cancelled', 'acknowledge')).toMatchObject({ ok: false, code: 'ALARM.INVALID_TRANSITION' });
  });

  it('latches: only a person resolves, never a device or the system', () => {
    expect(transition('acknowledged', 'resolve', 'device')).toMatchObject({ ok: false, code: 'ALARM.LATCHED' });
    expect(transition('acknowledged', 'resolve', 'system')).toMatchObject({ ok: false, code: 'ALARM.LATCHED' });
    expect(transition('raised', 'resolve')).toMatchObject({ ok: false, code: 'ALARM.INVALID_TRANSITION' });
  });

  it('folds presses into open incidents only; notes change nothing', () => {
    expect(transition('dispatched', 'press', 'device')).toEqual({ ok: true, to: 'dispatched', changes: false });
    expect(transition('resolved', 'press', 'device')).toMatchObject({ ok: false });
    expect(transition('resolved', 'note')).toEqual({ ok: true, to: 'resolved', changes: false });
  });

  it('escalates only unacknowledged incidents', () => {
    expect(allowedFrom('escalate')).toEqual(['raised']);
    expect(transition('acknowledged', 'escalate', 'system')).toMatchObject({ ok: false });
  });

  it('refuses skipping steps', () => {
    expect(transition('raised', 'dispatch')).toMatchObject({ ok: false });
    expect(transition('resolved', 'dispatch')).toMatchObject({ ok: false });
    expect(allowedFrom('on_scene')).toEqual(['acknowledged', 'dispatched']);
  });
});

describe('device priority (every device intake path: HTTP reports, buttons, GB/T 28181)', () => {
  const byType = { fire: 'P1', video_alarm: 'P2', tamper: 'P3', device_fault: 'P4', other: 'P2' } as Record<IncidentType, Priority>;
  it("never lets a device lower an alarm below its type's default (A6); more urgent is kept; the note says what the device sent", () => {
    expect(devicePriority(byType, 'fire', 'P4', { floor: 'type' })).toEqual({ priority: 'P1', said: 'priority P4 低于该类型默认的 P1，按 P1 处理' });
    expect(devicePriority(byType, 'tamper', 'P1', { floor: 'type' })).toEqual({ priority: 'P1', said: null });
    expect(devicePriority(byType, 'video_alarm', undefined, { floor: 'type' })).toEqual({ priority: 'P2', said: null });
    // A button's configured press priority below its type: floored, nothing said (the device sent none).
    expect(devicePriority(byType, 'fire', undefined, { floor: 'type', fallback: 'P3' })).toEqual({ priority: 'P1', said: null });
    expect(devicePriority(byType, 'device_fault', undefined, { floor: 'type', fallback: 'P1' })).toEqual({ priority: 'P1', said: null });
  });
  it('GB/T 28181 (floor none): as reported, the type default only when none', () => {
    expect(devicePriority(byType, 'fire', 'P4', { floor: 'none' })).toEqual({ priority: 'P4', said: null });
    expect(devicePriority(byType, 'other', undefined, { floor: 'none' })).toEqual({ priority: 'P2', said: null });
  });
});

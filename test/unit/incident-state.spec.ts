import { allowedFrom, transition } from '../../src/modules/alarms/incident-state';

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

import { countedWindow, onlineWithin, subtractIntervals } from '../../src/modules/device-health/online-time';

describe('online time from transitions', () => {
  const s = new Date('2026-03-02T00:00:00Z');
  const e = new Date('2026-03-02T10:00:00Z');
  const at = (h: number) => new Date(s.getTime() + h * 3_600_000);
  it('no transitions: the current status held all along', () => {
    expect(onlineWithin('online', [], s, e)).toEqual({ onlineMs: 10 * 3_600_000, windowMs: 10 * 3_600_000, onlineThroughout: true });
    expect(onlineWithin('offline', [], s, e).onlineMs).toBe(0);
  });
  it('the first transition after the start tells the state at the start', () => {
    const r = onlineWithin(
      'online',
      [
        { from: 'online', to: 'offline', at: at(2) },
        { from: 'offline', to: 'online', at: at(3) },
      ],
      s,
      e,
    );
    expect(r.onlineMs).toBe(9 * 3_600_000);
    expect(r.onlineThroughout).toBe(false);
    // Transitions after the window only tell the state: offline until 12:00 means offline all window.
    expect(onlineWithin('online', [{ from: 'offline', to: 'online', at: at(12) }], s, e).onlineMs).toBe(0);
    // Transitions before the window are ignored.
    expect(onlineWithin('online', [{ from: 'offline', to: 'online', at: at(-1) }], s, e).onlineThroughout).toBe(true);
  });
});

describe('the counted window and maintenance holes', () => {
  const hours = { start: new Date('2026-03-01T23:30:00Z'), end: new Date('2026-03-02T09:30:00Z') };
  it('school hours up to the instant judged; zero length at that instant before school or without school', () => {
    const noon = new Date('2026-03-02T04:00:00Z');
    expect(countedWindow(hours, noon)).toEqual({ start: hours.start, end: noon });
    expect(countedWindow(hours, new Date('2026-03-02T12:00:00Z'))).toEqual(hours);
    const early = new Date('2026-03-01T23:00:00Z');
    expect(countedWindow(hours, early)).toEqual({ start: early, end: early });
    expect(countedWindow(hours, hours.start)).toEqual({ start: hours.start, end: hours.start });
    expect(countedWindow(null, noon)).toEqual({ start: noon, end: noon });
    // A timetable whose end is before its start counts nothing (never a negative window).
    expect(countedWindow({ start: hours.end, end: hours.start }, new Date('2026-03-02T12:00:00Z'))).toEqual({ start: hours.end, end: hours.end });
  });
  it('subtracts holes from intervals', () => {
    expect(
      subtractIntervals(
        [[0, 100]],
        [
          [20, 30],
          [90, 120],
          [-5, 1],
        ],
      ),
    ).toEqual([
      [1, 20],
      [30, 90],
    ]);
    expect(subtractIntervals([[0, 100]], [[0, 100]])).toEqual([]);
    expect(subtractIntervals([[0, 100]], [[100, 200]])).toEqual([[0, 100]]);
  });
});

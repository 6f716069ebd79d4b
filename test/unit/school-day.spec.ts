import { gateWindows, isSchoolDay, postWindows, schoolHours, shanghaiDate, shanghaiStamp } from '../../src/modules/school-day/calendar';
import { requiredGuards, requiredGuardsFor } from '../../src/modules/school-day/staffing';

const TT = {
  weekdays: [1, 2, 3, 4, 5],
  arrival: { start: '07:30', end: '08:10' },
  dismissal: { start: '16:30', end: '17:10' },
  schoolHours: { start: '07:30', end: '17:30' },
};

describe('guard staffing rule', () => {
  const sizes = [99, 100, 999, 1000, 1499, 1500, 1501];
  it('公治〔2015〕168号: <100 ≥1, 100–1000 ≥2, +1 per started 500 above 1000', () => {
    expect(sizes.map((n) => requiredGuards(n, 'gongzhi2015'))).toEqual([1, 2, 2, 2, 3, 3, 4]);
  });
  it('GB/T 29315-2022: at least 3 from 1000 students', () => {
    expect(sizes.map((n) => requiredGuards(n, 'gbt29315'))).toEqual([1, 2, 2, 3, 3, 3, 4]);
    // The GB threshold counts students, not staff: 950 students + 100 staff stays at the 168号 figure.
    expect(requiredGuards(1050, 'gbt29315', 950)).toBe(3);
    expect(requiredGuards(1000, 'gbt29315', 950)).toBe(2);
  });
  it('a school row: students + staff, the GB threshold on its students', () => {
    expect(requiredGuardsFor({ studentCount: 950, staffCount: 50 }, 'gbt29315')).toBe(2);
    expect(requiredGuardsFor({ studentCount: 1000, staffCount: 50 }, 'gbt29315')).toBe(3);
    expect(requiredGuardsFor({ studentCount: 1400, staffCount: 101 }, 'gongzhi2015')).toBe(4);
  });
});

describe('school days and protection-post windows (Asia/Shanghai)', () => {
  const calendar = { terms: [{ start: '2026-03-02', end: '2026-07-10' }], holidays: ['2026-04-06'] };
  it('a weekday in term is a school day; weekend, holiday and outside term are not', () => {
    expect(isSchoolDay(TT, calendar, '2026-03-02')).toBe(true); // Monday
    expect(isSchoolDay(TT, calendar, '2026-03-07')).toBe(false); // Saturday
    expect(isSchoolDay(TT, calendar, '2026-04-06')).toBe(false); // 清明 holiday (Monday)
    expect(isSchoolDay(TT, calendar, '2026-02-27')).toBe(false); // Friday before term
    expect(isSchoolDay(TT, calendar, '2026-07-13')).toBe(false); // Monday after term
    expect(isSchoolDay(TT, { terms: [], holidays: [] }, '2026-02-27')).toBe(true); // no terms declared: every weekday
  });

  it('windows come from the timetable, in UTC+8, with per-post overrides and the grace deadline', () => {
    const w = postWindows(TT, calendar, [{ kind: 'arrival' }, { kind: 'dismissal', start: '16:00', end: '16:40' }], '2026-03-02', 10);
    expect(w.map((x) => [x.kind, x.start.toISOString(), x.end.toISOString(), x.deadline.toISOString()])).toEqual([
      ['arrival', '2026-03-01T23:30:00.000Z', '2026-03-02T00:10:00.000Z', '2026-03-01T23:40:00.000Z'],
      ['dismissal', '2026-03-02T08:00:00.000Z', '2026-03-02T08:40:00.000Z', '2026-03-02T08:10:00.000Z'],
    ]);
    expect(postWindows(TT, calendar, [{ kind: 'arrival' }], '2026-04-06', 10)).toEqual([]);
    // A grace longer than the window is capped at the window's end.
    expect(postWindows(TT, calendar, [{ kind: 'arrival' }], '2026-03-02', 90)[0].deadline.toISOString()).toBe('2026-03-02T00:10:00.000Z');
  });

  it("the school's own arrival and dismissal windows, none without school", () => {
    expect(gateWindows(TT, calendar, '2026-03-02').map((w) => [w.kind, w.start.toISOString(), w.end.toISOString()])).toEqual([
      ['arrival', '2026-03-01T23:30:00.000Z', '2026-03-02T00:10:00.000Z'],
      ['dismissal', '2026-03-02T08:30:00.000Z', '2026-03-02T09:10:00.000Z'],
    ]);
    expect(gateWindows(TT, calendar, '2026-04-06')).toEqual([]);
  });

  it('school hours and the Shanghai date of an instant', () => {
    expect(schoolHours(TT, calendar, '2026-03-02')).toEqual({ start: new Date('2026-03-01T23:30:00Z'), end: new Date('2026-03-02T09:30:00Z') });
    expect(schoolHours(TT, calendar, '2026-03-07')).toBeNull();
    expect(shanghaiDate(new Date('2026-03-01T16:00:00Z'))).toBe('2026-03-02');
    expect(shanghaiDate(new Date('2026-03-01T15:59:59Z'))).toBe('2026-03-01');
  });
});

describe('shanghaiStamp', () => {
  it('writes an instant on the Asia/Shanghai clock, across the date line, and nothing for none', () => {
    expect(shanghaiStamp('2026-11-30T16:05:09.900Z')).toBe('2026-12-01 00:05:09');
    expect(shanghaiStamp(new Date('2026-06-01T00:00:00Z'))).toBe('2026-06-01 08:00:00');
    expect([shanghaiStamp(null), shanghaiStamp(undefined), shanghaiStamp('')]).toEqual(['', '', '']);
  });
});

import { onlineWithin } from '../../src/modules/patrols/online';
import { pickCameras } from '../../src/modules/patrols/rounds.service';
import { cronProblem, cronSlot, isSchoolDay, postWindows, runKey, schoolHours, shanghaiDate, slotFromJobId } from '../../src/modules/patrols/schedule';
import { requiredGuards } from '../../src/modules/patrols/staffing';

const TT = { weekdays: [1, 2, 3, 4, 5], arrival: { start: '07:30', end: '08:10' }, dismissal: { start: '16:30', end: '17:10' }, schoolHours: { start: '07:30', end: '17:30' } };

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

  it('school hours and the Shanghai date of an instant', () => {
    expect(schoolHours(TT, calendar, '2026-03-02')).toEqual({ start: new Date('2026-03-01T23:30:00Z'), end: new Date('2026-03-02T09:30:00Z') });
    expect(schoolHours(TT, calendar, '2026-03-07')).toBeNull();
    expect(shanghaiDate(new Date('2026-03-01T16:00:00Z'))).toBe('2026-03-02');
    expect(shanghaiDate(new Date('2026-03-01T15:59:59Z'))).toBe('2026-03-01');
  });
});

describe('cron slots (the run idempotency key)', () => {
  it('validates cron expressions', () => {
    expect(cronProblem('0 9 * * 1-5')).toBeNull();
    expect(cronProblem('*/15 7-18 * * *')).toBeNull();
    expect(cronProblem('61 * * * *')).toMatch(/59/);
    expect(cronProblem('every day')).not.toBeNull();
    expect(cronProblem('* *')).not.toBeNull();
  });

  it('a late or retried job lands in the slot of the occurrence at or before it, in Shanghai time', () => {
    const slot = cronSlot('0 9 * * *', new Date('2026-03-02T01:00:00Z')); // 09:00 Shanghai exactly
    expect(slot.toISOString()).toBe('2026-03-02T01:00:00.000Z');
    expect(cronSlot('0 9 * * *', new Date('2026-03-02T01:07:31Z')).toISOString()).toBe('2026-03-02T01:00:00.000Z');
    expect(cronSlot('0 9 * * *', new Date('2026-03-02T00:59:00Z')).toISOString()).toBe('2026-03-01T01:00:00.000Z');
  });

  it('the key is the plan and the minute; a job-scheduler job id carries its slot', () => {
    const a = runKey('p1', new Date('2026-03-02T01:00:00.000Z'));
    expect(runKey('p1', new Date('2026-03-02T01:00:42.123Z'))).toBe(a);
    expect(runKey('p2', new Date('2026-03-02T01:00:00.000Z'))).not.toBe(a);
    expect(runKey('p1', new Date('2026-03-02T01:01:00.000Z'))).not.toBe(a);
    expect(slotFromJobId('repeat:patrol-plan:0b1e6c1a-1111-4000-8000-000000000000:1772413200000')?.toISOString()).toBe('2026-03-02T01:00:00.000Z');
    expect(slotFromJobId('some-other-id')).toBeNull();
  });
});

describe('online time from transitions', () => {
  const s = new Date('2026-03-02T00:00:00Z');
  const e = new Date('2026-03-02T10:00:00Z');
  const at = (h: number) => new Date(s.getTime() + h * 3_600_000);
  it('no transitions: the current status held all along', () => {
    expect(onlineWithin('online', [], s, e)).toEqual({ onlineMs: 10 * 3_600_000, windowMs: 10 * 3_600_000, onlineThroughout: true });
    expect(onlineWithin('offline', [], s, e).onlineMs).toBe(0);
  });
  it('the first transition after the start tells the state at the start', () => {
    const r = onlineWithin('online', [{ from: 'online', to: 'offline', at: at(2) }, { from: 'offline', to: 'online', at: at(3) }], s, e);
    expect(r.onlineMs).toBe(9 * 3_600_000);
    expect(r.onlineThroughout).toBe(false);
    // Transitions after the window only tell the state: offline until 12:00 means offline all window.
    expect(onlineWithin('online', [{ from: 'offline', to: 'online', at: at(12) }], s, e).onlineMs).toBe(0);
    // Transitions before the window are ignored.
    expect(onlineWithin('online', [{ from: 'offline', to: 'online', at: at(-1) }], s, e).onlineThroughout).toBe(true);
  });
});

describe('round selection', () => {
  it('favoured gate cameras first, then never patrolled, then least recently patrolled', () => {
    const c = (id: string, last: string | null, favoured = false) => ({ id, schoolId: 's', areaKind: favoured ? 'main_gate' : 'perimeter', lastPatrolledAt: last ? new Date(last) : null, favoured });
    const picked = pickCameras([c('a', '2026-03-01'), c('b', null), c('c', '2026-02-20'), c('d', '2026-03-01T12:00:00Z', true), c('e', null)], 4);
    expect(picked.map((x) => x.id)).toEqual(['d', 'b', 'e', 'c']);
  });
});

import {
  alarmButtons,
  AUDIT_CHECKS,
  cameraOnlineRate,
  CheckContext,
  devicesOfflineTooLong,
  gatesClosed,
  guardPatrolCount,
  guardStaffing,
  postsStaffed,
} from '../../src/modules/patrols/audit-checks';
import type { SchoolDayFacts } from '../../src/modules/patrols/day-facts.service';
import { CHECKS } from '../../src/modules/patrols/patrols.constants';

const TT = {
  weekdays: [1, 2, 3, 4, 5],
  arrival: { start: '07:30', end: '08:10' },
  dismissal: { start: '16:30', end: '17:10' },
  schoolHours: { start: '07:30', end: '17:30' },
};
const school = { id: 's1', name: '甲小学', timetable: TT, calendar: { terms: [], holidays: [] } };
const sh = (date: string, hhmm: string) => new Date(`${date}T${hhmm}:00+08:00`);
const MONDAY = '2026-03-02';
const SATURDAY = '2026-03-07';
const cfg = { onlineRateThreshold: 0.95, alarmTestOverdueDays: 30, gateOpenToleranceMinutes: 5, guardPatrolDailyMinimum: 5 };
const ctx = (date: string, hhmm: string): CheckContext => ({ now: sh(date, hhmm), date, cfg });
const H = 3_600_000;

describe('audit checks (one pure function each)', () => {
  it('every check a plan may name has a judge, in a fixed order', () => {
    expect(AUDIT_CHECKS.map((c) => c.name).sort()).toEqual([...CHECKS].sort());
  });

  describe('camera online rate', () => {
    const online = (cameras: number, onlineMs: number, down: { id: string; onlineMs: number }[], hoursEnd = '17:30', windowEnd = '12:30') => ({
      schoolId: 's1',
      hours: { start: sh(MONDAY, '07:30'), end: sh(MONDAY, hoursEnd) },
      window: { start: sh(MONDAY, '07:30'), end: sh(MONDAY, windowEnd) },
      devices: { camera: cameras, alarm_device: 0 },
      onlineMs: { camera: onlineMs, alarm_device: 0 },
      notAlwaysOnline: down.map((d) => ({ ...d, kind: 'camera' as const, name: d.id, windowMs: 5 * H })),
      inMaintenance: { camera: 0, alarm_device: 0 },
      maintenanceMs: { camera: 0, alarm_device: 0 },
    });
    it('passes at the threshold, fails below it with the worst cameras first and one school finding', () => {
      const pass = cameraOnlineRate(school, { online: online(20, 20 * 5 * H - 5 * H, [{ id: 'c1', onlineMs: 0 }]) }, ctx(MONDAY, '12:30'));
      expect(pass).toEqual({
        result: { status: 'pass', rate: 0.95, threshold: 0.95, cameras: 20, notAlwaysOnline: 1, worst: [{ id: 'c1', name: 'c1', onlineRate: 0 }] },
        findings: [],
      });
      const fail = cameraOnlineRate(
        school,
        {
          online: online(2, 2 * 5 * H - 4 * H, [
            { id: 'c2', onlineMs: 4 * H },
            { id: 'c1', onlineMs: 2 * H },
          ]),
        },
        ctx(MONDAY, '12:30'),
      );
      expect(fail.result).toMatchObject({
        status: 'fail',
        rate: 0.6,
        worst: [
          { id: 'c1', onlineRate: 0.4 },
          { id: 'c2', onlineRate: 0.8 },
        ],
      });
      expect(fail.findings).toEqual([
        expect.objectContaining({
          check: 'camera_online_rate',
          schoolId: 's1',
          subjectKind: 'school',
          message: '甲小学 上课时段摄像机在线率 60.0%，低于 95.0%',
        }),
      ]);
    });
    it('n/a without school, before school hours, or without cameras', () => {
      expect(cameraOnlineRate(school, { online: { ...online(2, 0, []), hours: null } }, ctx(SATURDAY, '12:00')).result).toEqual({
        status: 'n/a',
        reason: 'no school today',
      });
      expect(cameraOnlineRate(school, { online: online(2, 0, []) }, ctx(MONDAY, '07:30')).result).toEqual({ status: 'n/a', reason: 'before school hours' });
      expect(cameraOnlineRate(school, { online: online(0, 0, []) }, ctx(MONDAY, '12:30')).result).toEqual({ status: 'n/a', reason: 'no cameras' });
    });
  });

  it('alarm buttons: none at all fails with a school finding; each bad button is named with its problems', () => {
    const none = alarmButtons(school, { buttons: [] }, ctx(MONDAY, '09:00'));
    expect(none.result).toEqual({ status: 'fail', buttons: 0, reason: 'no alarm button' });
    expect(none.findings).toEqual([expect.objectContaining({ check: 'alarm_button', subjectKind: 'school', message: '甲小学 未配备一键报警' })]);
    const button = (id: string, status: 'online' | 'offline', policeLinked: boolean, testedDaysAgo: number | null) => ({
      id,
      kind: 'alarm_device' as const,
      schoolId: 's1',
      name: id,
      areaKind: 'gatehouse',
      status,
      policeLinked,
      lastTestAt: testedDaysAgo === null ? null : new Date(sh(MONDAY, '09:00').getTime() - testedDaysAgo * 86_400_000),
    });
    const r = alarmButtons(
      school,
      { buttons: [button('ok', 'online', true, 29), button('bad', 'offline', false, null), button('old', 'online', true, 31)] },
      ctx(MONDAY, '09:00'),
    );
    expect(r.result).toEqual({
      status: 'fail',
      buttons: 3,
      bad: [
        { id: 'bad', name: 'bad', problems: ['no_heartbeat', 'not_police_linked', 'test_overdue'] },
        { id: 'old', name: 'old', problems: ['test_overdue'] },
      ],
    });
    expect(r.findings.map((f) => [f.subjectId, f.message])).toEqual([
      ['bad', '一键报警 bad：无心跳、未与公安联网、测试超期'],
      ['old', '一键报警 old：测试超期'],
    ]);
    expect(alarmButtons(school, { buttons: [button('ok', 'online', true, 0)] }, ctx(MONDAY, '09:00'))).toEqual({
      result: { status: 'pass', buttons: 1, bad: [] },
      findings: [],
    });
  });

  it('devices offline too long: one finding per device, hours counted down to the hour, a vanished device named by id', () => {
    const since = new Date(sh(MONDAY, '09:00').getTime() - 49.5 * H);
    const r = devicesOfflineTooLong(
      school,
      {
        overdueFaults: [
          { deviceId: 'd1', kind: 'camera', name: '南门', since },
          { deviceId: 'd2', kind: 'alarm_device', name: null, since },
        ],
      },
      ctx(MONDAY, '09:00'),
    );
    expect(r.result).toEqual({
      status: 'fail',
      devices: 2,
      list: [
        { id: 'd1', kind: 'camera', name: '南门', since },
        { id: 'd2', kind: 'alarm_device', name: '', since },
      ],
    });
    expect(r.findings.map((f) => f.message)).toEqual(['摄像机 南门 已离线 49 小时', '一键报警 d2 已离线 49 小时']);
    expect(devicesOfflineTooLong(school, { overdueFaults: [] }, ctx(MONDAY, '09:00')).result).toEqual({ status: 'pass', devices: 0, list: [] });
  });

  it('guard staffing: short of the rule fails with how many are missing', () => {
    const f = (actual: number): SchoolDayFacts => ({ guards: { required: 3, actual, rule: 'gbt29315' } });
    expect(guardStaffing(school, f(3), ctx(MONDAY, '09:00'))).toEqual({
      result: { status: 'pass', required: 3, actual: 3, short: 0, rule: 'gbt29315' },
      findings: [],
    });
    const r = guardStaffing(school, f(1), ctx(MONDAY, '09:00'));
    expect(r.result).toMatchObject({ status: 'fail', short: 2 });
    expect(r.findings[0].message).toBe('甲小学 专职保安员 1 人，应配 3 人，缺 2 人');
  });

  it('protection posts: n/a before a window is due, each unstaffed window a finding', () => {
    expect(postsStaffed(school, { posts: [] }, ctx(MONDAY, '07:00')).result).toEqual({ status: 'n/a', reason: 'no post window due yet today' });
    const w = (kind: string, present: number) => ({
      postId: 'p1',
      postCode: 'HXG1',
      schoolId: 's1',
      gate: '南门',
      kind,
      start: sh(MONDAY, '07:30'),
      end: sh(MONDAY, '08:10'),
      deadline: sh(MONDAY, '07:40'),
      required: 2,
      present,
      staffed: present >= 2,
    });
    const r = postsStaffed(school, { posts: [w('arrival', 2), w('dismissal', 1)] }, ctx(MONDAY, '18:00'));
    expect(r.result).toEqual({
      status: 'fail',
      windows: 2,
      unstaffed: [{ postId: 'p1', post: 'HXG1', gate: '南门', window: 'dismissal', start: sh(MONDAY, '07:30'), required: 2, present: 1 }],
    });
    expect(r.findings).toEqual([expect.objectContaining({ check: 'post_unstaffed', source: 'audit', subjectId: 'p1' })]);
  });

  it('closed campus: n/a without school; gate events become findings (deduplicated per event), round verdicts do not again', () => {
    expect(gatesClosed(school, { gates: [] }, ctx(SATURDAY, '10:00')).result).toEqual({ status: 'n/a', reason: 'no school today' });
    const at = sh(MONDAY, '10:00');
    const r = gatesClosed(
      school,
      {
        gates: [
          { schoolId: 's1', gate: '北门', at, source: 'gate_event', eventId: 'e1' },
          { schoolId: 's1', gate: '南门', at, source: 'round', findingId: 'f1' },
        ],
      },
      ctx(MONDAY, '12:00'),
    );
    expect(r.result).toEqual({
      status: 'fail',
      openings: [
        { gate: '北门', at, source: 'gate_event' },
        { gate: '南门', at, source: 'round' },
      ],
    });
    expect(r.findings).toEqual([
      expect.objectContaining({ check: 'gate_open', subjectLabel: '北门', dedupKey: 'gate:e1', at, message: '甲小学 北门 上课时段开启超过 5 分钟' }),
    ]);
  });

  it('guard patrols: judged once school hours are over, one finding per school and day', () => {
    expect(guardPatrolCount(school, { guardPatrols: 2 }, ctx(MONDAY, '12:00')).result).toEqual({
      status: 'n/a',
      count: 2,
      minimum: 5,
      reason: 'judged after school hours',
    });
    expect(guardPatrolCount(school, { guardPatrols: 2 }, ctx(SATURDAY, '20:00')).result).toMatchObject({ status: 'n/a', reason: 'no school today' });
    expect(guardPatrolCount(school, { guardPatrols: 5 }, ctx(MONDAY, '17:30'))).toEqual({ result: { status: 'pass', count: 5, minimum: 5 }, findings: [] });
    const r = guardPatrolCount(school, { guardPatrols: 4 }, ctx(MONDAY, '20:00'));
    expect(r.findings).toEqual([expect.objectContaining({ dedupKey: `guard_patrols:s1:${MONDAY}`, message: '甲小学 今日保安巡查 4 次，少于 5 次' })]);
  });
});

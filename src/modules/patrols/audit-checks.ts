/**
 * The patrol audit's checks, one pure function each: a school, its day's facts (DayFactsService)
 * and the instant judged in, a verdict and the findings it raises out. AuditsService.evaluate
 * loads the facts once for all schools and runs the checks a plan names, in AUDIT_CHECKS order.
 */
import type { PatrolsConfig } from '../../config/sections';
import type { RegistryService } from '../registry';
import { schoolHours } from '../school-day';
import type { DayFact, SchoolDayFacts } from './day-facts.service';
import { unstaffedFinding, windowReason } from './field.service';
import type { NewFinding } from './findings.service';
import type { CheckName } from './patrols.constants';
import type { CheckResult } from './views';

export type { CheckResult };

export interface CheckOutcome {
  result: CheckResult;
  findings: NewFinding[];
}

/** What every check may read besides the school's facts: the instant judged, its Shanghai date, the thresholds in force. */
export interface CheckContext {
  now: Date;
  date: string;
  cfg: Pick<PatrolsConfig, 'onlineRateThreshold' | 'alarmTestOverdueDays' | 'gateOpenToleranceMinutes' | 'guardPatrolDailyMinimum'>;
}

type School = Pick<Awaited<ReturnType<RegistryService['schoolsIn']>>[number], 'id' | 'name' | 'timetable' | 'calendar'>;
type Check = (s: School, f: SchoolDayFacts, ctx: CheckContext) => CheckOutcome;

const LIST_CAP = 20; // devices named in one school's result (the count is always complete)
const BUTTON_PROBLEM: Record<string, string> = { no_heartbeat: '无心跳', not_police_linked: '未与公安联网', test_overdue: '测试超期' };
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Camera online rate in school hours so far (online camera-time / camera-time, device-health's
 * count) at least patrols.onlineRateThreshold. n/a without school, before school hours, or
 * without cameras. Lists the cameras not online throughout, worst first. Time under a declared
 * maintenance window is left out; cameras offline only then are counted as 维护中 (inMaintenance).
 */
export const cameraOnlineRate: Check = (s, f, { now, cfg }) => {
  const o = f.online!;
  const cameras = o.devices.camera;
  if (!o.hours || now <= o.hours.start || cameras === 0)
    return { result: { status: 'n/a', reason: !o.hours ? 'no school today' : cameras === 0 ? 'no cameras' : 'before school hours' }, findings: [] };
  const threshold = cfg.onlineRateThreshold;
  const total = cameras * (o.window.end.getTime() - o.window.start.getTime()) - o.maintenanceMs.camera;
  const rate = total > 0 ? round4(o.onlineMs.camera / total) : 1;
  const inMaintenance = o.inMaintenance.camera;
  const worst = o.notAlwaysOnline
    .map((d) => ({ id: d.id, name: d.name, onlineRate: d.windowMs ? round4(d.onlineMs / d.windowMs) : 0 }))
    .sort((a, b) => a.onlineRate - b.onlineRate);
  const ok = rate >= threshold;
  const result: CheckResult = {
    status: ok ? 'pass' : 'fail',
    rate,
    threshold,
    cameras,
    notAlwaysOnline: worst.length,
    worst: worst.slice(0, LIST_CAP),
    ...(inMaintenance ? { inMaintenance } : {}),
  };
  if (ok) return { result, findings: [] };
  return {
    result,
    findings: [
      {
        source: 'audit',
        check: 'camera_online_rate',
        schoolId: s.id,
        subjectKind: 'school',
        subjectLabel: s.name,
        message: `${s.name} 上课时段摄像机在线率 ${pct(rate)}，低于 ${pct(threshold)}${inMaintenance ? `（维护中 ${inMaintenance} 路不计）` : ''}`,
        detail: { rate, threshold, cameras, worst: worst.slice(0, LIST_CAP) },
        at: now,
      },
    ],
  };
};

/**
 * One-click alarm buttons (一键报警): the school has at least one, and each is online, linked to
 * the police and test-pressed within patrols.alarmTestOverdueDays. One finding per bad button.
 */
export const alarmButtons: Check = (s, f, { now, cfg }) => {
  const buttons = f.buttons!;
  if (buttons.length === 0)
    return {
      result: { status: 'fail', buttons: 0, reason: 'no alarm button' },
      findings: [
        { source: 'audit', check: 'alarm_button', schoolId: s.id, subjectKind: 'school', subjectLabel: s.name, message: `${s.name} 未配备一键报警`, at: now },
      ],
    };
  const testCutoff = now.getTime() - cfg.alarmTestOverdueDays * 86_400_000;
  const bad: { id: string; name: string; problems: string[] }[] = [];
  const findings: NewFinding[] = [];
  for (const b of buttons) {
    const problems: string[] = [];
    if (b.status !== 'online') problems.push('no_heartbeat');
    if (!b.policeLinked) problems.push('not_police_linked');
    if (!b.lastTestAt || new Date(b.lastTestAt).getTime() < testCutoff) problems.push('test_overdue');
    if (problems.length === 0) continue;
    bad.push({ id: b.id, name: b.name, problems });
    findings.push({
      source: 'audit',
      check: 'alarm_button',
      schoolId: s.id,
      subjectKind: 'alarm_device',
      subjectId: b.id,
      subjectLabel: b.name,
      message: `一键报警 ${b.name}：${problems.map((p) => BUTTON_PROBLEM[p]).join('、')}`,
      detail: { problems, status: b.status, lastTestAt: b.lastTestAt },
      at: now,
    });
  }
  return { result: { status: bad.length ? 'fail' : 'pass', buttons: buttons.length, bad: bad.slice(0, LIST_CAP) }, findings };
};

/** No device offline longer than liveness.faultOverdueHours (GB/T 29315: faults repaired within 24 h). One finding per device. */
export const devicesOfflineTooLong: Check = (s, f, { now }) => {
  const list = f.overdueFaults!;
  return {
    result: {
      status: list.length ? 'fail' : 'pass',
      devices: list.length,
      list: list.slice(0, LIST_CAP).map((d) => ({ id: d.deviceId, kind: d.kind, name: d.name ?? '', since: d.since })),
    },
    findings: list.map((d) => {
      const hours = Math.floor((now.getTime() - new Date(d.since).getTime()) / 3_600_000);
      const name = d.name ?? d.deviceId;
      return {
        source: 'audit',
        check: 'device_offline_24h',
        schoolId: s.id,
        subjectKind: d.kind,
        subjectId: d.deviceId,
        subjectLabel: name,
        message: `${d.kind === 'camera' ? '摄像机' : '一键报警'} ${name} 已离线 ${hours} 小时`,
        detail: { since: d.since, hours },
        at: now,
      };
    }),
  };
};

/** Full-time guards at least what the staffing rule in force requires (公治〔2015〕168号 / GB/T 29315-2022). */
export const guardStaffing: Check = (s, f, { now }) => {
  const { required, actual, declared, rule } = f.guards!;
  const result: CheckResult = { status: actual >= required ? 'pass' : 'fail', required, actual, short: Math.max(0, required - actual), declared, rule };
  if (actual >= required) return { result, findings: [] };
  return {
    result,
    findings: [
      {
        source: 'audit',
        check: 'guard_staffing',
        schoolId: s.id,
        subjectKind: 'school',
        subjectLabel: s.name,
        message: `${s.name} 专职保安员 ${actual} 人，应配 ${required} 人，缺 ${required - actual} 人${declared ? `（另有 ${declared} 人待区教委核验）` : ''}`,
        detail: { required, actual, declared, rule },
        at: now,
      },
    ],
  };
};

/** Every protection-post (护学岗) window due so far staffed to its head count at start + grace. n/a before the first is due. */
export const postsStaffed: Check = (_s, f) => {
  const windows = f.posts!;
  if (windows.length === 0) return { result: { status: 'n/a', reason: 'no post window due yet today' }, findings: [] };
  const bad = windows.filter((w) => !w.staffed);
  return {
    result: { status: bad.length ? 'fail' : 'pass', windows: windows.length, unstaffed: bad.map(windowReason) },
    findings: bad.map((w) => unstaffedFinding(w, 'audit', null)),
  };
};

/**
 * Closed campus: no gate seen open in school hours (gate events open past
 * patrols.gateOpenToleranceMinutes, video-round verdicts). n/a without school. Gate events
 * become findings here; round verdicts already are.
 */
export const gatesClosed: Check = (s, f, { date, cfg }) => {
  if (!schoolHours(s.timetable, s.calendar, date)) return { result: { status: 'n/a', reason: 'no school today' }, findings: [] };
  const openings = f.gates!;
  return {
    result: { status: openings.length ? 'fail' : 'pass', openings: openings.map((o) => ({ gate: o.gate, at: o.at, source: o.source })) },
    findings: openings
      .filter((o) => o.source === 'gate_event')
      .map((o) => ({
        source: 'audit',
        check: 'gate_open',
        schoolId: s.id,
        subjectKind: 'gate',
        subjectLabel: o.gate,
        message: `${s.name} ${o.gate} 上课时段开启超过 ${cfg.gateOpenToleranceMinutes} 分钟`,
        detail: { at: o.at, eventId: o.eventId },
        dedupKey: `gate:${o.eventId}`,
        at: o.at,
      })),
  };
};

/** Guard patrol check-ins that day at least patrols.guardPatrolDailyMinimum (GB/T 29315-2022: 5), judged once school hours are over. */
export const guardPatrolCount: Check = (s, f, { now, date, cfg }) => {
  const hours = schoolHours(s.timetable, s.calendar, date);
  const count = f.guardPatrols!;
  const minimum = cfg.guardPatrolDailyMinimum;
  if (!hours || now < hours.end)
    return { result: { status: 'n/a', count, minimum, reason: !hours ? 'no school today' : 'judged after school hours' }, findings: [] };
  const result: CheckResult = { status: count >= minimum ? 'pass' : 'fail', count, minimum };
  if (count >= minimum) return { result, findings: [] };
  return {
    result,
    findings: [
      {
        source: 'audit',
        check: 'guard_patrol_count',
        schoolId: s.id,
        subjectKind: 'school',
        subjectLabel: s.name,
        message: `${s.name} 今日保安巡查 ${count} 次，少于 ${minimum} 次`,
        detail: { count, minimum, date },
        dedupKey: `guard_patrols:${s.id}:${date}`,
        at: now,
      },
    ],
  };
};

/** Every check with the day fact it reads; a run evaluates them in this order (its results and findings follow it). */
export const AUDIT_CHECKS: readonly { name: CheckName; fact: DayFact; judge: Check }[] = [
  { name: 'camera_online_rate', fact: 'cameraOnline', judge: cameraOnlineRate },
  { name: 'alarm_button', fact: 'buttons', judge: alarmButtons },
  { name: 'device_offline_24h', fact: 'overdueFaults', judge: devicesOfflineTooLong },
  { name: 'guard_staffing', fact: 'guards', judge: guardStaffing },
  { name: 'post_unstaffed', fact: 'posts', judge: postsStaffed },
  { name: 'gate_open', fact: 'gates', judge: gatesClosed },
  { name: 'guard_patrol_count', fact: 'guardPatrols', judge: guardPatrolCount },
];

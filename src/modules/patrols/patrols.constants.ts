import type { UserRole } from '../../infra/access/roles';

/** Checks a patrol plan may run. Stored in patrol_plans.checks: never rename one in place. */
export const CHECKS = [
  'camera_online_rate', // camera online rate per school in school hours below patrols.onlineRateThreshold
  'device_offline_24h', // devices offline longer than liveness.faultOverdueHours
  'alarm_button', // one-click alarm without heartbeat, not police-linked, or test press overdue
  'post_unstaffed', // protection post below its head count at window start + grace
  'guard_staffing', // full-time guards below the staffing rule
  'gate_open', // gate reported open in school hours
  'guard_patrol_count', // guard patrol check-ins below the daily minimum (after school hours)
] as const;
export type CheckName = (typeof CHECKS)[number];

/** A verdict on one camera in a video patrol round. */
export const VERDICTS = ['normal', 'obstructed', 'offline', 'gate_open', 'guard_absent', 'crowding', 'other'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** The finding a non-normal verdict becomes (gate_open joins the audit's check: it counts against closed campus). */
export const VERDICT_CHECK: Record<Exclude<Verdict, 'normal'>, string> = {
  obstructed: 'round_obstructed',
  offline: 'round_offline',
  gate_open: 'gate_open',
  guard_absent: 'round_guard_absent',
  crowding: 'round_crowding',
  other: 'round_other',
};

export const VERDICT_LABEL: Record<Verdict, string> = {
  normal: '正常',
  obstructed: '画面遮挡/模糊',
  offline: '离线',
  gate_open: '校门未关闭',
  guard_absent: '保安不在岗',
  crowding: '人员聚集',
  other: '其他异常',
};

export const CHECK_LABEL: Record<string, string> = {
  camera_online_rate: '摄像机在线率不足',
  device_offline_24h: '设备离线超过24小时',
  alarm_button: '一键报警异常',
  post_unstaffed: '护学岗人员不足',
  guard_staffing: '专职保安员配备不足',
  gate_open: '上课期间校门未关闭',
  guard_patrol_count: '保安巡查次数不足',
  round_obstructed: '视频巡查：画面遮挡/模糊',
  round_offline: '视频巡查：摄像机离线',
  round_guard_absent: '视频巡查：保安不在岗',
  round_crowding: '视频巡查：人员聚集',
  round_other: '视频巡查：其他异常',
};

export const GATE_AREA_KINDS = ['main_gate', 'side_gate', 'gatehouse'];

export const PLAN_ROLES: UserRole[] = ['admin', 'supervisor'];
export const READ_ROLES: UserRole[] = ['admin', 'supervisor', 'operator', 'auditor'];
export const ROUND_ROLES: UserRole[] = ['admin', 'supervisor', 'operator'];
/** Check in/out of posts, guard patrols, gate events: the school's own staff, or the center on their behalf. */
export const FIELD_ROLES: UserRole[] = ['admin', 'supervisor', 'operator', 'school_security'];
/** Who print a post's QR code (the bureau: attack F8b — never the school security who scan it). */
export const QR_ROLES: UserRole[] = ['admin', 'supervisor', 'operator'];
export const TASK_READ_ROLES: UserRole[] = ['admin', 'supervisor', 'operator', 'auditor', 'school_security'];
/** Who close a task — and so who upload its closing photos (video's POST /rectification-tasks/:id/photos). */
export const TASK_CLOSE_ROLES: UserRole[] = ['admin', 'supervisor', 'operator', 'school_security'];
/** Who follows tasks to closure and may send one back (issue 13: supervisors; auditors only read). */
export const TASK_REOPEN_ROLES: UserRole[] = ['admin', 'supervisor'];

/**
 * The purpose a rectification task's photos are stored under (video_evidence.purpose, ref_id the task; the video
 * module stores them through POST /rectification-tasks/:id/photos and keeps them while the task is kept). Stored in
 * data: never rename it.
 */
export const RECTIFICATION_PHOTO_PURPOSE = 'rectification.photo';
/** Photos one closing names (POST /rectification-tasks/:id/close `photoIds`): at least one, at most this many. */
export const CLOSE_PHOTOS_MAX = 6;

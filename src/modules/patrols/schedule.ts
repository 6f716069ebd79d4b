/**
 * Time arithmetic for patrols, all pure and in Asia/Shanghai (UTC+8, no DST): school days from
 * the timetable and term calendar, protection-post windows, school hours, cron slots.
 */
import { CronExpressionParser } from 'cron-parser';
import type { PostWindow, TermCalendar, Timetable } from '../registry/registry.service';

export const TZ = 'Asia/Shanghai';
const OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;

/** The Asia/Shanghai calendar date (YYYY-MM-DD) of an instant. */
export function shanghaiDate(at: Date | number): string {
  return new Date(new Date(at).getTime() + OFFSET_MS).toISOString().slice(0, 10);
}

/** The instant a Shanghai wall-clock time (HH:mm) happens on a date. */
export function shanghaiTime(date: string, hhmm: string): Date {
  return new Date(Date.parse(`${date}T${hhmm}:00Z`) - OFFSET_MS);
}

/** Start of the Shanghai day (00:00 local) as an instant. */
export function dayStart(date: string): Date {
  return shanghaiTime(date, '00:00');
}

export function addDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** ISO weekday of a date: 1 = Monday … 7 = Sunday. */
export function isoWeekday(date: string): number {
  return ((new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7) + 1;
}

/**
 * A school day: one of the timetable's weekdays, inside a term (when terms are declared) and
 * not a holiday.
 */
export function isSchoolDay(timetable: Timetable, calendar: TermCalendar | null | undefined, date: string): boolean {
  if (!timetable.weekdays.includes(isoWeekday(date))) return false;
  if (calendar?.holidays?.includes(date)) return false;
  const terms = calendar?.terms ?? [];
  return terms.length === 0 || terms.some((t) => t.start <= date && date <= t.end);
}

export interface Interval {
  start: Date;
  end: Date;
}

/** School hours on a date, or null on a day without school. */
export function schoolHours(timetable: Timetable, calendar: TermCalendar | null | undefined, date: string): Interval | null {
  if (!isSchoolDay(timetable, calendar, date)) return null;
  return { start: shanghaiTime(date, timetable.schoolHours.start), end: shanghaiTime(date, timetable.schoolHours.end) };
}

export interface PostWindowOnDay extends Interval {
  kind: PostWindow['kind'];
  /** When the head count is judged: window start + grace. */
  deadline: Date;
}

/**
 * The windows a protection post must be staffed on a date: each window the post names, with
 * the school's arrival/dismissal times unless the post overrides start/end. None on days
 * without school.
 */
export function postWindows(
  timetable: Timetable,
  calendar: TermCalendar | null | undefined,
  windows: PostWindow[],
  date: string,
  graceMinutes: number,
): PostWindowOnDay[] {
  if (!isSchoolDay(timetable, calendar, date)) return [];
  return windows.map((w) => {
    const base = timetable[w.kind];
    const start = shanghaiTime(date, w.start ?? base.start);
    const end = shanghaiTime(date, w.end ?? base.end);
    return { kind: w.kind, start, end, deadline: new Date(Math.min(end.getTime(), start.getTime() + graceMinutes * 60_000)) };
  });
}

/** Validates a cron expression (5 or 6 fields) in Asia/Shanghai; returns a reason or null. */
export function cronProblem(expr: string): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6) return 'must have 5 fields (minute hour day month weekday) or 6 (with seconds)';
  try {
    CronExpressionParser.parse(expr, { tz: TZ });
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * The time slot a run belongs to: the latest occurrence of the cron at or before `at`. A late
 * or retried job lands in the same slot as long as the next occurrence has not come.
 */
export function cronSlot(expr: string, at: Date): Date {
  const it = CronExpressionParser.parse(expr, { tz: TZ, currentDate: new Date(at.getTime() + 1) });
  return it.prev().toDate();
}

/** The scheduled time carried by a BullMQ job-scheduler job id (`repeat:<schedulerId>:<millis>`), or null. */
export function slotFromJobId(jobId: string): Date | null {
  const m = /^repeat:.+:(\d{10,})$/.exec(jobId);
  return m ? new Date(Number(m[1])) : null;
}

/** The idempotency key of one run: a plan in one time slot (minute resolution). */
export function runKey(planId: string, slot: Date): string {
  const minute = Math.floor(slot.getTime() / 60_000) * 60_000;
  return `${planId}@${new Date(minute).toISOString()}`;
}

/** Truncates to the minute (slots are stored at minute resolution). */
export function toMinute(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 60_000) * 60_000);
}

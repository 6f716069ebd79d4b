/**
 * The school day (校历与作息), in Asia/Shanghai: which dates are school days (timetable
 * weekdays, terms, holidays), school hours, the arrival and dismissal windows that protection
 * posts (护学岗) must staff. Pure functions over the school's stored timetable and calendar, no
 * I/O and no config: patrols, compliance and device-health share this one definition.
 *
 * Times: dates are `YYYY-MM-DD` calendar dates in Asia/Shanghai; wall-clock times are `HH:mm`
 * in Asia/Shanghai; instants are `Date`s. Asia/Shanghai is UTC+8 all year (China has had no
 * daylight saving time since 1991), so local time is a fixed offset and needs no tz database.
 */

export const TZ = 'Asia/Shanghai';
const OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;

/** A wall-clock window in Asia/Shanghai, `HH:mm`–`HH:mm` (end exclusive). */
export interface TimeWindow {
  start: string;
  end: string;
}

/** When a school is in session on a school day (stored on the school; protection-post windows derive from it). */
export interface Timetable {
  /** ISO weekdays (1 = Monday … 7 = Sunday) that are school days. */
  weekdays: number[];
  arrival: TimeWindow;
  dismissal: TimeWindow;
  /** School hours: gates closed, devices counted for the online rate. */
  schoolHours: TimeWindow;
}

/** A school's term calendar: without terms every timetable weekday is a school day (holidays still apply). */
export interface TermCalendar {
  terms: { start: string; end: string }[]; // YYYY-MM-DD inclusive
  holidays: string[]; // YYYY-MM-DD days without school inside a term
}

/** The timetable windows a protection post can be required to staff. */
export const POST_WINDOW_KINDS = ['arrival', 'dismissal'] as const;
export type PostWindowKind = (typeof POST_WINDOW_KINDS)[number];

/** One window a protection post must staff: the school's timetable window, or the post's own start/end (`HH:mm`). */
export interface PostWindow {
  kind: PostWindowKind;
  start?: string;
  end?: string;
}

/** What the calendar needs of a school (the registry's school rows have this shape). */
export interface SchoolCalendar {
  timetable: Timetable;
  calendar: TermCalendar | null | undefined;
}

/** An interval of instants, end exclusive. */
export interface Interval {
  start: Date;
  end: Date;
}

/** The Asia/Shanghai calendar date (YYYY-MM-DD) of an instant. */
export function shanghaiDate(at: Date | number): string {
  return new Date(new Date(at).getTime() + OFFSET_MS).toISOString().slice(0, 10);
}

/** 'YYYY-MM-DD HH:mm:ss' of an instant on the Asia/Shanghai clock (exports, for people and spreadsheets); '' for none. */
export function shanghaiStamp(at: Date | string | number | null | undefined): string {
  if (at === null || at === undefined || at === '') return '';
  return new Date(new Date(at).getTime() + OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** The instant a Shanghai wall-clock time (HH:mm) happens on a date. */
export function shanghaiTime(date: string, hhmm: string): Date {
  return new Date(Date.parse(`${date}T${hhmm}:00Z`) - OFFSET_MS);
}

/** Start of the Shanghai day (00:00 local) as an instant. */
export function dayStart(date: string): Date {
  return shanghaiTime(date, '00:00');
}

/** The date `n` days after `date` (negative: before). */
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

/** School hours on a date, or null on a day without school. */
export function schoolHours(timetable: Timetable, calendar: TermCalendar | null | undefined, date: string): Interval | null {
  if (!isSchoolDay(timetable, calendar, date)) return null;
  return { start: shanghaiTime(date, timetable.schoolHours.start), end: shanghaiTime(date, timetable.schoolHours.end) };
}

export interface PostWindowOnDay extends Interval {
  kind: PostWindowKind;
  /** When the head count is judged: window start + grace, capped at the window's end. */
  deadline: Date;
}

/**
 * The windows a protection post must be staffed on a date: each window the post names, with
 * the school's arrival/dismissal times unless the post overrides start/end. None on days
 * without school. `graceMinutes`: how long after the window starts the head count is judged
 * (config patrols.postGraceMinutes).
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

/** The school's own arrival and dismissal windows on a date (none on a day without school). */
export function gateWindows(timetable: Timetable, calendar: TermCalendar | null | undefined, date: string): PostWindowOnDay[] {
  return postWindows(timetable, calendar, [{ kind: 'arrival' }, { kind: 'dismissal' }], date, 0);
}

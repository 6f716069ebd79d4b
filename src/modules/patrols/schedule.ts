/**
 * When patrol plans run: cron expressions in Asia/Shanghai, and the time slot a run belongs to (its
 * idempotency key). Pure. The school day itself
 * (school days, hours, post windows) is src/modules/school-day/calendar.ts.
 */
import { CronExpressionParser } from 'cron-parser';
import { TZ } from '../school-day';

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

/** The idempotency key of one run: a plan in one time slot (minute resolution). */
export function runKey(planId: string, slot: Date): string {
  const minute = Math.floor(slot.getTime() / 60_000) * 60_000;
  return `${planId}@${new Date(minute).toISOString()}`;
}

/** Truncates to the minute (slots are stored at minute resolution). */
export function toMinute(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 60_000) * 60_000);
}

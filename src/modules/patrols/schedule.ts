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
 * The shortest gap (seconds) between consecutive runs of a cron, over its next `samples`
 * occurrences from a fixed reference (a cron's fields repeat within a year, and its within-day
 * and day-to-day gaps within a few hundred occurrences). Infinity for a cron that fires once or never.
 */
export function cronMinGapSeconds(expr: string, samples = 500): number {
  const it = CronExpressionParser.parse(expr, { tz: TZ, currentDate: new Date('2026-01-01T00:00:00Z') });
  let min = Infinity;
  try {
    let prev = it.next().getTime();
    for (let i = 1; i < samples && it.hasNext(); i++) {
      const at = it.next().getTime();
      min = Math.min(min, (at - prev) / 1000);
      prev = at;
      if (min <= 1) break; // every second: cannot get shorter
    }
  } catch {
    // no further occurrence
  }
  return min;
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

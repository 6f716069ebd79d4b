import { ValidateBy, ValidationOptions } from 'class-validator';

/**
 * The one date validator of every DTO (a lint rule refuses class-validator's IsISO8601 and
 * IsDateString, which take `2026-02-31` and year 0001). Dates are real calendar days within
 * PLAUSIBLE_YEARS; date-times carry their offset (`Z` or `+08:00`), because a bare local time
 * would be read in the server's zone.
 *
 * - `@IsStrictDate()`: `YYYY-MM-DD`, a day that exists (2026-02-29 does not, 2028-02-29 does).
 * - `@IsStrictDateTime()`: `YYYY-MM-DDTHH:mm[:ss[.fff]](Z|±HH:mm)` only — every instant a record keeps
 *   or a device is sent (a shift's start, a window's end, a slot). A bare day is refused: it would be
 *   midnight UTC, 08:00 in Asia/Shanghai, not what was meant (attack finding: a duty shift entered as
 *   startsAt "2027-01-10" began at 08:00, while a date-time without its offset was refused).
 * - `@IsStrictDateTimeOrDay()`: the same, or a bare `YYYY-MM-DD` (midnight UTC) — only for the bounds
 *   of a range filter (`from`/`to` of a list or export), where "from that day" is what a person types.
 *
 * The lenient one has the longer name on purpose: the obvious choice must be the strict one.
 */

/** Years a date in this product may fall in: nothing we record happened before 1970 or after 2999. */
export const PLAUSIBLE_YEARS = { min: 1970, max: 2999 } as const;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,9})?)?(Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)$/;

/** Why `y-m-d` is not a real, plausible calendar day; null when it is. */
function dayProblem(y: number, m: number, d: number): string | null {
  if (y < PLAUSIBLE_YEARS.min || y > PLAUSIBLE_YEARS.max) return `the year must be between ${PLAUSIBLE_YEARS.min} and ${PLAUSIBLE_YEARS.max}`;
  if (m < 1 || m > 12) return 'there is no such month';
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  if (d < 1 || d > last) return `there is no such day (${String(m).padStart(2, '0')} has ${last} days in ${y})`;
  return null;
}

/** Why a value is not a strict `YYYY-MM-DD` day; null when it is. */
export function strictDateProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be a date YYYY-MM-DD';
  const m = DATE.exec(value);
  if (!m) return 'must be a date YYYY-MM-DD';
  return dayProblem(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** Why a value is not a strict ISO 8601 date-time with its offset (a bare day is refused); null when it is. */
export function strictDateTimeProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be an ISO 8601 date-time such as 2026-03-02T08:30:00+08:00';
  if (DATE.test(value)) return 'must be an ISO 8601 date-time with its offset, such as 2026-03-02T08:30:00+08:00 or …Z (not a bare day)';
  const m = DATE_TIME.exec(value);
  if (!m) return 'must be an ISO 8601 date-time with its offset, such as 2026-03-02T08:30:00+08:00 or …Z';
  return dayProblem(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** Why a value is neither a strict date-time with its offset nor a bare real day (a range filter's bound); null when it is. */
export function strictDateTimeOrDayProblem(value: unknown): string | null {
  if (typeof value === 'string' && DATE.test(value)) return strictDateProblem(value);
  return strictDateTimeProblem(value);
}

const decorator = (name: string, problem: (v: unknown) => string | null, options?: ValidationOptions) =>
  ValidateBy(
    {
      name,
      validator: {
        validate: (v) => problem(v) === null,
        defaultMessage: (args) => `${args?.property}: ${problem(args?.value) ?? 'is not valid'}`,
      },
    },
    options,
  );

/** A real calendar day `YYYY-MM-DD` (see the module comment). `{ each: true }` for arrays. */
export const IsStrictDate = (options?: ValidationOptions) => decorator('isStrictDate', strictDateProblem, options);

/** An ISO 8601 date-time with its offset; a bare day is refused (see the module comment). */
export const IsStrictDateTime = (options?: ValidationOptions) => decorator('isStrictDateTime', strictDateTimeProblem, options);

/** A range filter's bound: an ISO 8601 date-time with its offset, or a bare day read as midnight UTC (see the module comment). */
export const IsStrictDateTimeOrDay = (options?: ValidationOptions) => decorator('isStrictDateTimeOrDay', strictDateTimeOrDayProblem, options);

/**
 * On the end of a range filter (`to`): not before the start named by `startProperty` (`from`). A
 * reversed range (from=2999-01-01&to=1970-01-01) was answered 200 with an empty list or an empty
 * export — indistinguishable from "nothing happened" (attack finding); now a field-level 400 on `to`.
 * Dates and date-times are compared as instants (a bare day is midnight UTC, as the filters read it);
 * when either side is missing or not a valid date this says nothing (its own validator does).
 */
export const IsNotBefore = (startProperty: string, options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isNotBefore',
      constraints: [startProperty],
      validator: {
        validate: (v, args) => {
          const start = (args?.object as Record<string, unknown> | undefined)?.[startProperty];
          if (typeof v !== 'string' || typeof start !== 'string') return true;
          const [a, b] = [Date.parse(start), Date.parse(v)];
          return Number.isNaN(a) || Number.isNaN(b) || b >= a;
        },
        defaultMessage: (args) => `${args?.property}: must not be before ${startProperty}`,
      },
    },
    options,
  );

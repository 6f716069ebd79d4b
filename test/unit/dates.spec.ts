import { strictDateProblem, strictDateTimeOrDayProblem, strictDateTimeProblem } from '../../src/infra/http/dates';
import { cronMinGapSeconds } from '../../src/modules/patrols/schedule';

describe('strict dates (the one validator of every DTO)', () => {
  it.each(['2026-02-28', '2028-02-29', '2026-12-31', '1970-01-01'])('takes the real day %s (also as a range bound, not as a date-time)', (d) => {
    expect(strictDateProblem(d)).toBeNull();
    expect(strictDateTimeOrDayProblem(d)).toBeNull();
    // A bare day as an instant would be midnight UTC, 08:00 in Asia/Shanghai: refused, saying why (attack finding: a shift from "2027-01-10").
    expect(strictDateTimeProblem(d)).toMatch(/not a bare day/);
  });

  it.each(['2026-02-29', '2026-02-31', '2026-04-31', '2026-13-01', '2026-00-10', '0001-01-01', '9999-12-31', '2026-2-3', '20260203', '', 'yesterday'])(
    'refuses %j',
    (d) => expect(strictDateProblem(d)).not.toBeNull(),
  );

  it.each(['2026-03-02T08:30:00+08:00', '2026-03-02T00:30:00Z', '2026-03-02T00:30Z', '2026-03-02T00:30:00.123Z', '2026-03-02T00:30:00.123456-05:00'])(
    'takes the date-time %s',
    (d) => {
      expect(strictDateTimeProblem(d)).toBeNull();
      expect(strictDateTimeOrDayProblem(d)).toBeNull();
    },
  );

  it.each([
    '2026-02-31T08:00:00Z',
    '0001-01-01T00:00:00Z',
    '2026-03-02T08:30:00', // no offset: would be read in the server's zone
    '2026-03-02T24:00:00Z',
    '2026-03-02 08:30:00Z',
    '+275760-09-13T00:00:00Z',
    1772409600000,
    null,
  ])('refuses the date-time %j', (d) => {
    expect(strictDateTimeProblem(d)).not.toBeNull();
    expect(strictDateTimeOrDayProblem(d)).not.toBeNull();
  });

  it.each(['2026-02-31', '0001-01-01', '2026-2-3'])('refuses the range bound %j', (d) => expect(strictDateTimeOrDayProblem(d)).not.toBeNull());
});

describe('cron minimum gap', () => {
  it.each([
    ['* * * * * *', 1],
    ['*/10 * * * * *', 10],
    ['* * * * *', 60],
    ['*/15 7-18 * * *', 900],
    ['0 0,23 * * *', 3600],
    ['0 9 * * 1-5', 86400],
    ['58,59 23 * * *', 60],
  ])('%s runs at most every %i s', (cron, gap) => expect(cronMinGapSeconds(cron)).toBe(gap));
});

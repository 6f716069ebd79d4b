import { pickCameras } from '../../src/modules/patrols/rounds.service';
import { slotFromJobId } from '../../src/infra/queue/queue.catalogue';
import { cronProblem, cronSlot, runKey } from '../../src/modules/patrols/schedule';

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

describe('round selection', () => {
  it('favoured gate cameras first, then never patrolled, then least recently patrolled', () => {
    const c = (id: string, last: string | null, favoured = false) => ({
      id,
      schoolId: 's',
      areaKind: favoured ? 'main_gate' : 'perimeter',
      lastPatrolledAt: last ? new Date(last) : null,
      favoured,
    });
    const picked = pickCameras([c('a', '2026-03-01'), c('b', null), c('c', '2026-02-20'), c('d', '2026-03-01T12:00:00Z', true), c('e', null)], 4);
    expect(picked.map((x) => x.id)).toEqual(['d', 'b', 'e', 'c']);
  });
});

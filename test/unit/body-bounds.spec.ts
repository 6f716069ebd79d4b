import { outOfBounds } from '../../src/infra/http/body-bounds';
import { AssignChannelsDto } from '../../src/modules/gb28181/dto';
import { CloseTaskDto, PlanScopeDto } from '../../src/modules/patrols/dto';
import { CalendarDto, CreateAlarmDeviceDto, CreateProtectionPostDto, TimetableDto } from '../../src/modules/registry/dto';

/**
 * Arrays of the request bodies outside notifications are bounded the same way (attack pass 10, left over):
 * a body past a bound is refused by its length before class-transformer builds or class-validator walks
 * any item, naming the field as the ValidationPipe would; a body within the bound is left to the pipe.
 */
describe('bounded arrays of request bodies', () => {
  const many = (n: number, item: unknown = 'x') => Array.from({ length: n }, () => item);
  const cases: [string, new () => object, string, number, unknown][] = [
    ['GB/T 28181 channel assignment', AssignChannelsDto, 'channels', 1000, { channelId: '34020000001320000001', location: '北门' }],
    ['patrol plan scope', PlanScopeDto, 'ids', 10000, '00000000-0000-4000-8000-000000000000'],
    ['closing a rectification task', CloseTaskDto, 'photoIds', 6, '00000000-0000-4000-8000-000000000000'],
    ['alarm button', CreateAlarmDeviceDto, 'linkedCameraIds', 64, '00000000-0000-4000-8000-000000000000'],
    ['school-protection post', CreateProtectionPostDto, 'windows', 8, { kind: 'arrival' }],
    ['school calendar terms', CalendarDto, 'terms', 20, { start: '2026-09-01', end: '2027-01-20' }],
    ['school calendar holidays', CalendarDto, 'holidays', 366, '2026-10-01'],
    ['school timetable', TimetableDto, 'weekdays', 7, 1],
  ];

  it.each(cases)('%s: the array is refused past its bound by length alone, and left to the pipe within it', (_what, cls, field, max, item) => {
    expect(outOfBounds(cls, { [field]: many(max + 1, item) })).toEqual([{ field, reason: `${field} must contain no more than ${max} elements` }]);
    expect(outOfBounds(cls, { [field]: many(max, item) }).filter((e) => e.field === field)).toEqual([]);
    // Past the bound no item is looked at: the work is bounded by the bound, never by the body.
    let reads = 0;
    const watched = new Proxy(many(max + 1000, item), {
      get: (a, k, r) => {
        if (typeof k === 'string' && /^\d+$/.test(k)) reads++;
        return Reflect.get(a, k, r) as unknown;
      },
    });
    expect(outOfBounds(cls, { [field]: watched })).toHaveLength(1);
    expect(reads).toBe(0);
  });
});

import { buildSchools, cameraCounts, gbId, GB_TYPE_IPC, NAMED_SCHOOLS, requiredGuards, TOTAL_CAMERAS, ZONES } from '../../src/tools/seed/district';

describe('demo district data', () => {
  it('applies the guard staffing rule at its boundaries', () => {
    expect([0, 99, 100, 1000, 1001, 1500, 1501, 2000, 4600].map(requiredGuards)).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 10]);
  });

  it('builds 20-digit GB/T 28181 ids under the district code and refuses serials that do not fit', () => {
    expect(gbId(GB_TYPE_IPC, 1001)).toBe('50011300111320001001');
    expect(() => gbId(GB_TYPE_IPC, 1_000_000)).toThrow(/serial/);
  });

  it('splits exactly the camera total by school size, at least 8 each', () => {
    const schools = buildSchools();
    const counts = cameraCounts(schools);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(TOTAL_CAMERAS);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(8);
    const biggest = schools.reduce((a, s, i) => (s.studentCount > schools[a].studentCount ? i : a), 0);
    const smallest = schools.reduce((a, s, i) => (s.studentCount < schools[a].studentCount ? i : a), 0);
    expect(counts[biggest]).toBeGreaterThan(counts[smallest]);
  });

  it('has ~200 schools with unique codes and names, the named ones included, zones that exist', () => {
    const schools = buildSchools();
    expect(schools.length).toBe(200);
    expect(new Set(schools.map((s) => s.code)).size).toBe(schools.length);
    expect(new Set(schools.map((s) => s.name)).size).toBe(schools.length);
    expect(schools.map((s) => s.name)).toEqual(expect.arrayContaining(NAMED_SCHOOLS.map((s) => s.name)));
    const zoneCodes = new Set(ZONES.map((z) => z.code));
    expect(schools.filter((s) => s.zoneCode && !zoneCodes.has(s.zoneCode))).toEqual([]);
    expect(new Set(schools.map((s) => s.zoneCode).filter(Boolean)).size).toBe(14);
  });
});

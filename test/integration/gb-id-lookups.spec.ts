import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DataSource } from 'typeorm';
import { Gb28181Store } from '../../src/modules/gb28181/gb28181.store';
import { GbProvisioningService } from '../../src/modules/registry';
import { seedMinimal, startApp, TestApp } from '../support/harness';

const SRC = join(__dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * GB/T 28181 ids are char(20) columns (cameras.device_id/channel_id, gb_channels.device_id,
 * gb_devices.device_id, gb_cascade_alarms.superior_id). Compared with a text array
 * (`device_id = ANY($1::text[])`, a join on `unnest($1::text[])`) Postgres casts the column to text
 * and cannot use its index: every look-up was a sequential scan of the cameras table — in a
 * registration storm of 100,000 devices, one per event-loop turn (issue 16 §8). The arrays must be
 * bpchar[]. And the device look-ups a storm makes come in one query per turn, not one per device
 * (a query each queued 100,000 waiters on the request pool).
 */
describe('GB/T 28181 id look-ups', () => {
  jest.setTimeout(60_000);
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('never compare a char(20) id column with a text array (the index would not be used)', async () => {
    const { rows } = await t.db.query(
      `SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'character'`,
    );
    const char = new Set(rows.map((r: { t: string; c: string }) => `${r.t}.${r.c}`));
    expect([...char]).toEqual(expect.arrayContaining(['cameras.device_id', 'cameras.channel_id', 'gb_channels.device_id', 'gb_cascade_alarms.superior_id']));
    const found: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const where = relative(SRC, file);
      // Each SQL text (a template literal) with the tables it names, by alias too.
      for (const [sql] of readFileSync(file, 'utf8').matchAll(/`[^`]*`/g)) {
        const tables = new Map<string, string>();
        for (const m of sql.matchAll(/\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?/gi)) {
          tables.set(m[1], m[1]);
          if (m[2] && !/^(WHERE|SET|ON|AS|JOIN|LEFT|WITH|SELECT|USING)$/i.test(m[2])) tables.set(m[2], m[1]);
        }
        const isChar = (col: string, alias?: string) =>
          alias ? char.has(`${tables.get(alias)}.${col}`) : [...new Set(tables.values())].some((tb) => char.has(`${tb}.${col}`));
        for (const m of sql.matchAll(/\b(?:(\w+)\.)?(\w+)\s*=\s*ANY\s*\(\s*\$\d+::text\[\]\s*\)/g)) if (isChar(m[2], m[1])) found.push(`${where}: ${m[0]}`);
        // unnest(…::text[]…) AS v(a, b) ON x.col = v.a …
        for (const m of sql.matchAll(/unnest\(([^()]*)\)\s+AS\s+\w+\([^)]*\)\s+ON\s+([\s\S]*)/g)) {
          if (!/::text\[\]/.test(m[1])) continue;
          for (const on of m[2].matchAll(/(\w+)\.(\w+)\s*=\s*\w+\.\w+/g)) if (isChar(on[2], on[1])) found.push(`${where}: unnest(${m[1]}) ON ${on[0]}`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('answers the look-ups of one event-loop turn with one query, each device its own cameras and down channels', async () => {
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const devices = Array.from({ length: 30 }, (_, i) => `3402000000132${String(i).padStart(7, '0')}`);
    // Device i has i % 3 cameras; device 0 and 3… none.
    await t.db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind)
       SELECT $1, d.id, left(d.id, 13) || '131' || lpad((d.n * 10 + k)::text, 4, '0'), '通道' || k, 'perimeter'
         FROM unnest($2::text[]) WITH ORDINALITY AS d(id, n), generate_series(1, 2) k WHERE (d.n - 1) % 3 >= k`,
      [seed.schoolA.id, devices],
    );
    await t.db.query(`INSERT INTO gb_devices (device_id, school_id) SELECT d, $1 FROM unnest($2::text[]) d`, [seed.schoolA.id, devices.slice(0, 4)]);
    await t.db.query(
      `INSERT INTO gb_channels (device_id, channel_id, status) VALUES ($1, '34020000001310000091', 'OFF'), ($1, '34020000001310000092', 'ON'), ($2, '34020000001310000093', 'VLOST')`,
      [devices[1], devices[2]],
    );
    const ds = t.app.get(DataSource);
    const provisioning = t.app.get(GbProvisioningService);
    const store = new Gb28181Store(ds);
    const spy = jest.spyOn(ds, 'query');
    try {
      const [cams, down] = await Promise.all([
        Promise.all(devices.map((d) => provisioning.gbDeviceCameras(d))),
        Promise.all(devices.map((d) => store.downChannels(d))),
      ]);
      // One for the cameras of 30 devices, one for their down channels. Only queries naming these devices count: the
      // app's own timers (outbox relay, liveness index) query meanwhile (CI once saw a third call here).
      const ours = spy.mock.calls
        .map(([, params]) => (Array.isArray(params) && Array.isArray(params[0]) ? (params[0] as unknown[]) : []))
        .filter((ids) => devices.some((d) => ids.includes(d)));
      expect(ours.map((ids) => devices.every((d) => ids.includes(d)))).toEqual([true, true]);
      const expected = await t.db.query(`SELECT device_id, count(*)::int AS n FROM cameras GROUP BY device_id`);
      const counts = new Map(expected.rows.map((r: { device_id: string; n: number }) => [r.device_id, r.n]));
      expect(cams.map((c) => c.length)).toEqual(devices.map((d) => counts.get(d) ?? 0));
      expect(cams.flat().every((c) => c.schoolId === seed.schoolA.id)).toBe(true);
      expect(new Set(cams.flat().map((c) => c.id)).size).toBe(cams.flat().length);
      expect(down[1]).toEqual(['34020000001310000091']);
      expect(down[2]).toEqual(['34020000001310000093']);
      expect(down.filter((d, i) => i !== 1 && i !== 2).every((d) => d.length === 0)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});

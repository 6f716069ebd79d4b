import ExcelJS from 'exceljs';
import * as iconv from 'iconv-lite';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

const MAX_FILE = 64 * 1024;
const MAX_ROWS = 300;

const gb = (n: number, kind = '132') => `5001130000${kind}${String(n).padStart(7, '0')}`;

function camerasCsv(rows: { school: string; n: number; name?: string; area?: string }[]): string {
  const lines = ['schoolCode,deviceId,channelId,name,areaKind,location'];
  for (const r of rows) lines.push([r.school, gb(r.n), gb(r.n, '131'), r.name ?? `摄像机${r.n}`, r.area ?? 'perimeter', `位置${r.n}`].join(','));
  return lines.join('\n') + '\n';
}

async function xlsx(header: string[], rows: (string | number)[][]): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('Sheet1');
  ws.addRow(header);
  rows.forEach((r) => ws.addRow(r));
  return Buffer.from(await wb.xlsx.writeBuffer());
}

async function parseXlsx(buf: Buffer): Promise<string[][]> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(buf as unknown as ArrayBuffer);
  const out: string[][] = [];
  wb.worksheets[0].eachRow((row) => out.push((row.values as unknown[]).slice(1).map((v) => String(v ?? ''))));
  return out;
}

/** supertest: collect a binary response body. */
const binary = ((res: NodeJS.ReadableStream, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}) as never;

describe('registry import and export', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const count = async (table: string) => Number((await t.db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
  const upload = (kind: string, token: string, body: Buffer | string, name = 'file.csv', query = '') =>
    t
      .http()
      .post(`/api/v1/import/${kind}${query}`)
      .set(auth(token))
      .attach('file', Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), name);

  beforeAll(async () => {
    t = await startApp({ import: { maxFileBytes: MAX_FILE, maxRows: MAX_ROWS } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });
  afterAll(() => t.close());

  it('imports cameras from CSV with a BOM, and a second run changes nothing', async () => {
    const csv = '\uFEFF' + camerasCsv([1, 2, 3].map((n) => ({ school: 'SA', n })));
    const first = await upload('cameras', admin, csv).expect(200);
    expect(first.body).toEqual({ rows: 3, created: 3, updated: 0, unchanged: 0, dryRun: false, encoding: 'UTF-8 (BOM)' });
    const again = await upload('cameras', admin, csv).expect(200);
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 3 });
    const { rows } = await t.db.query(`SELECT action, count(*)::int AS n FROM audit_log WHERE entity = 'camera' GROUP BY action`);
    expect(rows).toEqual([{ action: 'import_create', n: 3 }]);
  });

  it('updates by natural key and validates without writing on dryRun', async () => {
    const csv = camerasCsv([
      { school: 'SA', n: 1, name: '南大门(改)', area: 'main_gate' },
      { school: 'SA', n: 4 },
    ]);
    const dry = await upload('cameras', admin, csv, 'f.csv', '?dryRun=true').expect(200);
    expect(dry.body).toMatchObject({ created: 1, updated: 1, unchanged: 0, dryRun: true });
    expect(await count('cameras')).toBe(3);
    const res = await upload('cameras', admin, csv).expect(200);
    expect(res.body).toMatchObject({ created: 1, updated: 1, dryRun: false });
    const { rows } = await t.db.query(`SELECT name, area_kind FROM cameras WHERE device_id = $1`, [gb(1)]);
    expect(rows[0]).toEqual({ name: '南大门(改)', area_kind: 'main_gate' });
  });

  it('imports from XLSX with Chinese headers', async () => {
    const file = await xlsx(['学校代码', '设备编码', '通道编码', '名称', '区域类型'], [['SB', gb(10), gb(10, '131'), '北门', 'side_gate']]);
    const res = await upload('cameras', admin, file, 'cams.xlsx').expect(200);
    expect(res.body).toMatchObject({ created: 1 });
    const { rows } = await t.db.query(`SELECT c.name FROM cameras c JOIN schools s ON s.id = c.school_id WHERE s.code = 'SB'`);
    expect(rows).toEqual([{ name: '北门' }]);
  });

  it('reports every bad row (row, column, reason) and writes nothing', async () => {
    const before = { cameras: await count('cameras'), audit: await count('audit_log') };
    const csv = [
      'schoolCode,deviceId,channelId,name,areaKind',
      `SA,${gb(20)},${gb(20, '131')},好的,perimeter`, // row 2: fine
      `SA,123,${gb(21, '131')},坏编码,perimeter`, // row 3: device id
      `NOPE,${gb(22)},${gb(22, '131')},没有学校,perimeter`, // row 4: unknown school
      `SA,${gb(23)},${gb(23, '131')},屋顶,roof`, // row 5: area kind
      '',
      `SA,${gb(20)},${gb(20, '131')},重复,perimeter`, // row 7: duplicate of row 2
    ].join('\n');
    const res = await upload('cameras', admin, csv).expect(400);
    expect(res.body.error.code).toBe('IMPORT.INVALID_ROWS');
    const errors: { row: number; column: string; reason: string }[] = res.body.error.details.errors;
    expect(errors.map((e) => [e.row, e.column])).toEqual([
      [3, 'deviceId'],
      [4, 'schoolCode'],
      [5, 'areaKind'],
      [7, 'deviceId'],
    ]);
    expect(errors[1].reason).toContain('NOPE');
    expect(errors[3].reason).toContain('第 2 行');
    expect(await count('cameras')).toBe(before.cameras);
    expect(await count('audit_log')).toBe(before.audit);
  });

  it('rejects a header with unknown or missing columns', async () => {
    const res = await upload('cameras', admin, 'schoolCode,deviceId,colour\nSA,1,red\n').expect(400);
    expect(res.body.error.code).toBe('IMPORT.INVALID_HEADER');
    const columns = res.body.error.details.errors.map((e: { column: string }) => e.column);
    expect(columns).toEqual(expect.arrayContaining(['colour', 'channelId', 'name', 'areaKind']));
  });

  it('decodes GB18030 CSV (Excel on zh-CN Windows) correctly', async () => {
    const text = 'licenceNo,name,schoolCode,fullTime,phone\r\nGB-0001,张伟,SA,是,023-66221100\r\nGB-0002,欧阳娜娜,SA,否,\r\n';
    const res = await upload('guards', admin, iconv.encode(text, 'gb18030')).expect(200);
    expect(res.body).toMatchObject({ created: 2 });
    const { rows } = await t.db.query(`SELECT name, full_time FROM guards ORDER BY licence_no`);
    expect(rows).toEqual([
      { name: '张伟', full_time: true },
      { name: '欧阳娜娜', full_time: false },
    ]);
  });

  it('imports schools with codes for zone/group and a flat timetable, and posts with windows', async () => {
    const schools = [
      'code,name,type,zoneCode,groupCode,studentCount,boarding,weekdays,arrivalStart,arrivalEnd,dismissalStart,dismissalEnd,schoolHoursStart,schoolHoursEnd,holidays,辖区派出所,派出所电话',
      'SC,丙中学,初中,Z1,G1,1200,true,1-5,7:20,08:00,17:00,17:40,07:20,18:00,2026-10-01;2026-10-02,鱼洞派出所,023-66880110',
    ].join('\n');
    const imported = await upload('schools', admin, schools);
    expect(imported.body).toMatchObject({ created: 1 });
    const s = (
      await t.db.query(`SELECT type, zone_id, timetable, calendar, boarding, police_station_name, police_station_phone FROM schools WHERE code = 'SC'`)
    ).rows[0];
    expect(s).toMatchObject({ type: 'middle', zone_id: seed.zone.id, boarding: true, police_station_name: '鱼洞派出所', police_station_phone: '023-66880110' });
    expect(s.timetable).toEqual({
      weekdays: [1, 2, 3, 4, 5],
      arrival: { start: '07:20', end: '08:00' },
      dismissal: { start: '17:00', end: '17:40' },
      schoolHours: { start: '07:20', end: '18:00' },
    });
    expect(s.calendar.holidays).toEqual(['2026-10-01', '2026-10-02']);
    // Re-import of the same file is a no-op even though jsonb reorders keys.
    expect((await upload('schools', admin, schools).expect(200)).body).toMatchObject({ created: 0, unchanged: 1 });

    const posts = 'code,schoolCode,gate,windows,requiredHeadcount\nPP-1,SC,南门,arrival;dismissal=16:50-17:40,3\n';
    expect((await upload('protection-posts', admin, posts).expect(200)).body).toMatchObject({ created: 1 });
    const p = (await t.db.query(`SELECT windows, qr_token FROM protection_posts WHERE code = 'PP-1'`)).rows[0];
    expect(p.windows).toEqual([{ kind: 'arrival' }, { kind: 'dismissal', start: '16:50', end: '17:40' }]);
    expect(p.qr_token).toBeTruthy();
  });

  it("treats a guard's licence number without regard to case: in a file, on the CRUD routes and against what is stored (attack pass 8)", async () => {
    const dup = await upload('guards', admin, 'licenceNo,name,schoolCode\nDUP-0002,张三,SA\ndup-0002,李四,SA\n', 'f.csv', '?dryRun=true');
    expect([dup.status, dup.body.error.code, dup.body.error.details.errors]).toEqual([
      400,
      'IMPORT.INVALID_ROWS',
      [{ row: 3, column: 'licenceNo', reason: '与第 2 行重复（DUP-0002，不区分大小写）' }],
    ]);
    // Created in lower case with spaces around it: stored trimmed and upper-cased; the same licence in another case is a 409.
    const guards = () => t.http().post('/api/v1/guards').set(auth(admin));
    const created = await guards().send({ schoolId: seed.schoolA.id, name: '王五', licenceNo: ' case-0001 ' }).expect(201);
    expect(created.body.licenceNo).toBe('CASE-0001');
    const clash = await guards().send({ schoolId: seed.schoolA.id, name: '赵六', licenceNo: 'Case-0001' });
    expect([clash.status, clash.body.error.code]).toEqual([409, 'GUARD.DUPLICATE']);
    // An import naming it in lower case finds it (nothing created), and updates it by that key.
    expect((await upload('guards', admin, 'licenceNo,name,schoolCode\ncase-0001,王五,SA\n').expect(200)).body).toMatchObject({ created: 0, unchanged: 1 });
    expect((await upload('guards', admin, 'licenceNo,name,schoolCode\ncAsE-0001,王五一,SA\n').expect(200)).body).toMatchObject({ created: 0, updated: 1 });
    const patched = await t.http().patch(`/api/v1/guards/${created.body.id}`).set(auth(admin)).send({ licenceNo: 'case-0002' }).expect(200);
    expect(patched.body.licenceNo).toBe('CASE-0002');
    const { rows } = await t.db.query(`SELECT licence_no, name FROM guards WHERE upper(licence_no) LIKE 'CASE-%' OR upper(licence_no) LIKE 'DUP-%'`);
    expect(rows).toEqual([{ licence_no: 'CASE-0002', name: '王五一' }]);
  });

  it('reports a school name repeated inside the file as a row error', async () => {
    const head = 'code,name,type,weekdays,arrivalStart,arrivalEnd,dismissalStart,dismissalEnd,schoolHoursStart,schoolHoursEnd';
    const csv = [head, 'SD,同名小学,primary,1-5,07:30,08:10,16:30,17:10,07:30,17:30', 'SE,同名小学,primary,1-5,07:30,08:10,16:30,17:10,07:30,17:30'].join('\n');
    const res = await upload('schools', admin, csv).expect(400);
    expect(res.body.error.details.errors).toEqual([{ row: 3, column: 'name', reason: expect.stringContaining('第 2 行') }]);
    // A header-only file is a valid, empty import.
    expect((await upload('schools', admin, head + '\n').expect(200)).body).toMatchObject({ rows: 0, created: 0 });
  });

  it('links alarm buttons to cameras by deviceId:channelId', async () => {
    const csv = `code,schoolCode,areaKind,location,policeLinked,linkedCameras\nAB-1,SA,gatehouse,门卫室,true,${gb(1)}:${gb(1, '131')};${gb(2)}:${gb(2, '131')}\n`;
    expect((await upload('alarm-devices', admin, csv).expect(200)).body).toMatchObject({ created: 1 });
    const bad = `code,schoolCode,areaKind,linkedCameras\nAB-2,SA,gatehouse,${gb(10)}:${gb(10, '131')}\n`; // a camera of school SB
    const res = await upload('alarm-devices', admin, bad).expect(400);
    expect(res.body.error.details.errors).toEqual([expect.objectContaining({ row: 2, column: 'linkedCameras' })]);
  });

  it('exports lists that re-import unchanged (CSV and XLSX round trip)', async () => {
    for (const kind of ['schools', 'cameras', 'alarm-devices', 'guards', 'protection-posts']) {
      const csv = await t.http().get(`/api/v1/export/${kind}`).set(auth(admin)).buffer(true).parse(binary).expect(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      expect(csv.headers['content-disposition']).toMatch(/attachment; filename=".+\.csv"; filename\*=UTF-8''/);
      expect([...(csv.body as Buffer).subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const viaCsv = await upload(kind, admin, csv.body as Buffer);
      expect([kind, viaCsv.status, viaCsv.body.error]).toEqual([kind, 200, undefined]);
      expect(viaCsv.body).toMatchObject({ created: 0, updated: 0 });
      expect(viaCsv.body.unchanged).toBeGreaterThan(0);

      const x = await t.http().get(`/api/v1/export/${kind}?format=xlsx`).set(auth(admin)).buffer(true).parse(binary).expect(200);
      const viaXlsx = await upload(kind, admin, x.body as Buffer, 'export.xlsx').expect(200);
      expect(viaXlsx.body).toMatchObject({ created: 0, updated: 0, unchanged: viaCsv.body.unchanged });
    }
  });

  it('exports with the list filters and school scope', async () => {
    const res = await t.http().get(`/api/v1/export/cameras?format=xlsx&schoolId=${seed.schoolB.id}`).set(auth(admin)).buffer(true).parse(binary).expect(200);
    const rows = await parseXlsx(res.body as Buffer);
    expect(rows).toHaveLength(2);
    expect(rows[1].slice(0, 2)).toEqual(['SB', gb(10)]);
    const staff = (await t.userToken('school_security', seed.schoolA.id)).token;
    const own = await t.http().get('/api/v1/export/cameras').set(auth(staff)).buffer(true).parse(binary).expect(200);
    const lines = (own.body as Buffer).toString('utf8').trim().split('\r\n');
    expect(lines.slice(1).every((l) => l.startsWith('SA,'))).toBe(true);
    await t.http().get(`/api/v1/export/cameras?schoolId=${seed.schoolB.id}`).set(auth(staff)).expect(403);
    await t.http().get('/api/v1/export/cameras?format=pdf').set(auth(admin)).expect(400);
  });

  it('gives empty templates with the documented headers', async () => {
    const csv = await t.http().get('/api/v1/import/templates/guards').set(auth(admin)).buffer(true).parse(binary).expect(200);
    expect((csv.body as Buffer).toString('utf8')).toBe('\uFEFFlicenceNo,name,schoolCode,fullTime,phone,active\r\n');
    const x = await t.http().get('/api/v1/import/templates/schools?format=xlsx').set(auth(admin)).buffer(true).parse(binary).expect(200);
    const rows = await parseXlsx(x.body as Buffer);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual(expect.arrayContaining(['code', 'zoneCode', 'weekdays', 'arrivalStart']));
  });

  it('refuses an oversize file with 413 naming the limit, and too many rows with 400', async () => {
    const big = 'x'.repeat(MAX_FILE + 1);
    const res = await upload('cameras', admin, big).expect(413);
    expect(res.body.error.message).toContain(String(MAX_FILE));
    const many = camerasCsv(Array.from({ length: MAX_ROWS + 1 }, (_, i) => ({ school: 'SA', n: 1000 + i, name: 'c' })));
    expect(Buffer.byteLength(many)).toBeLessThan(MAX_FILE);
    const tooMany = await upload('cameras', admin, many).expect(400);
    expect(tooMany.body.error.code).toBe('IMPORT.TOO_MANY_ROWS');
  });

  it('answers 400 for unreadable or missing files, never 500', async () => {
    await upload('cameras', admin, Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]), 'x.xlsx').expect(400);
    await upload('cameras', admin, Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0, 0]), 'x.xls').expect(400);
    await upload('cameras', admin, 'a,"b\n1,2').expect(400);
    await upload('cameras', admin, '').expect(400);
    await t.http().post('/api/v1/import/cameras').set(auth(admin)).send({ rows: [] }).expect(400);
    await t.http().post('/api/v1/import/cameras').set(auth(admin)).field('other', 'x').expect(400);
    await upload('cameras', admin, camerasCsv([{ school: 'SA', n: 1 }]), 'f.csv', '?dryRun=maybe').expect(400);
  });

  it('answers 401 without auth and 403 for the wrong role or another school', async () => {
    await t.http().post('/api/v1/import/cameras').attach('file', Buffer.from('a'), 'f.csv').expect(401);
    await t.http().get('/api/v1/export/cameras').expect(401);
    await t.http().get('/api/v1/import/templates/cameras').expect(401);
    const operator = (await t.userToken('operator')).token;
    await upload('cameras', operator, camerasCsv([{ school: 'SA', n: 50 }])).expect(403);
    const staff = (await t.userToken('school_security', seed.schoolA.id)).token;
    await upload('cameras', staff, camerasCsv([{ school: 'SA', n: 50 }])).expect(403);
    const own = await upload('guards', staff, 'licenceNo,name,schoolCode\nSS-0001,王五,SA\n').expect(200);
    expect(own.body).toMatchObject({ created: 1 });
    const other = await upload('guards', staff, 'licenceNo,name,schoolCode\nSS-0002,赵六,SA\nSS-0003,钱七,SB\n').expect(403);
    expect(other.body.error).toMatchObject({ code: 'AUTH.OUT_OF_SCOPE', details: { row: 3 } });
    // An existing guard of school A cannot be taken over by a file naming school A from school B's staff.
    const staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
    // Answered as a taken number, a row error in zh-CN: not a 403 confirming that another school holds it.
    const taken = await upload('guards', staffB, 'licenceNo,name,schoolCode\nSS-0001,王五,SB\n').expect(400);
    expect(taken.body.error).toMatchObject({ code: 'IMPORT.INVALID_ROWS', details: { errors: [{ row: 2, reason: '该编号已被登记，不能导入' }] } });
    expect(JSON.stringify(taken.body)).not.toMatch(/school|甲小学/i);
    expect(other.body.error.message).toMatch(/^第 3 行：[^A-Za-z]+$/);
    expect((await t.db.query(`SELECT s.code FROM guards g JOIN schools s ON s.id = g.school_id WHERE g.licence_no = 'SS-0001'`)).rows).toEqual([
      { code: 'SA' },
    ]);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM guards WHERE licence_no IN ('SS-0002','SS-0003')`)).rows[0].n).toBe(0);
  });
});

// The registry's own routes, on a service of their own (in this file rather than one more, which
// would load the service's modules again).
describe('registry over HTTP', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;

  beforeAll(async () => {
    t = await startApp();
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });
  afterAll(() => t.close());

  it('creates a camera and lists it with filters and sorting', async () => {
    const cam = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: '50011300001320000001', channelId: '50011300001310000001', name: '南大门', areaKind: 'main_gate' })
      .expect(201);
    expect(cam.body).toMatchObject({ status: 'unknown', areaKind: 'main_gate', schoolId: seed.schoolA.id });
    const list = await t.http().get('/api/v1/cameras').query({ zoneId: seed.zone.id, areaKind: 'main_gate', sort: '-name' }).set(auth(admin)).expect(200);
    expect(list.body.total).toBe(1);
    expect(list.body.items[0].id).toBe(cam.body.id);
  });

  it('rejects a bad camera with field-level errors', async () => {
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: 'nope', deviceId: '123', channelId: '50011300001310000001', name: '', areaKind: 'roof' })
      .expect(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    const fields = res.body.error.details.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['schoolId', 'deviceId', 'name', 'areaKind']));
  });

  it('reports a missing referenced school as a field error, not a 500', async () => {
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({
        schoolId: '00000000-0000-4000-8000-000000000000',
        deviceId: '50011300001320000009',
        channelId: '50011300001310000009',
        name: 'x',
        areaKind: 'perimeter',
      })
      .expect(400);
    expect(res.body.error.details.fields).toEqual([{ field: 'schoolId', reason: 'no such school' }]);
  });

  it('answers 409 on a duplicate natural key', async () => {
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolB.id, deviceId: '50011300001320000001', channelId: '50011300001310000001', name: 'dup', areaKind: 'perimeter' })
      .expect(409);
    expect(res.body.error.code).toBe('CAMERA.DUPLICATE');
  });

  it('writes the audit log in the same transaction as the change', async () => {
    const { rows } = await t.db.query(`SELECT action, entity, actor_name FROM audit_log WHERE entity = 'camera'`);
    expect(rows).toEqual([expect.objectContaining({ action: 'create', entity: 'camera' })]);
  });

  it('scopes school security staff to their own school', async () => {
    const staff = (await t.userToken('school_security', seed.schoolA.id)).token;
    const own = await t.http().get('/api/v1/cameras').set(auth(staff)).expect(200);
    expect(own.body.items.every((c: { schoolId: string }) => c.schoolId === seed.schoolA.id)).toBe(true);
    await t.http().get('/api/v1/cameras').query({ schoolId: seed.schoolB.id }).set(auth(staff)).expect(403);
    await t.http().get(`/api/v1/schools/${seed.schoolB.id}`).set(auth(staff)).expect(404); // another school: as if missing
    await t.http().get(`/api/v1/schools/${seed.schoolA.id}`).set(auth(staff)).expect(200);
    await t.http().post('/api/v1/guards').set(auth(staff)).send({ schoolId: seed.schoolB.id, name: '李四', licenceNo: 'LIC-0001' }).expect(403);
    await t.http().post('/api/v1/guards').set(auth(staff)).send({ schoolId: seed.schoolA.id, name: '李四', licenceNo: 'LIC-0001' }).expect(201);
  });

  it('answers 401 without credentials and 403 for the wrong role', async () => {
    await t.http().get('/api/v1/schools').expect(401);
    const auditor = (await t.userToken('auditor')).token;
    await t.http().get('/api/v1/schools').set(auth(auditor)).expect(200);
    await t.http().post('/api/v1/zones').set(auth(auditor)).send({}).expect(403);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    await t.http().get('/api/v1/schools/00000000-0000-4000-8000-000000000000').set(auth(admin)).expect(404);
    const bad = await t.http().get('/api/v1/schools/not-a-uuid').set(auth(admin)).expect(400);
    expect(bad.body.error.details.fields[0].field).toBe('id');
  });

  it('refuses to delete a school that still has cameras (409)', async () => {
    const res = await t.http().delete(`/api/v1/schools/${seed.schoolA.id}`).set(auth(admin)).expect(409);
    expect(res.body.error.code).toBe('CONFLICT.REFERENCE');
  });
});

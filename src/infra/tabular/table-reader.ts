import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type ExcelJS from 'exceljs';
import type unzipper from 'unzipper';
import { loadExcel, loadUnzipper } from './xlsx-libs';
import { ErrorCode, Errors, excerpt } from '../http/errors';
import { storableText } from '../text/storable';
import { decodeText, TextEncoding } from './charset';

/**
 * Parsing an uploaded CSV/XLSX into a Table, streaming, and stopping at the first limit passed
 * rather than reading on: rows (import.maxRows), columns (import.maxColumns), unpacked size of an
 * XLSX (import.maxUnzippedBytes: a 409 KB zip can hold a 400 MB sheet), characters of all cells
 * together (import.maxTotalChars: shared strings count at every reference). Runs in a worker thread
 * (tabular.worker.ts), so nothing here ever blocks the api's event loop; pure of Nest and config.
 */
export interface ReadLimits {
  maxRows: number;
  maxColumns: number;
  maxUnzippedBytes: number;
  /** Characters per cell (header or data): a longer cell refuses the file before anything is built from it. */
  maxCellChars: number;
  /**
   * Characters of the whole file, counted per cell as it is read: a cell pointing at a shared
   * string counts its full length at every reference (a 690 KB XLSX of 300,000 references to one
   * 2,000-character string is 600 M characters once handed over, though the worker holds it once).
   */
  maxTotalChars: number;
  /** Plausibility a CSV's decoding needs (charset.ts). */
  charsetMinScore: number;
}

export type FileFormat = 'csv' | 'xlsx';

export interface Table {
  format: FileFormat;
  /** How the file was read: the CSV text encoding, or 'XLSX'. */
  encoding: TextEncoding | 'XLSX';
  header: string[];
  /** Non-blank data rows with their spreadsheet row number (header = row 1). */
  rows: { line: number; cells: string[] }[];
}

const unreadable = (why: string) => Errors.badRequest(ErrorCode.IMPORT.UNREADABLE_FILE, `无法读取文件：${why}`);
const tooManyRows = (maxRows: number) =>
  Errors.badRequest(ErrorCode.IMPORT.TOO_MANY_ROWS, `文件超过每个文件 ${maxRows} 行数据的上限，请拆分后分别导入`, { maxRows, rows: `>${maxRows}` });
const tooManyColumns = (maxColumns: number, line: number) =>
  Errors.badRequest(ErrorCode.IMPORT.TOO_LARGE_CONTENT, `第 ${line} 行超过 ${maxColumns} 列的上限`, { maxColumns, row: line });
const tooBig = (maxUnzippedBytes: number) =>
  Errors.badRequest(
    ErrorCode.IMPORT.TOO_LARGE_CONTENT,
    `XLSX 解压后超过 ${Math.round(maxUnzippedBytes / 1024 / 1024)} MB 的上限（可能是压缩炸弹），请拆分后分别导入`,
    {
      maxUnzippedBytes,
    },
  );

const cellTooLong = (maxCellChars: number, line?: number, col?: number) =>
  Errors.badRequest(
    ErrorCode.IMPORT.CELL_TOO_LONG,
    `${line ? `第 ${line} 行` : ''}${col ? `第 ${col} 列` : ''}有单元格超过 ${maxCellChars} 个字符的上限，请检查文件内容`,
    { maxCellChars, ...(line ? { row: line } : {}), ...(col ? { column: col } : {}) },
  );

const tooMuchText = (maxTotalChars: number, line: number) =>
  Errors.badRequest(
    ErrorCode.IMPORT.TOO_MUCH_TEXT,
    `文件内容超过每个文件 ${maxTotalChars} 个字符的上限（读到第 ${line} 行；引用同一共享字符串的单元格每处都计入），请拆分后分别导入`,
    { maxTotalChars, row: line },
  );

/**
 * Bytes of XML text between two tags an XLSX may hold per cell: a character is at most 4 bytes of
 * UTF-8 or an entity such as `&#x4E2D;` (8), so a run longer than this is surely a cell past
 * maxCellChars — caught while inflating, before the XML parser builds the string.
 */
export const XML_BYTES_PER_CHAR = 10;

/** A CSV cell exported as `'=…` (formula guard, see writeCsv) reads back as `=…`. */
const GUARDED = /^'[=+\-@\t\r]/;
export const unguard = (cell: string) => (GUARDED.test(cell) ? cell.slice(1) : cell);

/** Collects records into a Table, enforcing the row and column limits as they arrive. */
class Collector {
  header: string[] | null = null;
  rows: Table['rows'] = [];
  /** Characters of every kept cell so far (per reference, before trimming). */
  private chars = 0;

  constructor(private readonly limits: ReadLimits) {}

  add(line: number, raw: string[]): void {
    let last = raw.length;
    while (last > 0 && (raw[last - 1] ?? '').trim() === '') last--;
    if (last > this.limits.maxColumns) throw tooManyColumns(this.limits.maxColumns, line);
    for (let i = 0; i < last; i++) {
      const n = (raw[i] ?? '').length;
      if (n > this.limits.maxCellChars) throw cellTooLong(this.limits.maxCellChars, line, i + 1);
      this.chars += n;
    }
    if (this.chars > this.limits.maxTotalChars) throw tooMuchText(this.limits.maxTotalChars, line);
    // Cells are outside text that did not pass the HTTP edge's text guard: made storable (infra/text/storable.ts).
    const cells = raw.slice(0, last).map((c) => storableText((c ?? '').trim()));
    if (this.header === null) {
      if (cells.length === 0 || line !== 1) throw unreadable('第 1 行应为表头');
      this.header = cells.map((h) => h.replace(/^\uFEFF/, ''));
      return;
    }
    if (cells.length === 0) return;
    if (this.rows.length >= this.limits.maxRows) throw tooManyRows(this.limits.maxRows);
    this.rows.push({ line, cells });
  }

  table(format: FileFormat, encoding: Table['encoding']): Table {
    if (this.header === null) throw unreadable('第 1 行应为表头');
    return { format, encoding, header: this.header, rows: this.rows };
  }
}

export async function readTableBytes(buf: Buffer, limits: ReadLimits): Promise<Table> {
  if (buf.length === 0) throw unreadable('文件为空');
  // Sniff the content, not the name or the declared type (browsers disagree on both).
  if (buf.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return readXlsx(buf, limits);
  if (buf.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))) throw unreadable('不支持旧版 Excel 97-2003 (.xls) 文件，请另存为 .xlsx 或 CSV');
  return readCsv(buf, limits);
}

async function readCsv(buf: Buffer, limits: ReadLimits): Promise<Table> {
  const { text, encoding } = decodeText(buf, limits.charsetMinScore);
  if (text.includes('\u0000')) throw unreadable('不是 CSV 或 XLSX 文件');
  const out = new Collector(limits);
  const parser = Readable.from([text]).pipe(
    parse({
      relax_column_count: true,
      skip_empty_lines: false,
      bom: true,
      trim: false,
      info: true,
      // A record longer than every cell at its limit stops the parser before it is built.
      max_record_size: limits.maxCellChars * limits.maxColumns + limits.maxColumns,
    }),
  );
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      out.add(info.lines, record.map(unguard));
    }
  } catch (e) {
    parser.destroy();
    const code = (e as { code?: string }).code;
    if (code?.startsWith('IMPORT.')) throw e;
    if (code === 'CSV_MAX_RECORD_SIZE') throw cellTooLong(limits.maxCellChars, (e as { lines?: number }).lines);
    throw unreadable(`CSV 格式错误 (${excerpt((e as Error).message)})`);
  }
  return out.table('csv', encoding);
}

/**
 * Before exceljs reads a byte: the zip's directory must promise no more than maxUnzippedBytes,
 * every entry must inflate to no more than it promised (counted while inflating, so a lying
 * header is caught), the first sheet's declared dimension must fit the row and column limits,
 * and no run of text between two tags may be longer than a cell of maxCellChars can be (a
 * 118 KB file holding one 120-million-character cell stops here, within milliseconds).
 */
async function preflightXlsx(buf: Buffer, limits: ReadLimits): Promise<void> {
  let dir: Awaited<ReturnType<typeof unzipper.Open.buffer>>;
  try {
    dir = await (await loadUnzipper()).Open.buffer(buf);
  } catch (e) {
    throw unreadable(`XLSX 文件损坏 (${(e as Error).message})`);
  }
  if (dir.files.length > 10_000) throw unreadable('XLSX 文件中的条目过多');
  const declared = dir.files.reduce((n, f) => n + f.uncompressedSize, 0);
  if (declared > limits.maxUnzippedBytes) throw tooBig(limits.maxUnzippedBytes);
  const sheets = dir.files.filter((f) => /^xl\/worksheets\/sheet\d+\.xml$/.test(f.path)).sort((a, b) => sheetNo(a.path) - sheetNo(b.path));
  let total = 0;
  const maxRun = limits.maxCellChars * XML_BYTES_PER_CHAR;
  for (const f of dir.files) {
    let n = 0;
    let run = 0;
    const xml = f.path.endsWith('.xml') || f.path.endsWith('.rels');
    let head = '';
    const first = f === sheets[0];
    await new Promise<void>((resolve, reject) => {
      const s = f.stream();
      const stop = (e: unknown) => {
        s.destroy();
        reject(e);
      };
      s.on('data', (chunk: Buffer) => {
        n += chunk.length;
        total += chunk.length;
        if (n > f.uncompressedSize || total > limits.maxUnzippedBytes) return stop(tooBig(limits.maxUnzippedBytes));
        if (xml && (run = textRun(chunk, run, maxRun)) < 0) return stop(cellTooLong(limits.maxCellChars));
        if (first && head.length < 4096) {
          head += chunk.toString('utf8', 0, Math.min(chunk.length, 4096));
          const problem = dimensionProblem(head, limits);
          if (problem) stop(problem);
        }
      });
      s.on('end', resolve);
      s.on('error', (e) => reject(unreadable(`XLSX 文件损坏 (${e.message})`)));
    });
  }
}

/**
 * Tracks the run of text since the last `<` across inflated chunks: returns the run at the end of
 * `chunk` (continuing `run` from the chunk before), or -1 as soon as any run passes `max`.
 */
export function textRun(chunk: Buffer, run: number, max: number): number {
  let from = 0;
  for (let i = chunk.indexOf(0x3c); i >= 0; i = chunk.indexOf(0x3c, i + 1)) {
    if (run + i - from > max) return -1;
    run = 0;
    from = i + 1;
  }
  run += chunk.length - from;
  return run > max ? -1 : run;
}

const sheetNo = (path: string) => Number(/sheet(\d+)\.xml$/.exec(path)?.[1] ?? 0);

/** The sheet's `<dimension ref="A1:C1000001"/>` beyond the limits: refused before its rows are read. */
function dimensionProblem(head: string, limits: ReadLimits) {
  const ref = /<(?:\w+:)?dimension\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"/.exec(head);
  if (!ref || !ref[3]) return null;
  const rows = Number(ref[4]) - Number(ref[2]) + 1;
  const cols = column(ref[3]) - column(ref[1]) + 1;
  if (cols > limits.maxColumns) return tooManyColumns(limits.maxColumns, 1);
  if (rows > limits.maxRows + 1) return tooManyRows(limits.maxRows);
  return null;
}

const column = (letters: string) => [...letters].reduce((n, c) => n * 26 + c.charCodeAt(0) - 64, 0);

async function readXlsx(buf: Buffer, limits: ReadLimits): Promise<Table> {
  await preflightXlsx(buf, limits);
  const out = new Collector(limits);
  const reader = new (await loadExcel()).stream.xlsx.WorkbookReader(Readable.from([buf]), {
    worksheets: 'emit',
    sharedStrings: 'cache',
    styles: 'cache', // dates and times are numbers with a date format
    hyperlinks: 'ignore',
    entries: 'ignore',
  });
  let sheets = 0;
  try {
    for await (const sheet of reader) {
      sheets++;
      for await (const row of sheet) {
        const values = (row as ExcelJS.Row).values as ExcelJS.CellValue[];
        if (values.length - 1 > limits.maxColumns * 4) throw tooManyColumns(limits.maxColumns, (row as ExcelJS.Row).number);
        out.add((row as ExcelJS.Row).number, values.slice(1).map(cellText));
      }
      break; // the first sheet only; nothing after it is read
    }
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('IMPORT.')) throw e;
    throw unreadable(`XLSX 文件损坏 (${excerpt((e as Error).message)})`);
  }
  if (sheets === 0) throw unreadable('XLSX 文件中没有工作表');
  return out.table('xlsx', 'XLSX');
}

const pad = (n: number) => String(n).padStart(2, '0');

/** A spreadsheet cell as the text a user typed. */
export function cellText(v: ExcelJS.CellValue | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) {
    // Excel stores a typed time (07:30) as a date on 1899-12-30; a typed date as midnight UTC.
    if (v.getUTCFullYear() <= 1900) return `${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}`;
    return `${v.getUTCFullYear()}-${pad(v.getUTCMonth() + 1)}-${pad(v.getUTCDate())}`;
  }
  if (typeof v === 'object') {
    if ('richText' in v) return v.richText.map((t) => t.text).join('');
    if ('result' in v) return cellText((v as { result?: ExcelJS.CellValue }).result ?? null);
    if ('text' in v) return String((v as { text: unknown }).text);
    if ('error' in v) return '';
  }
  return String(v);
}

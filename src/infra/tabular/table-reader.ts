import { Readable, Transform } from 'node:stream';
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

/**
 * An XLSX cell that is not plain text (CSV cells never are): a formula with no cached result, an
 * error value (#N/A), a number past Excel's 15 significant digits, something unrecognisable — each a
 * problem (`cellProblem`) — or a date or time Excel typed, which each column takes or refuses
 * (columns.ts `dates`). Its text is '' for the problems, the rendering for dates
 * (`YYYY-MM-DD`, `HH:mm`, `YYYY-MM-DD HH:mm`) and the digits for an imprecise number.
 */
export type CellMarkKind = 'formula' | 'error' | 'imprecise' | 'unknown' | 'date' | 'time' | 'datetime';
export interface CellMark {
  kind: CellMarkKind;
  /** The error value (#N/A…) of an `error` cell. */
  note?: string;
}
export type DateKind = Extract<CellMarkKind, 'date' | 'time' | 'datetime'>;

/** One data row: its spreadsheet row number (header = row 1), cells (trimmed, storable) and the marks of its non-text cells by column index. */
export interface Row {
  line: number;
  cells: string[];
  marks?: Record<number, CellMark>;
}

export interface Table {
  format: FileFormat;
  /** How the file was read: the CSV text encoding, or 'XLSX'. */
  encoding: TextEncoding | 'XLSX';
  header: string[];
  /** Non-blank data rows. */
  rows: Row[];
}

/** Why a marked cell cannot be imported as it is, whatever its column (null for dates and times: the column decides). */
export function cellProblem(mark: CellMark, text: string): string | null {
  switch (mark.kind) {
    case 'formula':
      return '公式没有计算结果，请在 Excel 中重新计算后保存';
    case 'error':
      return `单元格是错误值 ${mark.note ?? ''}，请改正后保存`;
    case 'imprecise':
      return `数字超过 15 位有效数字，Excel 已丢失精度（${excerpt(text, 40)}）；请把该列设为“文本”格式后重新输入`;
    case 'unknown':
      return '无法识别的单元格内容';
    default:
      return null;
  }
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

const headerProblem = (errors: { row: number; column: string; reason: string }[]) =>
  Errors.badRequest(ErrorCode.IMPORT.INVALID_HEADER, '表头有误，未导入任何数据', { errors, errorCount: errors.length });

/** Collects records into a Table, enforcing the row and column limits as they arrive. */
class Collector {
  header: string[] | null = null;
  rows: Row[] = [];
  /** Characters of every kept cell so far (per reference, before trimming). */
  private chars = 0;

  constructor(private readonly limits: ReadLimits) {}

  /** One record; `marks` (XLSX) by column index. A marked cell counts as filled, whatever its text. */
  add(line: number, raw: string[], marks?: Map<number, CellMark>): void {
    let last = raw.length;
    while (last > 0 && (raw[last - 1] ?? '').trim() === '' && !marks?.has(last - 1)) last--;
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
      const problems = [...(marks ?? [])]
        .map(([i, m]) => ({ row: 1, column: `#${i + 1}`, reason: cellProblem(m, cells[i] ?? '') }))
        .filter((p): p is { row: number; column: string; reason: string } => p.reason !== null);
      if (problems.length) throw headerProblem(problems);
      this.header = cells.map((h) => h.replace(/^\uFEFF/, ''));
      return;
    }
    if (cells.length === 0) return;
    if (this.rows.length >= this.limits.maxRows) throw tooManyRows(this.limits.maxRows);
    this.rows.push(marks?.size ? { line, cells, marks: Object.fromEntries(marks) } : { line, cells });
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

/**
 * exceljs's streaming WorkbookReader, with what it gets wrong in our files put right before it sees
 * the XML (exceljs 4.4):
 * - it decodes every inflated chunk of a sheet or of the shared strings on its own, so a character
 *   whose UTF-8 bytes straddle two chunks became two U+FFFD (8 of 20,000 Chinese names in an
 *   exceljs-written roster): the XML is decoded here, across chunks, refusing bytes that are not
 *   UTF-8;
 * - cells are rewritten by `rewriteCells` (formulas, inline rich text, ISO dates, empty values).
 */
type SaxChunks = AsyncIterable<Buffer | string>;
interface ExcelReaderInternals {
  _parseSharedStrings(entry: NodeJS.ReadableStream): AsyncGenerator<unknown>;
  _parseWorksheet(iterator: SaxChunks, sheetNo: string): Generator<unknown>;
  properties?: { model?: { date1904?: boolean } };
}

function utf8Chunks(): (chunk: Buffer | string, last?: boolean) => string {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return (chunk, last = false) => {
    try {
      return typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: !last });
    } catch {
      throw unreadable('XLSX 中的文本不是有效的 UTF-8');
    }
  };
}

async function* sheetXml(chunks: SaxChunks): AsyncGenerator<string> {
  const decode = utf8Chunks();
  const cells = new CellRewriter();
  for await (const chunk of chunks) {
    const out = cells.push(decode(chunk));
    if (out) yield out;
  }
  const out = cells.push(decode(Buffer.alloc(0), true)) + cells.end();
  if (out) yield out;
}

async function excelReader(buf: Buffer): Promise<AsyncIterable<ExcelJS.stream.xlsx.WorksheetReader> & ExcelReaderInternals> {
  const Base = (await loadExcel()).stream.xlsx.WorkbookReader as unknown as new (input: Readable, options: object) => ExcelReaderInternals;
  class Reader extends Base {
    _parseSharedStrings(entry: NodeJS.ReadableStream) {
      const decode = utf8Chunks();
      const strings = new Transform({
        readableObjectMode: true,
        transform(chunk: Buffer, _enc, done) {
          try {
            done(null, decode(chunk));
          } catch (e) {
            done(e as Error);
          }
        },
        flush(done) {
          try {
            const tail = decode(Buffer.alloc(0), true);
            done(null, tail || undefined);
          } catch (e) {
            done(e as Error);
          }
        },
      });
      entry.on('error', (e) => strings.destroy(e));
      return super._parseSharedStrings(entry.pipe(strings));
    }
    _parseWorksheet(iterator: SaxChunks, sheetNo: string) {
      return super._parseWorksheet(sheetXml(iterator), sheetNo);
    }
  }
  return new Reader(Readable.from([buf]), {
    worksheets: 'emit',
    sharedStrings: 'cache',
    styles: 'cache', // dates and times are numbers with a date format
    hyperlinks: 'ignore', // a hyperlink cell reads as its text
    entries: 'ignore',
  }) as unknown as AsyncIterable<ExcelJS.stream.xlsx.WorksheetReader> & ExcelReaderInternals;
}

/** A cell whose value follows: `<v>` not empty. */
const HAS_VALUE = /<v(?:\s[^>]*)?>\s*[^<\s]/;
const FORMULA = /<f(?:\s[^>]*)?(?:\/>|>[\s\S]*?<\/f>)/;
const EMPTY_VALUE = /<v(?:\s[^>]*)?(?:\/>|>\s*<\/v>)/;
const INLINE = /<is(?:\s[^>]*)?>([\s\S]*?)<\/is>/;
const PHONETIC = /<rPh(?:\s[^>]*)?>[\s\S]*?<\/rPh>/g;
const RUN_TEXT = /<t(?:\s[^>]*)?(?:\/>|>([\s\S]*?)<\/t>)/g;
const ISO_DATE = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?)?Z?$/;
/** Anything in a run of sheet XML worth rewriting; nearly every chunk of a typical sheet has none. */
const WORTH_A_LOOK = /<f[\s>/]|<is[\s>]|\st="d"|<v\s*\/>|<v>\s*<\/v>/;
const CELL = /<c((?:\s[^>]*)?)(?<!\/)>([\s\S]*?)<\/c>/g;

/**
 * One `<c>` element's XML as exceljs should see it:
 * - a formula with a cached value → that value alone (the number, text, boolean, date or error
 *   value Excel shows): exceljs would give `{ formula, result }` with a date formula's result as a
 *   bare number, a boolean's as 1/0 and an error's (#DIV/0!) as nothing at all;
 * - an empty `<v></v>` → no value (exceljs read it as NaN): a formula without a value is then a
 *   formula without a cached result, which `readCell` reports;
 * - inline rich text (`<is><r><t>张</t></r><r><t>三丰</t></r></is>`, as openpyxl writes it) → one
 *   `<t>` with every run's text (exceljs kept only the last run: "三丰"); phonetic guides dropped;
 * - an ISO 8601 date cell (`t="d"`, which exceljs reads with parseFloat: "2026-09-01" → 2026) → an
 *   error cell `#DATE:…` that `readCell` turns back into the date (real error values never start so).
 */
export function rewriteCell(attrs: string, body: string): string {
  if (EMPTY_VALUE.test(body)) body = body.replace(EMPTY_VALUE, '');
  if (HAS_VALUE.test(body)) body = body.replace(FORMULA, '');
  const inline = INLINE.exec(body);
  if (inline) {
    let text = '';
    for (const m of inline[1].replace(PHONETIC, '').matchAll(RUN_TEXT)) text += m[1] ?? '';
    body = body.replace(INLINE, `<is><t xml:space="preserve">${text}</t></is>`);
  }
  if (/\st="d"/.test(attrs)) {
    const v = /<v(?:\s[^>]*)?>([^<]*)<\/v>/.exec(body);
    attrs = attrs.replace(/\st="d"/, ' t="e"');
    body = v ? `<v>#DATE:${v[1].trim()}</v>` : body;
  }
  return `<c${attrs}>${body}</c>`;
}

/** Rewrites cells (`rewriteCell`) in sheet XML arriving in chunks, holding back an unfinished tag or cell until its end arrives. */
export class CellRewriter {
  private carry = '';

  push(chunk: string): string {
    const all = this.carry + chunk;
    let cut = all.length;
    const lt = all.lastIndexOf('<');
    if (lt > all.lastIndexOf('>')) cut = lt; // an unfinished tag
    const open = lastCellStart(all, cut);
    if (open >= 0 && all.indexOf('</c>', open) < 0) cut = open; // an unfinished cell
    this.carry = all.slice(cut);
    return rewriteCells(all.slice(0, cut));
  }

  end(): string {
    const rest = rewriteCells(this.carry);
    this.carry = '';
    return rest;
  }
}

/** Start of the last `<c …>` that is not self-closing (`<c r="A1"/>`) before `end`, or -1. */
function lastCellStart(xml: string, end: number): number {
  for (let i = xml.lastIndexOf('<c', end - 1); i >= 0; i = i === 0 ? -1 : xml.lastIndexOf('<c', i - 1)) {
    const next = xml[i + 2];
    if (next !== '>' && next !== ' ' && next !== '\t' && next !== '\n' && next !== '\r') continue; // <col>, <cols>…
    const close = xml.indexOf('>', i);
    if (close < 0 || close >= end) return i;
    return xml[close - 1] === '/' ? -1 : i;
  }
  return -1;
}

function rewriteCells(xml: string): string {
  if (!WORTH_A_LOOK.test(xml)) return xml;
  return xml.replace(CELL, (all, attrs: string, body: string) => (WORTH_A_LOOK.test(all) ? rewriteCell(attrs, body) : all));
}

async function readXlsx(buf: Buffer, limits: ReadLimits): Promise<Table> {
  await preflightXlsx(buf, limits);
  const out = new Collector(limits);
  const reader = await excelReader(buf);
  let sheets = 0;
  try {
    for await (const sheet of reader) {
      sheets++;
      const date1904 = reader.properties?.model?.date1904 === true;
      for await (const row of sheet) {
        const values = (row as ExcelJS.Row).values as ExcelJS.CellValue[];
        const line = (row as ExcelJS.Row).number;
        if (values.length - 1 > limits.maxColumns * 4) throw tooManyColumns(limits.maxColumns, line);
        const texts: string[] = [];
        let marks: Map<number, CellMark> | undefined;
        for (let i = 1; i < values.length; i++) {
          const cell = readCell(values[i], date1904);
          texts.push(cell.text);
          if (cell.mark) (marks ??= new Map()).set(i - 1, cell.mark);
        }
        out.add(line, texts, marks);
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
const DAY_MS = 86_400_000;
/** Excel's day 0 (1899-12-30; 1904-01-01 in the 1904 date system): a date on it is a time of day alone. */
const EPOCH_1900 = Date.UTC(1899, 11, 30);
const EPOCH_1904 = Date.UTC(1904, 0, 1);
/** Excel keeps 15 significant digits: an integer from here on may not be what was typed (a 20-digit device id). */
const PRECISE_BELOW = 1e15;

/** A date/time cell: its kind (time of day, date, both) and the text of it. */
function readDate(d: Date, date1904: boolean): { text: string; mark?: CellMark } {
  const ms = d.getTime();
  if (Number.isNaN(ms)) return { text: '', mark: { kind: 'unknown' } };
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${d.getUTCSeconds() ? `:${pad(d.getUTCSeconds())}` : ''}`;
  const since = ms - (date1904 ? EPOCH_1904 : EPOCH_1900);
  if (since >= 0 && since < DAY_MS) return { text: time, mark: { kind: 'time' } };
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  if (ms % DAY_MS === 0) return { text: date, mark: { kind: 'date' } };
  return { text: `${date} ${time}`, mark: { kind: 'datetime' } };
}

/**
 * A spreadsheet cell as the text a user typed, and a mark when it is not plain text (`CellMark`):
 * every kind of value exceljs's reader gives is handled here, none by String(object).
 */
export function readCell(v: ExcelJS.CellValue | undefined, date1904 = false): { text: string; mark?: CellMark } {
  if (v === null || v === undefined) return { text: '' };
  if (typeof v === 'string') return { text: v };
  if (typeof v === 'boolean') return { text: String(v) };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return { text: '', mark: { kind: 'unknown' } };
    return Math.abs(v) >= PRECISE_BELOW ? { text: BigInt(Math.round(v)).toString(), mark: { kind: 'imprecise' } } : { text: String(v) };
  }
  if (v instanceof Date) return readDate(v, date1904);
  if (typeof v === 'object') {
    // Rich text (shared strings): the runs' text.
    if ('richText' in v && Array.isArray(v.richText)) return { text: v.richText.map((r) => (typeof r?.text === 'string' ? r.text : '')).join('') };
    if ('error' in v) {
      const error = String((v as { error: unknown }).error);
      const iso = ISO_DATE.exec(error.startsWith('#DATE:') ? error.slice(6) : '');
      if (iso) return readDate(new Date(Date.UTC(+iso[1], +iso[2] - 1, +iso[3], +(iso[4] ?? 0), +(iso[5] ?? 0), +(iso[6] ?? 0))), false);
      return { text: '', mark: { kind: 'error', note: excerpt(error, 40) } };
    }
    // A formula: rewriteCell left only those without a cached value (written by a script, or saved without recalculating).
    if ('formula' in v || 'sharedFormula' in v) {
      const result = (v as { result?: ExcelJS.CellValue }).result;
      return result === undefined || result === null ? { text: '', mark: { kind: 'formula' } } : readCell(result, date1904);
    }
    // A hyperlink: its text (which may itself be rich text).
    if ('text' in v) return readCell((v as { text: ExcelJS.CellValue }).text, date1904);
  }
  return { text: '', mark: { kind: 'unknown' } };
}

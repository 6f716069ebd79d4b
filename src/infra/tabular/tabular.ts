import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import ExcelJS from 'exceljs';
import * as iconv from 'iconv-lite';
import { ErrorCode, Errors } from '../http/errors';

/**
 * Reading and writing the spreadsheet files of bulk import/export. A file becomes a header
 * plus rows of strings; row numbers are those a spreadsheet user sees (header = row 1).
 */
export interface Table {
  format: 'csv' | 'xlsx';
  header: string[];
  /** Non-blank data rows with their spreadsheet row number. */
  rows: { line: number; cells: string[] }[];
}

export type FileFormat = 'csv' | 'xlsx';

const unreadable = (why: string) => Errors.badRequest(ErrorCode.IMPORT.UNREADABLE_FILE, `无法读取文件：${why}`);

/** CSV text from bytes: UTF-8 (with or without BOM) or, when not valid UTF-8, GB18030 (Excel on zh-CN Windows). */
export function decodeCsv(buf: Buffer): string {
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.subarray(3).toString('utf8');
  if ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)) return iconv.decode(buf, buf[0] === 0xff ? 'utf16le' : 'utf16be');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return iconv.decode(buf, 'gb18030');
  }
}

export async function readTable(buf: Buffer): Promise<Table> {
  if (buf.length === 0) throw unreadable('文件为空');
  // Sniff the content, not the name or the declared type (browsers disagree on both).
  if (buf.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return readXlsx(buf);
  if (buf.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))) throw unreadable('不支持旧版 Excel 97-2003 (.xls) 文件，请另存为 .xlsx 或 CSV');
  return readCsv(buf);
}

function readCsv(buf: Buffer): Table {
  const text = decodeCsv(buf);
  if (text.includes('\u0000')) throw unreadable('不是 CSV 或 XLSX 文件');
  let records: string[][];
  try {
    records = parse(text, { relax_column_count: true, skip_empty_lines: false, bom: true, trim: false });
  } catch (e) {
    throw unreadable(`CSV 格式错误 (${(e as Error).message})`);
  }
  return toTable('csv', records);
}

async function readXlsx(buf: Buffer): Promise<Table> {
  const wb = new ExcelJS.Workbook();
  try {
    await wb.xlsx.load(buf as unknown as ArrayBuffer);
  } catch (e) {
    throw unreadable(`XLSX 文件损坏 (${(e as Error).message})`);
  }
  const sheet = wb.worksheets[0];
  if (!sheet) throw unreadable('XLSX 文件中没有工作表');
  const records: string[][] = [];
  for (let r = 1; r <= sheet.rowCount; r++) {
    const row = sheet.getRow(r);
    const cells: string[] = [];
    for (let c = 1; c <= row.cellCount; c++) cells.push(cellText(row.getCell(c).value));
    records.push(cells);
  }
  return toTable('xlsx', records);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** A spreadsheet cell as the text a user typed. */
function cellText(v: ExcelJS.CellValue): string {
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

function toTable(format: FileFormat, records: string[][]): Table {
  const [first, ...rest] = records;
  if (!first || first.every((c) => c.trim() === '')) throw unreadable('第 1 行应为表头');
  const header = first.map((h) => h.replace(/^\uFEFF/, '').trim());
  const rows = rest.map((cells, i) => ({ line: i + 2, cells: cells.map((c) => c.trim()) })).filter((r) => r.cells.some((c) => c !== ''));
  return { format, header, rows };
}

export type CellOut = string | number | boolean | null;

/** CSV with a UTF-8 BOM so Excel on zh-CN Windows opens Chinese text correctly. */
export function writeCsv(header: string[], rows: CellOut[][]): Buffer {
  const body = stringify([header, ...rows.map((r) => r.map((c) => (c === null ? '' : String(c))))], { record_delimiter: '\r\n' });
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body, 'utf8')]);
}

/** XLSX with every column stored as text, so 20-digit device ids and codes survive Excel. */
export async function writeXlsx(sheetName: string, header: string[], rows: CellOut[][], notes?: string[][]): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet(sheetName);
  ws.columns = header.map((h) => ({ header: h, width: Math.max(12, h.length + 4), style: { numFmt: '@' } }));
  ws.getRow(1).font = { bold: true };
  for (const r of rows) ws.addRow(r.map((c) => (c === null ? '' : typeof c === 'string' ? c : String(c))));
  if (notes) {
    const help = wb.addWorksheet('说明');
    notes.forEach((n) => help.addRow(n));
    help.getRow(1).font = { bold: true };
    help.columns.forEach((c) => (c.width = 30));
  }
  return Buffer.from(await wb.xlsx.writeBuffer());
}

import { stringify } from 'csv-stringify/sync';
import ExcelJS from 'exceljs';
import { readTableBytes, ReadLimits, Table } from './table-reader';

/**
 * Reading and writing the spreadsheet files of bulk import/export. A file becomes a header plus
 * rows of strings; row numbers are those a spreadsheet user sees (header = row 1). Uploads are
 * read off the event loop by ParsePool (parse-pool.ts → tabular.worker.ts → table-reader.ts);
 * readTable reads in-process, for tests and tools.
 */
export type { FileFormat, ReadLimits, Table } from './table-reader';
export { ParsePool } from './parse-pool';

const IN_PROCESS: ReadLimits = { maxRows: 1_000_000, maxColumns: 256, maxUnzippedBytes: 512 * 1024 * 1024, charsetMinScore: 0.8 };

/** Reads a CSV/XLSX in this thread (tests, tools); the api reads uploads through ParsePool. */
export function readTable(buf: Buffer, limits: ReadLimits = IN_PROCESS): Promise<Table> {
  return readTableBytes(buf, limits);
}

export type CellOut = string | number | boolean | null;

/**
 * A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a tab or CR before
 * one) gets a leading `'` (CSV injection, OWASP): Excel and WPS show it as text. Numbers are
 * ours and stay numbers; import strips the guard again (table-reader.ts `unguard`).
 */
export function neutralise(cell: CellOut): string {
  if (cell === null) return '';
  const s = String(cell);
  return typeof cell === 'string' && /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

/** CSV with a UTF-8 BOM so Excel on zh-CN Windows opens Chinese text correctly; formula cells neutralised. */
export function writeCsv(header: string[], rows: CellOut[][]): Buffer {
  const body = stringify([header.map(neutralise), ...rows.map((r) => r.map(neutralise))], { record_delimiter: '\r\n' });
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body, 'utf8')]);
}

/** XLSX with every column stored as text, so 20-digit device ids and codes survive Excel (text cells are never formulas). */
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

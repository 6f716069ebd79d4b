import { stringify } from 'csv-stringify/sync';
import { loadExcel } from './xlsx-libs';

/**
 * Writing the spreadsheet files of bulk export and templates; runs in ParsePool's worker threads
 * (ParsePool.write), never on the api's event loop: building a 4,500-row XLSX takes seconds.
 */
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
  const ExcelJS = await loadExcel();
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

import { readTableBytes, ReadLimits, Table } from './table-reader';

/**
 * Reading and writing the spreadsheet files of bulk import/export. A file becomes a header plus
 * rows of strings (with marks for XLSX cells that are not text); row numbers are those a
 * spreadsheet user sees (header = row 1). Uploads are read off the event loop by ParsePool
 * (parse-pool.ts → tabular.worker.ts → table-reader.ts); readTable reads in-process, for tests and
 * tools. Export files are built off the event loop by ParsePool.write (writer.ts in the same workers).
 */
export type { CellMark, DateKind, FileFormat, ReadLimits, Row, Table } from './table-reader';
export { cellProblem } from './table-reader';
export { ParsePool } from './parse-pool';
export { TabularModule } from './tabular.module';
export { neutralise, writeCsv, writeXlsx } from './writer';
export type { CellOut } from './writer';

const IN_PROCESS: ReadLimits = {
  maxRows: 1_000_000,
  maxColumns: 256,
  maxUnzippedBytes: 512 * 1024 * 1024,
  maxCellChars: 32_767,
  maxTotalChars: 256_000_000,
  charsetMinScore: 0.8,
};

/** Reads a CSV/XLSX in this thread (tests, tools); the api reads uploads through ParsePool. */
export function readTable(buf: Buffer, limits: ReadLimits = IN_PROCESS): Promise<Table> {
  return readTableBytes(buf, limits);
}

import type ExcelJS from 'exceljs';
import type unzipper from 'unzipper';

/*
 * The XLSX libraries, loaded on first use rather than at boot: requiring exceljs and unzipper costs
 * ~0.5 s (about 1.5 s on a loaded 2-core machine, measured in the test suite, where each test file
 * boots the service anew), and only the ParsePool workers and the in-process readTable read or
 * write XLSX.
 */

export async function loadExcel(): Promise<typeof ExcelJS> {
  return (await import('exceljs')).default;
}

export async function loadUnzipper(): Promise<typeof unzipper> {
  return (await import('unzipper')).default;
}

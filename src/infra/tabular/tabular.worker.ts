import { parentPort } from 'node:worker_threads';
import { boundDetails, DomainError, excerpt } from '../http/errors';
import { readTableBytes, ReadLimits } from './table-reader';
import { CellOut, writeCsv, writeXlsx } from './writer';

/**
 * A tabular worker (node:worker_threads, started by ParsePool): reads one uploaded file at a time
 * into a Table, or builds one export file. Our refusals go back as `{ error }` with their status
 * and code (details already cut to excerpts: nothing unbounded crosses back to the api's thread);
 * anything else (a bug, a library crash) as `{ fault }`, which the pool answers as unreadable.
 */
export type ParseRequest =
  | { id: number; kind: 'read'; bytes: Uint8Array; limits: ReadLimits }
  | { id: number; kind: 'write'; format: 'csv' | 'xlsx'; sheet: string; header: string[]; rows: CellOut[][]; notes?: string[][] };

parentPort?.on('message', async (req: ParseRequest) => {
  try {
    if (req.kind === 'write') {
      const body = req.format === 'csv' ? writeCsv(req.header, req.rows) : await writeXlsx(req.sheet, req.header, req.rows, req.notes);
      const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
      parentPort!.postMessage({ id: req.id, bytes }, body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? [bytes.buffer as ArrayBuffer] : []);
      return;
    }
    const table = await readTableBytes(Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength), req.limits);
    parentPort!.postMessage({ id: req.id, table });
  } catch (e) {
    if (e instanceof DomainError)
      parentPort!.postMessage({
        id: req.id,
        error: { status: e.status, code: e.code, message: excerpt(e.message, 1000), details: e.details && boundDetails(e.details) },
      });
    else parentPort!.postMessage({ id: req.id, fault: excerpt((e as Error).message ?? String(e), 300) });
  }
});

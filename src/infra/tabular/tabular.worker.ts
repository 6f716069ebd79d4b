import { parentPort } from 'node:worker_threads';
import { boundDetails, DomainError, excerpt } from '../http/errors';
import { readTableBytes, ReadLimits, Table } from './table-reader';
import { CellOut, writeCsv, writeXlsx } from './writer';

/**
 * A tabular worker (node:worker_threads, started by ParsePool): reads one uploaded file at a time
 * into a Table, or builds one export file. Our refusals go back as `{ error }` with their status
 * and code (details already cut to excerpts: nothing unbounded crosses back to the api's thread);
 * anything else (a bug, a library crash) as `{ fault }`, which the pool answers as unreadable.
 */
export type ParseRequest =
  | { id: number; kind: 'read'; bytes: Uint8Array; limits: ReadLimits }
  /** The next rows of the table read for `id` (see TABLE_CHUNK_ROWS). */
  | { id: number; kind: 'more' }
  | { id: number; kind: 'write'; format: 'csv' | 'xlsx'; sheet: string; header: string[]; rows: CellOut[][]; notes?: string[][] };

/**
 * A table read goes back in parts of this many rows, each sent when the api's thread asks for it
 * (`more`) after an event-loop turn: the api's thread deserialises every message it is sent in one
 * go, and a 50,000-row table in one message held it ~70 ms (alarms waited; issue 12 §3). Asked for
 * one at a time — messages already queued are all read in one turn.
 */
export const TABLE_CHUNK_ROWS = 2000;

/** The table being sent, part by part. */
let sending: { id: number; table: Table; next: number } | null = null;

function sendPart(): void {
  const s = sending!;
  const rows = s.table.rows.slice(s.next, s.next + TABLE_CHUNK_ROWS);
  s.next += rows.length;
  if (s.next < s.table.rows.length) return parentPort!.postMessage({ id: s.id, rows });
  sending = null;
  parentPort!.postMessage({ id: s.id, rows, table: { ...s.table, rows: [] } });
}

parentPort?.on('message', async (req: ParseRequest) => {
  if (req.kind === 'more') {
    if (sending?.id === req.id) sendPart();
    return;
  }
  try {
    if (req.kind === 'write') {
      const body = req.format === 'csv' ? writeCsv(req.header, req.rows) : await writeXlsx(req.sheet, req.header, req.rows, req.notes);
      const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
      parentPort!.postMessage({ id: req.id, bytes }, body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? [bytes.buffer as ArrayBuffer] : []);
      return;
    }
    const table = await readTableBytes(Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength), req.limits);
    sending = { id: req.id, table, next: 0 };
    sendPart();
  } catch (e) {
    if (e instanceof DomainError)
      parentPort!.postMessage({
        id: req.id,
        error: { status: e.status, code: e.code, message: excerpt(e.message, 1000), details: e.details && boundDetails(e.details) },
      });
    else parentPort!.postMessage({ id: req.id, fault: excerpt((e as Error).message ?? String(e), 300) });
  }
});

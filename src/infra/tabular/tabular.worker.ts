import { parentPort } from 'node:worker_threads';
import { DomainError } from '../http/errors';
import { readTableBytes, ReadLimits } from './table-reader';

/**
 * A parse worker (node:worker_threads, started by ParsePool): reads one uploaded file at a time
 * into a Table. Our refusals go back as `{ error }` with their status and code; anything else
 * (a bug, a library crash) as `{ fault }`, which the pool answers as unreadable.
 */
export interface ParseRequest {
  id: number;
  bytes: Uint8Array;
  limits: ReadLimits;
}

parentPort?.on('message', async (req: ParseRequest) => {
  try {
    const table = await readTableBytes(Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength), req.limits);
    parentPort!.postMessage({ id: req.id, table });
  } catch (e) {
    if (e instanceof DomainError) parentPort!.postMessage({ id: req.id, error: { status: e.status, code: e.code, message: e.message, details: e.details } });
    else parentPort!.postMessage({ id: req.id, fault: (e as Error).message ?? String(e) });
  }
});

import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { ImportConfig } from '../../config/sections';
import { DomainError, ErrorCode, Errors } from '../http/errors';
import type { ParseRequest } from './tabular.worker';
import type { ReadLimits, Table } from './table-reader';
import type { CellOut } from './writer';

/** The compiled worker script (from the TypeScript sources under jest: the build `npm test` makes first). */
function workerScript(): string {
  const here = join(__dirname, 'tabular.worker.js');
  return existsSync(here) ? here : join(__dirname, '..', '..', '..', 'dist', 'infra', 'tabular', 'tabular.worker.js');
}

type Request = { kind: 'read'; bytes: Uint8Array } | Omit<Extract<ParseRequest, { kind: 'write' }>, 'id'>;

interface Job {
  id: number;
  req: Request;
  /** The rows of a table read received so far (it comes in parts: tabular.worker TABLE_CHUNK_ROWS). */
  rows?: Table['rows'];
  resolve: (t: Table | Buffer) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  timer?: NodeJS.Timeout;
}

type Answer = {
  id: number;
  /** Part of a table read; without `table`, more follow when asked for. */
  rows?: Table['rows'];
  /** The table read, with its rows in the parts (`rows`) sent before and with this answer. */
  table?: Table;
  bytes?: Uint8Array;
  error?: { status: number; code: ErrorCode; message: string; details?: Record<string, unknown> };
  fault?: string;
};

/** Whole imports and whole exports are counted apart: see `exclusive`. */
export type Lane = 'import' | 'export';

/**
 * Uploaded spreadsheets are parsed, and export files built, in worker threads, never on the event
 * loop that delivers alarms: a small pool (import.parseWorkers), each worker with a heap cap
 * (import.parseMemoryMb) and a time limit per file (import.parseTimeoutMs: the worker is
 * terminated and replaced), and a bounded queue (import.parseQueue) — past it, 503 IMPORT.BUSY
 * with Retry-After instead of piling up uploads in memory. `exclusive` bounds whole imports and
 * exports (read, check, write; query, build) per process and per user.
 */
@Injectable()
export class ParsePool implements OnModuleDestroy {
  private readonly logger = new Logger('ParsePool');
  private readonly cfg: ImportConfig;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private seq = 0;
  private closed = false;
  private readonly running: Record<Lane, number> = { import: 0, export: 0 };
  /** Imports and exports running per user id (entries removed at 0). */
  private readonly perUser = new Map<string, number>();

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.cfg = config.import;
  }

  get limits(): ReadLimits {
    const { maxRows, maxColumns, maxUnzippedBytes, maxCellChars, maxTotalChars, charsetMinScore } = this.cfg;
    return { maxRows, maxColumns, maxUnzippedBytes, maxCellChars, maxTotalChars, charsetMinScore };
  }

  private get retryAfter(): number {
    return Math.max(1, Math.ceil(this.cfg.parseTimeoutMs / 1000 / 4));
  }

  /**
   * Runs one whole import or export of `userId`; past a limit, refused at once (nothing is read or
   * queried), with Retry-After:
   * - per user, import.maxConcurrentPerUser imports and exports together (default 1; the
   *   configuration keeps it below import.maxConcurrent): 429 IMPORT.BUSY_FOR_USER. One account
   *   looping two 50,000-row dry runs held both slots and every other user got 503 for as long as it
   *   lasted (attack pass 8 F2); now it holds at most one, and its own second request is what waits.
   * - per process, import.maxConcurrent imports and, separately, import.maxConcurrent exports:
   *   503 IMPORT.BUSY. Exports do not queue behind imports (an operator's GET /export/guards was
   *   refused while imports held the slots), nor imports behind exports; both lanes still share the
   *   parse workers and their bounded queue (import.parseWorkers, import.parseQueue), which is what
   *   bounds the CPU they take together.
   */
  async exclusive<T>(userId: string, lane: Lane, work: () => Promise<T>): Promise<T> {
    const mine = this.perUser.get(userId) ?? 0;
    if (mine >= this.cfg.maxConcurrentPerUser) {
      throw Errors.tooMany(
        ErrorCode.IMPORT.BUSY_FOR_USER,
        `您已有 ${mine} 个导入或导出正在进行，请等它完成后再试（每人同时最多 ${this.cfg.maxConcurrentPerUser} 个）`,
        this.retryAfter,
      );
    }
    if (this.running[lane] >= this.cfg.maxConcurrent) {
      const retry = this.retryAfter;
      throw new DomainError(503, ErrorCode.IMPORT.BUSY, `正在进行的${lane === 'import' ? '导入' : '导出'}过多，请 ${retry} 秒后重试`, {
        retryAfterSeconds: retry,
        maxConcurrent: this.cfg.maxConcurrent,
      });
    }
    this.running[lane]++;
    this.perUser.set(userId, mine + 1);
    try {
      return await work();
    } finally {
      this.running[lane]--;
      const left = (this.perUser.get(userId) ?? 1) - 1;
      if (left > 0) this.perUser.set(userId, left);
      else this.perUser.delete(userId);
    }
  }

  /** Parses a file off the event loop; rejects with our DomainErrors (400 unreadable/too large, 503 busy). */
  read(file: Buffer): Promise<Table> {
    return this.submit({ kind: 'read', bytes: new Uint8Array(file) }) as Promise<Table>;
  }

  /** Builds a CSV (UTF-8 with BOM) or XLSX export off the event loop (writer.ts); 503 IMPORT.BUSY when the queue is full. */
  async write(format: 'csv' | 'xlsx', sheet: string, header: string[], rows: CellOut[][], notes?: string[][]): Promise<Buffer> {
    return (await this.submit({ kind: 'write', format, sheet, header, rows, notes })) as Buffer;
  }

  private submit(req: Request): Promise<Table | Buffer> {
    if (this.closed) return Promise.reject(new DomainError(503, ErrorCode.IMPORT.BUSY, '服务正在停止，请稍后重试', { retryAfterSeconds: 5 }));
    const waiting = this.queue.length;
    const idle = this.slots.some((s) => !s.job) || this.slots.length < this.cfg.parseWorkers;
    if (!idle && waiting >= this.cfg.parseQueue) {
      const retry = this.retryAfter;
      return Promise.reject(
        new DomainError(503, ErrorCode.IMPORT.BUSY, `正在解析的文件过多，请 ${retry} 秒后重试`, {
          retryAfterSeconds: retry,
          queued: waiting,
          workers: this.cfg.parseWorkers,
        }),
      );
    }
    return new Promise<Table | Buffer>((resolve, reject) => {
      this.queue.push({ id: ++this.seq, req, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot && this.slots.length < this.cfg.parseWorkers) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.timer = setTimeout(() => this.fail(slot!, 'timeout'), this.cfg.parseTimeoutMs);
      if (job.req.kind === 'read') {
        const req: ParseRequest = { id: job.id, kind: 'read', bytes: job.req.bytes, limits: this.limits };
        slot.worker.postMessage(req, [job.req.bytes.buffer as ArrayBuffer]);
      } else slot.worker.postMessage({ ...job.req, id: job.id } satisfies ParseRequest);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerScript(), { resourceLimits: { maxOldGenerationSizeMb: this.cfg.parseMemoryMb } });
    worker.unref();
    const slot: Slot = { worker, job: null };
    worker.on('message', (a: Answer) => {
      const job = slot.job;
      if (!job || job.id !== a.id) return;
      if (a.rows) {
        job.rows ??= [];
        for (const r of a.rows) job.rows.push(r);
        // The next part after an event-loop turn: alarms and console events go through between the parts.
        if (!a.table) return void setImmediate(() => slot.job === job && slot.worker.postMessage({ id: job.id, kind: 'more' } satisfies ParseRequest));
      }
      this.done(slot);
      if (a.table) job.resolve({ ...a.table, rows: job.rows ?? [] });
      else if (a.bytes) job.resolve(Buffer.from(a.bytes.buffer, a.bytes.byteOffset, a.bytes.byteLength));
      else if (a.error) job.reject(new DomainError(a.error.status, a.error.code, a.error.message, a.error.details));
      else {
        this.logger.warn(`parse worker fault: ${a.fault}`);
        if (job.req.kind === 'write') return job.reject(new Error(`export build failed: ${a.fault}`));
        job.reject(Errors.badRequest(ErrorCode.IMPORT.UNREADABLE_FILE, '无法读取文件：内容无法解析'));
      }
    });
    worker.on('error', (e) => this.fail(slot, `error: ${e.message}`));
    worker.on('exit', (code) => {
      if (slot.job) this.fail(slot, `exit ${code}`);
      this.remove(slot);
    });
    this.slots.push(slot);
    return slot;
  }

  private done(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.job = null;
    setImmediate(() => this.pump());
  }

  /** A file that took too long or too much memory: refused as too large; the worker is replaced. */
  private fail(slot: Slot, why: string): void {
    const job = slot.job;
    if (!job) return;
    this.done(slot);
    this.remove(slot);
    void slot.worker.terminate();
    this.logger.warn(`parse worker stopped (${why})`);
    if (job.req.kind === 'write')
      return job.reject(
        new DomainError(503, ErrorCode.IMPORT.BUSY, '导出文件未能在时限内生成，请缩小范围后重试', {
          retryAfterSeconds: this.retryAfter,
          parseTimeoutMs: this.cfg.parseTimeoutMs,
        }),
      );
    job.reject(
      Errors.badRequest(
        ErrorCode.IMPORT.TOO_LARGE_CONTENT,
        `文件过大或过于复杂，${why === 'timeout' ? `${this.cfg.parseTimeoutMs / 1000} 秒内` : ''}无法解析，请拆分后分别导入`,
        {
          parseTimeoutMs: this.cfg.parseTimeoutMs,
          parseMemoryMb: this.cfg.parseMemoryMb,
        },
      ),
    );
  }

  private remove(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new DomainError(503, ErrorCode.IMPORT.BUSY, '服务正在停止，请稍后重试', { retryAfterSeconds: 5 }));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}

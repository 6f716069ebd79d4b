import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { ImportConfig } from '../../config/sections';
import { DomainError, ErrorCode, Errors } from '../http/errors';
import type { ParseRequest } from './tabular.worker';
import type { ReadLimits, Table } from './table-reader';

/** The compiled worker script (from the TypeScript sources under jest: the build `npm test` makes first). */
function workerScript(): string {
  const here = join(__dirname, 'tabular.worker.js');
  return existsSync(here) ? here : join(__dirname, '..', '..', '..', 'dist', 'infra', 'tabular', 'tabular.worker.js');
}

interface Job {
  id: number;
  bytes: Uint8Array;
  resolve: (t: Table) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  timer?: NodeJS.Timeout;
}

type Answer = { id: number; table?: Table; error?: { status: number; code: ErrorCode; message: string; details?: Record<string, unknown> }; fault?: string };

/**
 * Uploaded spreadsheets are parsed in worker threads, never on the event loop that delivers
 * alarms: a small pool (import.parseWorkers), each worker with a heap cap (import.parseMemoryMb)
 * and a time limit per file (import.parseTimeoutMs: the worker is terminated and replaced), and a
 * bounded queue (import.parseQueue) — past it, 503 IMPORT.BUSY with Retry-After instead of
 * piling up uploads in memory.
 */
@Injectable()
export class ParsePool implements OnModuleDestroy {
  private readonly logger = new Logger('ParsePool');
  private readonly cfg: ImportConfig;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private seq = 0;
  private closed = false;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.cfg = config.import;
  }

  get limits(): ReadLimits {
    const { maxRows, maxColumns, maxUnzippedBytes, charsetMinScore } = this.cfg;
    return { maxRows, maxColumns, maxUnzippedBytes, charsetMinScore };
  }

  /** Parses a file off the event loop; rejects with our DomainErrors (400 unreadable/too large, 503 busy). */
  read(file: Buffer): Promise<Table> {
    if (this.closed) return Promise.reject(new DomainError(503, ErrorCode.IMPORT.BUSY, '服务正在停止，请稍后重试', { retryAfterSeconds: 5 }));
    const waiting = this.queue.length;
    const idle = this.slots.some((s) => !s.job) || this.slots.length < this.cfg.parseWorkers;
    if (!idle && waiting >= this.cfg.parseQueue) {
      const retry = Math.max(1, Math.ceil(this.cfg.parseTimeoutMs / 1000 / 4));
      return Promise.reject(
        new DomainError(503, ErrorCode.IMPORT.BUSY, `正在解析的文件过多，请 ${retry} 秒后重试`, {
          retryAfterSeconds: retry,
          queued: waiting,
          workers: this.cfg.parseWorkers,
        }),
      );
    }
    return new Promise<Table>((resolve, reject) => {
      this.queue.push({ id: ++this.seq, bytes: new Uint8Array(file), resolve, reject });
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
      const req: ParseRequest = { id: job.id, bytes: job.bytes, limits: this.limits };
      slot.worker.postMessage(req, [job.bytes.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerScript(), { resourceLimits: { maxOldGenerationSizeMb: this.cfg.parseMemoryMb } });
    worker.unref();
    const slot: Slot = { worker, job: null };
    worker.on('message', (a: Answer) => {
      const job = slot.job;
      if (!job || job.id !== a.id) return;
      this.done(slot);
      if (a.table) job.resolve(a.table);
      else if (a.error) job.reject(new DomainError(a.error.status, a.error.code, a.error.message, a.error.details));
      else {
        this.logger.warn(`parse worker fault: ${a.fault}`);
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

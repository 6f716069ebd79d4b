import { Worker } from 'node:worker_threads';

/** A photo decoded for real and written anew: its true size, and JPEG bytes with nothing of the upload but its pixels. */
export interface CleanPhoto {
  width: number;
  height: number;
  jpeg: Buffer;
}

/**
 * The worker's code (plain JS, so it runs the same from dist/ and under ts-jest): decodes the upload
 * with jpeg-js, strict (a cut or made-up scan throws instead of being filled in), bounded in
 * resolution and memory, and encodes the pixels again — EXIF (GPS, the phone's make, the time),
 * comments, a second frame or anything after the end-of-image marker are not carried over.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const jpeg = require(workerData.jpegJs);
parentPort.on('message', (m) => {
  try {
    const img = jpeg.decode(m.jpeg, { useTArray: true, tolerantDecoding: false, formatAsRGBA: true, maxResolutionInMP: m.maxMegapixels, maxMemoryUsageInMB: m.maxMemoryMb });
    const out = jpeg.encode({ data: img.data, width: img.width, height: img.height }, m.quality);
    parentPort.postMessage({ id: m.id, width: img.width, height: img.height, jpeg: out.data });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});
`;

interface Job {
  id: number;
  resolve: (p: CleanPhoto) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  worker: Worker;
}

/** The picture could not be decoded (not a JPEG, cut, made up): the caller answers 415. */
export class PhotoUndecodable extends Error {}

/**
 * Decodes and re-encodes alarm photos off the event loop: one worker thread, started on first use,
 * photos one after another (a 1600×1200 photo is ~0.3 s to decode and ~0.35 s to encode in JS —
 * far too long for the event loop that takes alarms). A photo taking longer than `timeoutMs` ends
 * the worker (a new one starts for the next). Pixels are bounded before (the caller checks the
 * header against video.photoMaxPixels) and in the decoder (maxResolutionInMP).
 */
export class PhotoCleaner {
  private worker: Worker | null = null;
  private seq = 0;
  private readonly jobs = new Map<number, Job>();

  constructor(private readonly opts: { maxPixels: number; quality: number; timeoutMs: number }) {}

  clean(jpeg: Buffer): Promise<CleanPhoto> {
    const w = this.start();
    const id = ++this.seq;
    return new Promise<CleanPhoto>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.jobs.delete(id);
        reject(new PhotoUndecodable(`decoding took longer than ${this.opts.timeoutMs} ms`));
        this.restart();
      }, this.opts.timeoutMs);
      this.jobs.set(id, { id, resolve, reject, timer, worker: w });
      const megapixels = this.opts.maxPixels / 1e6;
      w.postMessage({ id, jpeg, quality: this.opts.quality, maxMegapixels: megapixels, maxMemoryMb: Math.ceil(megapixels * 12) + 64 });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) {
      this.failAll(w, new Error('photo cleaner closed'));
      await w.terminate();
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { jpegJs: require.resolve('jpeg-js') } });
    w.unref();
    w.on('message', (m: { id: number; width?: number; height?: number; jpeg?: Uint8Array; error?: string }) => {
      const job = this.jobs.get(m.id);
      if (!job) return;
      this.jobs.delete(m.id);
      clearTimeout(job.timer);
      if (m.error !== undefined || !m.jpeg) job.reject(new PhotoUndecodable(m.error ?? 'no picture'));
      else job.resolve({ width: m.width!, height: m.height!, jpeg: Buffer.from(m.jpeg.buffer, m.jpeg.byteOffset, m.jpeg.byteLength) });
    });
    w.on('error', (e) => {
      if (this.worker === w) this.worker = null;
      this.failAll(w, e instanceof Error ? e : new Error(String(e)));
    });
    w.on('exit', () => {
      if (this.worker === w) this.worker = null;
      this.failAll(w, new Error('photo worker exited'));
    });
    this.worker = w;
    return w;
  }

  private restart(): void {
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    this.failAll(w, new PhotoUndecodable('photo worker restarted'));
    void w.terminate();
  }

  /** Fails the photos waiting on this worker (not those of a worker started after it). */
  private failAll(w: Worker, e: Error): void {
    for (const job of [...this.jobs.values()]) {
      if (job.worker !== w) continue;
      clearTimeout(job.timer);
      this.jobs.delete(job.id);
      job.reject(e);
    }
  }
}

import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';

/**
 * Where evidence pictures live. A directory by default; an S3-compatible store can implement the
 * same four calls later (put = PutObject, get = GetObject, delete = DeleteObject, listExpired =
 * ListObjectsV2 over the date prefixes). Keys start with the capture's UTC date
 * (`YYYY-MM-DD/…`), so expiry is a matter of listing old prefixes.
 */
export interface EvidenceStore {
  /** Stores bytes under a new key for `at`; returns the key and the SHA-256 (hex) of what was written. */
  put(at: Date, data: Buffer, ext: string): Promise<{ key: string; sha256: string; bytes: number }>;
  /** The bytes of a key; throws `EvidenceNotFound` when absent. */
  get(key: string): Promise<Buffer>;
  /** Removes a key (absent: nothing to do). */
  delete(key: string): Promise<void>;
  /**
   * Keys captured before `before` (oldest first, in key order), after key `after` when given, at
   * most `limit`; with `since`, only of the days from `since` on (a recent window, not every day kept).
   */
  listExpired(before: Date, limit: number, after?: string, since?: Date): Promise<string[]>;
}

export class EvidenceNotFound extends Error {}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export class FileEvidenceStore implements EvidenceStore {
  readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  /** A key's file, refusing anything that would leave the root (keys come from our rows, but still). */
  private file(key: string): string {
    if (!/^\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.[a-z0-9]{1,5}$/.test(key)) throw new EvidenceNotFound(`bad key ${key}`);
    const f = resolve(this.root, key);
    if (!f.startsWith(this.root + sep)) throw new EvidenceNotFound(`bad key ${key}`);
    return f;
  }

  async put(at: Date, data: Buffer, ext: string): Promise<{ key: string; sha256: string; bytes: number }> {
    const key = `${at.toISOString().slice(0, 10)}/${randomUUID()}.${ext}`;
    const f = this.file(key);
    await mkdir(dirname(f), { recursive: true });
    // Write then rename: a crash never leaves a half-written picture under a recorded key.
    const tmp = `${f}.tmp`;
    await writeFile(tmp, data, { mode: 0o640 });
    await rename(tmp, f);
    return { key, sha256: sha256(data), bytes: data.length };
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.file(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new EvidenceNotFound(`no evidence file ${key}`);
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const f = this.file(key);
    await rm(f, { force: true });
    await rmdir(dirname(f)).catch(() => undefined); // only when the day is empty
  }

  async listExpired(before: Date, limit: number, after?: string, since?: Date): Promise<string[]> {
    const cutoff = before.toISOString().slice(0, 10);
    const first = since?.toISOString().slice(0, 10);
    let days: string[];
    try {
      // Only the directory names are read for the days outside the window (one readdir of the root).
      days = (await readdir(this.root)).filter((d) => DAY.test(d) && d < cutoff && (!first || d >= first) && (!after || d >= after.slice(0, 10))).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: string[] = [];
    for (const d of days) {
      for (const f of (await readdir(join(this.root, d))).sort()) {
        if (after && `${d}/${f}` <= after) continue;
        if (f.endsWith('.tmp')) await rm(join(this.root, d, f), { force: true });
        else out.push(`${d}/${f}`);
        if (out.length >= limit) return out;
      }
      if (out.length === 0 && !after) await rmdir(join(this.root, d)).catch(() => undefined); // only when empty (rmdir refuses otherwise)
    }
    return out;
  }
}

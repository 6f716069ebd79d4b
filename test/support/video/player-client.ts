import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

/**
 * A Node-side player: connects to the video WebSocket like the browser does and keeps what it
 * receives (meta, init segment, fragments, the error and close code), so a test can check with
 * ffprobe that the stream decodes to frames.
 */
export interface Watched {
  meta: { codec: string; width: number; height: number }[];
  /** Binary frames in order (init segments and fragments). */
  binary: Buffer[];
  errors: { code: string; message: string }[];
  closeCode: number | null;
  closeReason: string;
  firstBinaryAt: number | null;
  openedAt: number;
}

export interface Viewer {
  watched: Watched;
  ws: WebSocket;
  /** Resolves when `n` binary frames arrived (or the socket closed). */
  frames: (n: number, timeoutMs?: number) => Promise<void>;
  closed: Promise<void>;
  close: () => void;
}

export function wsUrl(baseUrl: string, url: string): string {
  return new URL(url, baseUrl.replace(/^http/, 'ws')).href;
}

export function openViewer(baseUrl: string, url: string): Promise<Viewer> {
  const ws = new WebSocket(wsUrl(baseUrl, url));
  const watched: Watched = { meta: [], binary: [], errors: [], closeCode: null, closeReason: '', firstBinaryAt: null, openedAt: Date.now() };
  let notify: (() => void) | null = null;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      watched.binary.push(Buffer.from(data));
      watched.firstBinaryAt ??= Date.now();
    } else {
      const m = JSON.parse(data.toString());
      if (m.type === 'meta') watched.meta.push(m);
      if (m.type === 'error') watched.errors.push(m);
    }
    notify?.();
  });
  const closed = new Promise<void>((r) =>
    ws.on('close', (code, reason) => {
      watched.closeCode = code;
      watched.closeReason = reason.toString();
      notify?.();
      r();
    }),
  );
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`WebSocket refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
    ws.once('open', () => {
      ws.on('error', () => undefined);
      resolve({
        watched,
        ws,
        closed,
        close: () => ws.close(),
        frames: (n, timeoutMs = 10000) =>
          new Promise<void>((res, rej) => {
            const t = setTimeout(
              () =>
                rej(
                  new Error(
                    `only ${watched.binary.length} of ${n} frames in ${timeoutMs} ms (errors: ${JSON.stringify(watched.errors)}, close ${watched.closeCode})`,
                  ),
                ),
              timeoutMs,
            );
            const check = () => {
              if (watched.binary.length >= n || watched.closeCode !== null) {
                clearTimeout(t);
                notify = null;
                res();
              }
            };
            notify = check;
            check();
          }),
      });
    });
  });
}

/** ffprobe over bytes: decoded frame count and the stream's codec and size. */
export async function probe(buf: Buffer, format = 'mp4'): Promise<{ frames: number; codec: string; width: number; height: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const file = join(dir, `x.${format === 'mp4' ? 'mp4' : format}`);
  writeFileSync(file, buf);
  try {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'ffprobe',
        ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', file],
        (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)),
      ),
    );
    const s = JSON.parse(out).streams?.[0] ?? {};
    return { frames: Number(s.nb_read_frames ?? 0), codec: s.codec_name ?? '', width: s.width ?? 0, height: s.height ?? 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

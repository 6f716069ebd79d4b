import { ChildProcess, spawn } from 'node:child_process';
import { launcher } from './remuxer';

/** Width and height from a JPEG's start-of-frame marker (baseline/progressive), or null when it is not a JPEG. */
export function jpegSize(buf: Buffer): { width: number; height: number } | null {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null;
  let at = 2;
  while (at + 9 < buf.length) {
    if (buf[at] !== 0xff) return null;
    const marker = buf[at + 1];
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01 || marker === 0xff) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    const len = buf.readUInt16BE(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return { height: buf.readUInt16BE(at + 5), width: buf.readUInt16BE(at + 7) };
    at += 2 + len;
  }
  return null;
}

/**
 * Whether a JPEG has a frame and a scan with data after it: a start-of-frame, then a start-of-scan
 * whose header is followed by entropy-coded bytes (a header alone decodes to a blank picture).
 */
export function jpegHasScan(buf: Buffer): boolean {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return false;
  let at = 2;
  let frame = false;
  while (at + 4 <= buf.length) {
    if (buf[at] !== 0xff) return false;
    const marker = buf[at + 1];
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === 0xd9) return false;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    const len = buf.readUInt16BE(at + 2);
    if (len < 2) return false;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) frame = true;
    if (marker === 0xda) {
      const data = at + 2 + len;
      // Some entropy-coded data, not straight the end-of-image marker.
      return frame && data + 2 < buf.length && !(buf[data] === 0xff && buf[data + 1] === 0xd9);
    }
    at += 2 + len;
  }
  return false;
}

const JPEG_ARGS = [
  '-hide_banner',
  '-loglevel',
  'error',
  '-nostdin',
  '-probesize',
  '32',
  '-analyzeduration',
  '0',
  '-f',
  'mp4',
  '-i',
  'pipe:0',
  '-frames:v',
  '1',
  '-c:v',
  'mjpeg',
  '-q:v',
  '3',
  '-f',
  'image2pipe',
  'pipe:1',
];

/**
 * One-shot ffmpeg decoders of a keyframe (fMP4 init segment + the keyframe's fragment) into a
 * JPEG. Starting ffmpeg costs more than decoding one picture (it links ~20 shared libraries:
 * 0.1–0.4 s here, more under load), so `warm` of them are started ahead and wait on stdin; a
 * snapshot takes one and a replacement starts behind it. Bounded in time and output size.
 */
export class JpegEncoders {
  private idle: ChildProcess[] = [];
  private closed = false;

  constructor(
    private readonly ffmpegPath: string,
    private readonly warm: number,
  ) {}

  private spawnOne(): ChildProcess {
    const [cmd, args] = launcher(this.ffmpegPath, JPEG_ARGS);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => undefined);
    child.on('error', () => undefined);
    child.on('exit', () => (this.idle = this.idle.filter((c) => c !== child)));
    return child;
  }

  /** Starts the warm encoders (at boot, and behind each snapshot). */
  fill(): void {
    while (!this.closed && this.idle.length < this.warm) this.idle.push(this.spawnOne());
  }

  encode(init: Buffer, fragment: Buffer, timeoutMs: number, maxBytes = 16 << 20): Promise<Buffer> {
    const child = this.idle.shift() ?? this.spawnOne();
    setImmediate(() => this.fill());
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      let bytes = 0;
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`JPEG encoding took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        bytes += d.length;
        if (bytes > maxBytes) child.kill('SIGKILL');
        else out.push(d);
      });
      child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-1000)));
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        const jpeg = Buffer.concat(out);
        if (code === 0 && jpegSize(jpeg)) resolve(jpeg);
        else reject(new Error(`JPEG encoding failed (${code}): ${err.trim().split('\n').pop() ?? ''}`));
      });
      child.stdin!.end(Buffer.concat([init, fragment]));
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle) c.kill('SIGKILL');
    this.idle = [];
  }
}

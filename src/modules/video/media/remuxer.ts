import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { BoxSplitter, initCodec, moofStartsWithKeyframe } from './fmp4';

export type RemuxInput = { kind: 'ps' } | { kind: 'url'; url: string; rtspTransport: 'tcp' | 'udp'; timeoutMs: number };

export interface RemuxOptions {
  ffmpegPath: string;
  input: RemuxInput;
  /** Re-encode to H.264 (an H.265 source for Chromium's MSE) instead of copying. */
  transcode: { bitrateKbps: number } | null;
  maxQueueBytes: number;
  maxBoxBytes: number;
}

export interface InitInfo {
  init: Buffer;
  codec: string;
  hevc: boolean;
  width: number;
  height: number;
}

let setprivWorks: boolean | null = null;
/**
 * ffmpeg must not outlive us, even when we are SIGKILLed or crash: it is started through
 * util-linux `setpriv --pdeathsig SIGKILL` (prctl PR_SET_PDEATHSIG, kept across exec), so the
 * kernel kills it when this process dies. Where setpriv is missing, its stdout/stdin pipes close
 * with us and ffmpeg exits at its next write/read (EPIPE / EOF).
 */
export function launcher(ffmpeg: string, args: string[]): [string, string[]] {
  if (setprivWorks === null) setprivWorks = process.platform === 'linux' && spawnSync('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'true']).status === 0;
  return setprivWorks ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', ffmpeg, ...args]] : [ffmpeg, args];
}

/** ffmpeg arguments: low probing (the codec is known from the PSM / SDP), fMP4 out, one fragment per frame. */
export function ffmpegArgs(o: Pick<RemuxOptions, 'input' | 'transcode'>): string[] {
  const input =
    o.input.kind === 'ps'
      ? ['-f', 'mpeg', '-i', 'pipe:0']
      : [
          ...(o.input.url.startsWith('rtsp')
            ? ['-rtsp_transport', o.input.rtspTransport, '-timeout', String(o.input.timeoutMs * 1000)]
            : ['-rw_timeout', String(o.input.timeoutMs * 1000)]),
          '-i',
          o.input.url,
        ];
  const video = o.transcode
    ? [
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-tune',
        'zerolatency',
        '-profile:v',
        'main',
        '-pix_fmt',
        'yuv420p',
        '-b:v',
        `${o.transcode.bitrateKbps}k`,
        '-maxrate',
        `${o.transcode.bitrateKbps}k`,
        '-bufsize',
        `${o.transcode.bitrateKbps}k`,
        '-g',
        '50',
        '-threads',
        '1',
      ]
    : ['-c:v', 'copy'];
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    '-probesize',
    '32',
    '-analyzeduration',
    '0',
    ...input,
    '-map',
    '0:v:0',
    '-an',
    ...video,
    '-f',
    'mp4',
    '-movflags',
    'empty_moov+default_base_moof+frag_keyframe+frag_every_frame',
    '-flush_packets',
    '1',
    'pipe:1',
  ];
}

/**
 * One supervised ffmpeg remuxing a camera's stream (MPEG-PS on stdin, or a URL it pulls) into
 * fragmented MP4. Emits `init` (InitInfo), `fragment` (Buffer, keyframe: boolean) and `exit`
 * (code, signal, stderr tail, whether we asked it to stop). Input writes are bounded: past
 * `maxQueueBytes` queued, input is dropped until the caller's next keyframe (`writeInput`
 * returns false), so a stuck ffmpeg cannot grow our memory.
 */
export class Remuxer extends EventEmitter {
  private child?: ChildProcess;
  private stopping = false;
  private stderrTail = '';
  private splitter: BoxSplitter;
  private initParts: Buffer[] = [];
  private initDone = false;
  lastOutputAt = 0;
  startedAt = 0;
  outputBytes = 0;

  constructor(private readonly o: RemuxOptions) {
    super();
    this.splitter = new BoxSplitter(o.maxBoxBytes);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    const [cmd, args] = launcher(this.o.ffmpegPath, ffmpegArgs(this.o));
    this.startedAt = Date.now();
    const child = spawn(cmd, args, { stdio: [this.o.input.kind === 'ps' ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdin?.on('error', () => undefined); // EPIPE when ffmpeg dies: the exit handler reports it
    child.stdout!.on('data', (chunk: Buffer) => this.onOutput(chunk));
    child.stderr!.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-2000)));
    child.on('error', (e) => {
      this.stderrTail += `\n${e.message}`;
    });
    child.on('close', (code, signal) => {
      this.child = undefined;
      this.emit('exit', { code, signal, stderr: this.stderrTail.trim(), requested: this.stopping });
    });
  }

  private onOutput(chunk: Buffer): void {
    this.lastOutputAt = Date.now();
    this.outputBytes += chunk.length;
    try {
      this.splitter.push(chunk, (type, box) => {
        if (!this.initDone) {
          if (type === 'moof') {
            this.initDone = true;
            const init = Buffer.concat(this.initParts);
            this.initParts = [];
            const info = initCodec(init);
            this.emit('init', {
              init,
              codec: info?.codec ?? 'avc1.42e01e',
              hevc: info?.hevc ?? false,
              width: info?.width ?? 0,
              height: info?.height ?? 0,
            } satisfies InitInfo);
          } else {
            this.initParts.push(box);
            return;
          }
        }
        if (type === 'moof') this.pendingMoof = box;
        else if (type === 'mdat' && this.pendingMoof) {
          const moof = this.pendingMoof;
          this.pendingMoof = null;
          this.emit('fragment', Buffer.concat([moof, box]), moofStartsWithKeyframe(moof));
        }
      });
    } catch (e) {
      this.stderrTail += `\n${(e as Error).message}`;
      this.stop();
    }
  }

  private pendingMoof: Buffer | null = null;

  /** Queues input bytes (PS); false when the queue is over its bound and the bytes were dropped. */
  writeInput(buf: Buffer): boolean {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed || this.stopping) return false;
    if (stdin.writableLength > this.o.maxQueueBytes) return false;
    stdin.write(buf);
    return true;
  }

  /** Stops ffmpeg: end of input, then SIGKILL after a moment if it lingers. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    child.stdin?.destroy();
    child.kill('SIGTERM');
    const t = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, 1000);
    t.unref();
  }
}

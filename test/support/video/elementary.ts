import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * H.264 / H.265 elementary streams for the test cameras, made by ffmpeg from its test pattern
 * (`testsrc2`: moving colour bars and a counter, never a blank frame) the way IP cameras encode:
 * Annex B with an access unit delimiter before each picture, SPS/PPS (and VPS) repeated before
 * every IDR, a fixed GOP, no B-frames, constant frame rate. Encoded once per parameter set into
 * a cache directory and replayed in a loop (a camera costs no encoder CPU, so the bench can run
 * dozens on two cores).
 */
export type VideoCodec = 'h264' | 'h265';

export interface ClipOptions {
  codec?: VideoCodec;
  width?: number;
  height?: number;
  fps?: number;
  /** Keyframe interval in frames (cameras: 1–2 s). */
  gop?: number;
  bitrateKbps?: number;
  seconds?: number;
}

export interface AccessUnit {
  /** Annex B bytes of one picture (start codes included). */
  data: Buffer;
  keyframe: boolean;
}

export interface Clip {
  codec: VideoCodec;
  width: number;
  height: number;
  fps: number;
  units: AccessUnit[];
}

const CACHE = join(tmpdir(), 'shouhu-video-clips');

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, _out, stderr) => (err ? reject(new Error(`${cmd} failed: ${stderr.slice(-2000)}`)) : resolve())),
  );
}

/** Makes (or reuses) a clip and splits it into access units. */
export async function makeClip(o: ClipOptions = {}): Promise<Clip> {
  const c = {
    codec: o.codec ?? 'h264',
    width: o.width ?? 320,
    height: o.height ?? 240,
    fps: o.fps ?? 25,
    gop: o.gop ?? 25,
    bitrateKbps: o.bitrateKbps ?? 400,
    seconds: o.seconds ?? 4,
  };
  mkdirSync(CACHE, { recursive: true });
  const file = join(CACHE, `${c.codec}-${c.width}x${c.height}-${c.fps}-${c.gop}-${c.bitrateKbps}-${c.seconds}.${c.codec}`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    const rate = [`-b:v`, `${c.bitrateKbps}k`, '-maxrate', `${c.bitrateKbps}k`, '-bufsize', `${c.bitrateKbps}k`];
    const codecArgs =
      c.codec === 'h264'
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
            '-g',
            String(c.gop),
            '-keyint_min',
            String(c.gop),
            '-sc_threshold',
            '0',
            '-bf',
            '0',
            '-x264-params',
            'aud=1:repeat-headers=1',
            ...rate,
            '-f',
            'h264',
          ]
        : [
            '-c:v',
            'libx265',
            '-preset',
            'veryfast',
            '-pix_fmt',
            'yuv420p',
            '-x265-params',
            `aud=1:repeat-headers=1:keyint=${c.gop}:min-keyint=${c.gop}:scenecut=0:bframes=0:log-level=error`,
            ...rate,
            '-f',
            'hevc',
          ];
    await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${c.width}x${c.height}:rate=${c.fps}`,
      '-t',
      String(c.seconds),
      ...codecArgs,
      tmp,
    ]);
    renameSync(tmp, file);
  }
  return { codec: c.codec, width: c.width, height: c.height, fps: c.fps, units: splitAccessUnits(readFileSync(file), c.codec) };
}

/** NAL unit type of the NAL starting at `i` (the byte after the start code). */
const nalType = (b: number, codec: VideoCodec) => (codec === 'h264' ? b & 0x1f : (b >> 1) & 0x3f);
const isAud = (t: number, codec: VideoCodec) => (codec === 'h264' ? t === 9 : t === 35);
const isIrap = (t: number, codec: VideoCodec) => (codec === 'h264' ? t === 5 : t >= 16 && t <= 21);

/** Splits an Annex B stream at access unit delimiters. */
export function splitAccessUnits(buf: Buffer, codec: VideoCodec): AccessUnit[] {
  const starts: { at: number; type: number }[] = [];
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      const at = i > 0 && buf[i - 1] === 0 ? i - 1 : i;
      starts.push({ at, type: nalType(buf[i + 3], codec) });
      i += 2;
    }
  }
  const units: AccessUnit[] = [];
  let cur: { at: number; key: boolean } | null = null;
  for (const s of starts) {
    if (isAud(s.type, codec)) {
      if (cur) units.push({ data: buf.subarray(cur.at, s.at), keyframe: cur.key });
      cur = { at: s.at, key: false };
    } else if (cur && isIrap(s.type, codec)) cur.key = true;
  }
  if (cur) units.push({ data: buf.subarray(cur.at), keyframe: cur.key });
  if (!units.length || !units[0].keyframe) throw new Error('clip does not start with a keyframe after an AUD');
  return units;
}

import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../processes';

/**
 * The RTSP test camera (test/support/video/rtsp_server.py, GStreamer's RTSP server). Runs with
 * Debian's /usr/bin/python3 (the python3 on PATH may be another without the gi bindings).
 */
export interface RtspSource {
  url: string;
  port: number;
  /** The URIs of the DESCRIBE requests it was sent (a playback URL's time range is read from them). */
  requests: string[];
  /** SIGSTOPs the server: connections stay open, no more media (a hung camera). */
  freeze: () => void;
  stop: () => Promise<void>;
}

export const PYTHON = process.env.GST_PYTHON ?? '/usr/bin/python3';

export async function startRtspSource(
  opts: {
    codec?: 'h264' | 'h265';
    width?: number;
    height?: number;
    /** RTSP digest auth with this account, as real cameras ask. */
    auth?: { username: string; password: string };
    /** Also serve an N-second 'recording' at the NVR playback paths /Streaming/tracks/101 (Hikvision) and /cam/playback (Dahua). */
    recordingSeconds?: number;
  } = {},
): Promise<RtspSource> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    PYTHON,
    [join(__dirname, 'rtsp_server.py'), String(port), opts.codec ?? 'h264', String(opts.width ?? 320), String(opts.height ?? 240)],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...(opts.auth ? { RTSP_AUTH: `${opts.auth.username}:${opts.auth.password}` } : {}),
        ...(opts.recordingSeconds ? { RTSP_RECORDING_SECONDS: String(opts.recordingSeconds) } : {}),
      },
    },
  );
  let out = '';
  const requests: string[] = [];
  let line = '';
  child.stdout!.on('data', (d: Buffer) => {
    line += d.toString();
    const lines = line.split('\n');
    line = lines.pop()!;
    for (const l of lines) if (l.startsWith('REQUEST ')) requests.push(l.split(' ')[2]);
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`RTSP test source did not start: ${out}`)), 15000);
    const check = () => {
      if (out.includes('READY')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`RTSP test source exited (${code}): ${out}`));
    });
  });
  return {
    port,
    url: `rtsp://127.0.0.1:${port}/test`,
    requests,
    freeze: () => child.kill('SIGSTOP'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
  };
}

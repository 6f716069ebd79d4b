import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createDatabase, deleteRedisPrefix, releaseDatabase, TEST_REDIS_URL, TIMETABLE } from '../support/harness';
import { freePort, Proc, start, stop, until, waitHttp } from '../support/processes';
import { RtspSource, startRtspSource } from '../support/video/rtsp-source';
import { openViewer } from '../support/video/player-client';

/**
 * No orphan ffmpeg: the service is SIGKILLed (no shutdown hook runs) while it remuxes two
 * cameras; the kernel must take its ffmpeg children with it (setpriv --pdeathsig), so nothing
 * keeps pulling cameras or holding ports after a crash. Runs the compiled service (dist/).
 */
function children(ppid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push({ pid: Number(d), comm });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Running, or a zombie nobody reaped: either way still in the process table. */
function alive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`, 'utf8');
    return true;
  } catch {
    return false;
  }
}

describe('video: no ffmpeg outlives a crashed service', () => {
  jest.setTimeout(90_000);
  let db: { url: string; name: string };
  let api: Proc | undefined;
  let src: RtspSource | undefined;
  const prefix = `shouhu-orphans-${randomBytes(4).toString('hex')}`;

  afterAll(async () => {
    await stop(api);
    await src?.stop();
    if (db) await releaseDatabase(db.name);
    await deleteRedisPrefix(prefix);
  });

  /** Boots the compiled service on the test database and starts `n` RTSP cameras' streams; returns the players' tickets. */
  async function bootAndPlay(n: number, env: NodeJS.ProcessEnv = {}): Promise<{ base: string; urls: string[] }> {
    db ??= await createDatabase({ migrated: true });
    src ??= await startRtspSource();
    const port = await freePort();
    api = start('node', ['dist/main.js'], {
      ...process.env,
      NODE_ENV: 'test',
      ROLE: 'all',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      ADMIN_USERNAME: 'admin',
      ADMIN_PASSWORD: 'orphan-test-password',
      LOG_LEVEL: 'error',
      SHOUHU__VIDEO__LINGER_MS: '60000',
      ...env,
    });
    const base = `http://127.0.0.1:${port}`;
    await waitHttp(`${base}/health/ready`, 60000, api);
    const call = async (method: string, path: string, body?: unknown, token?: string): Promise<Record<string, string>> => {
      const res = await fetch(base + path, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = (await res.json().catch(() => ({}))) as Record<string, string>;
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const { accessToken } = await call('POST', '/api/v1/auth/login', { username: 'admin', password: 'orphan-test-password' });
    const code = `S${++schools}`;
    const district = await call('POST', '/api/v1/districts', { code: `d${schools}`, name: '区' }, accessToken);
    const zone = await call('POST', '/api/v1/zones', { districtId: district.id, code: `Z${schools}`, name: '学区', level: 'primary' }, accessToken);
    const school = await call(
      'POST',
      '/api/v1/schools',
      { districtId: district.id, zoneId: zone.id, code, name: '小学', type: 'primary', timetable: TIMETABLE },
      accessToken,
    );
    const urls: string[] = [];
    for (let i = 1; i <= n; i++) {
      const id = `340200000013200${schools}00${i}`.padEnd(20, '0');
      const cam = await call(
        'POST',
        '/api/v1/cameras',
        { schoolId: school.id, deviceId: id, channelId: id, name: `cam ${i}`, areaKind: 'main_gate', streamUrl: src.url },
        accessToken,
      );
      urls.push((await call('POST', `/api/v1/cameras/${cam.id}/stream`, undefined, accessToken)).url);
    }
    return { base, urls };
  }
  let schools = 0;

  it('SIGKILL of the service takes its ffmpeg processes with it', async () => {
    // A frozen camera keeps ffmpeg waiting, not writing: only the kernel's parent-death signal ends it in time.
    await bootAndPlay(2, { SHOUHU__VIDEO__RTSP_TIMEOUT_MS: '60000', SHOUHU__VIDEO__STALL_TIMEOUT_MS: '60000' });
    const ffmpegOf = (pid: number) => children(pid).filter((c) => c.comm === 'ffmpeg');
    // Two remuxers and the warm JPEG encoders (video.snapshotWarmEncoders: 2, started once boot checked ffmpeg).
    await until(() => ffmpegOf(api!.child.pid!).length === 4, 10000, 'two remuxers and two warm JPEG encoders');
    const ffmpegs = ffmpegOf(api!.child.pid!);

    src!.freeze();
    api!.child.kill('SIGKILL');
    await api!.exited;
    await until(() => ffmpegs.every((f) => !alive(f.pid)), 5000, `ffmpeg ${ffmpegs.map((f) => f.pid).join(', ')} to die with the service`);
    await src!.stop();
    src = undefined;
  });

  it('shuts down gracefully with players connected: they are told, ffmpeg stops, the process exits', async () => {
    const { base, urls } = await bootAndPlay(1);
    const viewer = await openViewer(base, urls[0]);
    await viewer.frames(5);
    const ffmpegs = children(api!.child.pid!).filter((c) => c.comm === 'ffmpeg');
    api!.child.kill('SIGTERM');
    await viewer.closed;
    expect(viewer.watched.errors.map((e) => e.code)).toContain('VIDEO.SHUTTING_DOWN');
    const code = await Promise.race([api!.exited, new Promise((r) => setTimeout(() => r('still running after 15 s'), 15000))]);
    expect(code).not.toBe('still running after 15 s'); // Nest re-raises SIGTERM after closing: exit code null, signal SIGTERM
    // Stopped by the shutdown (or, for one still finishing, by the kernel as the service exits).
    await until(() => ffmpegs.every((f) => !alive(f.pid)), 3000, 'its ffmpeg processes to be gone');
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SipServer } from '../../../src/modules/gb28181/sip-server';
import { auth, seedMinimal, startApp, TestApp } from '../harness';
import { Clip, ClipOptions, makeClip } from './elementary';
import { GbCamera, GbCameraOptions } from './gb-camera';

export const GB_PLATFORM_ID = '34020000002000000001';

/** A camera of the site: its registry id, its device id and, when it registers, the simulated device. */
export interface SiteCamera {
  id: string;
  deviceId: string;
  cam?: GbCamera;
}

/**
 * A service with the GB/T 28181 SIP server and live video on, a seeded district (seedMinimal),
 * an admin token, a test clip and a private evidence folder — the common ground of the video
 * tests (protocol, evidence, browser). RTP ports: a random block of `rtpPorts` from 20000 up.
 */
export interface GbVideoSite {
  t: TestApp;
  admin: string;
  seed: Awaited<ReturnType<typeof seedMinimal>>;
  clip: Clip;
  sipPort: number;
  evidenceDir: string;
  /**
   * A registry camera in school A; with `device` (options for the simulated device, `{}` for the
   * defaults) a device that registers and plays, without it a device that never registers (offline).
   */
  camera(o?: { areaKind?: string; name?: string; deviceId?: string; device?: Partial<GbCameraOptions> }): Promise<SiteCamera>;
  close(): Promise<void>;
}

let seq = 0;
/** A GB/T 28181 camera id (20 digits, type 132) unique in this test process. */
export const gbCameraId = () => `3402000000132${String(process.pid % 1000).padStart(3, '0')}${String(++seq).padStart(4, '0')}`;

export async function startGbVideoSite(o: {
  password: string;
  clip?: ClipOptions;
  rtpPorts?: number;
  video?: Record<string, unknown>;
  gb28181?: Record<string, unknown>;
  overrides?: Record<string, unknown>;
}): Promise<GbVideoSite> {
  const clip = await makeClip(o.clip ?? { codec: 'h264', width: 320, height: 240, gop: 25 });
  const ports = o.rtpPorts ?? 100;
  const base = 20000 + Math.floor(Math.random() * Math.floor(30000 / ports)) * ports;
  const evidenceDir = mkdtempSync(join(tmpdir(), 'evidence-'));
  const t = await startApp({
    gb28181: { enabled: true, host: '127.0.0.1', port: 0, platformId: GB_PLATFORM_ID, defaultPassword: o.password, rateLimitPerSecond: 0, ...o.gb28181 },
    video: { rtpHost: '127.0.0.1', rtpPortMin: base, rtpPortMax: base + ports - 1, evidenceDir, ...o.video },
    liveness: { sweepEveryMs: 0 },
    ...o.overrides,
  });
  const sipPort = t.app.get(SipServer).port;
  const admin = (await t.userToken('admin')).token;
  const seed = await seedMinimal(t, admin);
  const cams: GbCamera[] = [];
  return {
    t,
    admin,
    seed,
    clip,
    sipPort,
    evidenceDir,
    async camera({ areaKind = 'main_gate', name, deviceId = gbCameraId(), device } = {}) {
      const res = await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: seed.schoolA.id, deviceId, channelId: deviceId, name: name ?? `摄像机${deviceId.slice(-3)}`, areaKind })
        .expect(201);
      if (!device) return { id: res.body.id as string, deviceId };
      const cam = new GbCamera({ deviceId, password: o.password, platform: { host: '127.0.0.1', port: sipPort, id: GB_PLATFORM_ID }, clip, ...device });
      cams.push(cam);
      await cam.start();
      return { id: res.body.id as string, deviceId, cam };
    },
    async close() {
      for (const c of cams) await c.stop();
      await t?.close();
      rmSync(evidenceDir, { recursive: true, force: true });
    },
  };
}

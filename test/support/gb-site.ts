import * as iconv from 'iconv-lite';
import { SipServer } from '../../src/modules/gb28181/sip-server';
import { auth, seedMinimal, startApp, TestApp } from './harness';
import { GbCamera, GbCameraOptions } from './video/gb-camera';

export const GB_PLATFORM = '34020000002000000001';

/**
 * A service with the GB/T 28181 SIP server on 127.0.0.1 (no sweeps of its own: tests sweep), an
 * admin token, optionally a seeded district, and simulated devices (test/support/video/gb-camera.ts,
 * a real SIP UA over UDP/TCP) that are stopped with it — the common ground of the GB/T 28181
 * protocol specs (fleet, hostile). Video tests use video/gb-video-site.ts.
 */
export interface GbSite {
  t: TestApp;
  admin: string;
  /** The seeded district (seedMinimal) when started with `seed: true`. */
  seed: Awaited<ReturnType<typeof seedMinimal>> | null;
  sipPort: number;
  /** A simulated device speaking as `deviceId` (not started), stopped at `close`. */
  sim(deviceId: string, o?: Partial<GbCameraOptions>): GbCamera;
  /**
   * A device with this id placed in `schoolId` (when given), started (registered unless
   * `register: false`); resolves with the SN of the platform's Catalog query when it registered.
   */
  device(
    deviceId: string,
    o?: Partial<GbCameraOptions> & { schoolId?: string | null; charset?: string; register?: boolean },
  ): Promise<{ deviceId: string; dev: GbCamera; sn: string }>;
  /** The sum of a Prometheus counter's samples with these labels, from /metrics. */
  metric(name: string, labels: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startGbSite(o: {
  password: string;
  gb28181?: Record<string, unknown>;
  overrides?: Record<string, unknown>;
  seed?: boolean;
}): Promise<GbSite> {
  const t = await startApp({
    gb28181: { enabled: true, host: '127.0.0.1', port: 0, platformId: GB_PLATFORM, defaultPassword: o.password, ...o.gb28181 },
    liveness: { sweepEveryMs: 0 },
    ...o.overrides,
  });
  const sipPort = t.app.get(SipServer).port;
  const admin = (await t.userToken('admin')).token;
  const seed = o.seed ? await seedMinimal(t, admin) : null;
  const sims: GbCamera[] = [];
  const sim = (deviceId: string, d: Partial<GbCameraOptions> = {}) => {
    const dev = new GbCamera({ deviceId, password: o.password, platform: { host: '127.0.0.1', port: sipPort, id: GB_PLATFORM }, keepaliveMs: 0, ...d });
    sims.push(dev);
    return dev;
  };
  return {
    t,
    admin,
    seed,
    sipPort,
    sim,
    async device(deviceId, { schoolId, charset, register, ...d } = {}) {
      if (schoolId !== undefined || charset)
        await t
          .http()
          .patch(`/api/v1/gb28181/devices/${deviceId}`)
          .set(auth(admin))
          .send({ ...(schoolId !== undefined ? { schoolId } : {}), ...(charset ? { charset } : {}) })
          .expect(200);
      const dev = sim(deviceId, d);
      await dev.start({ register });
      return { deviceId, dev, sn: register === false ? '' : (await dev.waitForQuery('Catalog')).sn };
    },
    async metric(name, labels) {
      const text = (await t.http().get('/metrics').expect(200)).text;
      let sum = 0;
      for (const line of text.split('\n'))
        if (line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
      return sum;
    },
    async close() {
      for (const d of sims) await d.stop();
      await t.close();
    },
  };
}

/**
 * A device's Response MESSAGE body (GB/T 28181-2016 §A.2.6) to a platform query or command: its
 * CmdType, SN and DeviceID, then `inner` (XML), as GB18030 (declared GB2312, as most firmware does) or UTF-8 bytes.
 */
export function gbResponse(o: { cmdType: string; sn: string; deviceId: string; inner: string; enc?: 'GB18030' | 'UTF-8' }): Buffer {
  const enc = o.enc ?? 'GB18030';
  const xml =
    `<?xml version="1.0" encoding="${enc === 'UTF-8' ? 'UTF-8' : 'GB2312'}"?>\r\n<Response>\r\n<CmdType>${o.cmdType}</CmdType>\r\n` +
    `<SN>${o.sn}</SN>\r\n<DeviceID>${o.deviceId}</DeviceID>\r\n${o.inner}</Response>\r\n`;
  return enc === 'UTF-8' ? Buffer.from(xml, 'utf8') : iconv.encode(xml, 'gb18030');
}

/**
 * Plays the device's side of a command or query (issue 16 §6): waits for the platform's next
 * MANSCDP request of `cmdType`, then answers it with Response MESSAGEs of its SN — one per entry of
 * `parts` (a multi-part RecordInfo), or none (a device that takes the request and never answers).
 * Resolves with the request as the device received it.
 */
export async function answerNext(
  dev: GbCamera,
  cmdType: string,
  parts: { deviceId?: string; inner: string; enc?: 'GB18030' | 'UTF-8' }[],
): Promise<{ root: string; cmdType: string; sn: string; body: string }> {
  const q = await dev.waitForQuery(cmdType);
  for (const p of parts) {
    const status = await dev.message(gbResponse({ cmdType, sn: q.sn, deviceId: p.deviceId ?? dev.o.deviceId, inner: p.inner, enc: p.enc }));
    if (status !== 200) throw new Error(`the platform answered ${status} to a ${cmdType} Response`);
  }
  return q;
}

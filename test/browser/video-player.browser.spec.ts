import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { SipServer } from '../../src/modules/gb28181/sip-server';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { makeClip } from '../support/video/elementary';
import { GbCamera } from '../support/video/gb-camera';

/**
 * The live player in real headless Chromium (Debian's /usr/bin/chromium): the module's own page
 * at /console/player (same strict CSP as the console, plus media-src blob: for MSE) asks for a
 * stream ticket, opens the WebSocket and feeds fMP4 to Media Source Extensions; the <video>
 * plays: its currentTime advances and a frame drawn to a canvas is not blank. The source is the
 * simulated GB/T 28181 camera (ffmpeg test pattern as real-camera PS over RTP). Leaves a
 * screenshot in test/artifacts/player.png.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', 'artifacts');
const PLATFORM = '34020000002000000001';
const PASSWORD = 'cam-pass-browser';
type VideoEl = { currentTime: number; videoWidth: number; videoHeight: number; readyState: number };
type G = {
  document: {
    querySelector: (s: string) => VideoEl;
    createElement: (t: string) => {
      width: number;
      height: number;
      getContext: (k: string) => {
        drawImage: (v: unknown, x: number, y: number) => void;
        getImageData: (x: number, y: number, w: number, h: number) => { data: Uint8ClampedArray };
      };
    };
  };
};

describe('live video player in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let cam: GbCamera;
  let cameraId: string;
  let token: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const base = 24000 + Math.floor(Math.random() * 300) * 100;
    t = await startApp({
      gb28181: { enabled: true, host: '127.0.0.1', port: 0, platformId: PLATFORM, defaultPassword: PASSWORD, rateLimitPerSecond: 0 },
      video: { rtpHost: '127.0.0.1', rtpPortMin: base, rtpPortMax: base + 49 },
      liveness: { sweepEveryMs: 0 },
    });
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const deviceId = '34020000001320000777';
    cameraId = (
      await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: seed.schoolA.id, deviceId, channelId: deviceId, name: '南大门', areaKind: 'main_gate' })
        .expect(201)
    ).body.id;
    cam = new GbCamera({
      deviceId,
      password: PASSWORD,
      platform: { host: '127.0.0.1', port: t.app.get(SipServer).port, id: PLATFORM },
      clip: await makeClip({ width: 640, height: 360, bitrateKbps: 800 }),
    });
    await cam.start();
    token = (await t.userToken('operator')).token;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    page = await (await browser.newContext({ viewport: { width: 800, height: 560 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await cam?.stop();
    await t?.close();
  });

  it('plays a GB/T 28181 camera: currentTime advances and the picture is not blank', async () => {
    const res = await page.goto(`${t.baseUrl}/console/player/#camera=${cameraId}&token=${token}`);
    expect(res!.headers()['content-security-policy']).toContain("media-src 'self' blob:");
    expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.waitForSelector('body[data-player="playing"]', { timeout: 15000 });
    const t0 = await page.evaluate(() => (globalThis as unknown as G).document.querySelector('video').currentTime);
    await page.waitForFunction((start) => (globalThis as unknown as G).document.querySelector('video').currentTime > start + 1, t0, { timeout: 15000 });
    const frame = await page.evaluate(() => {
      const doc = (globalThis as unknown as G).document;
      const v = doc.querySelector('video');
      const c = doc.createElement('canvas');
      c.width = v.videoWidth;
      c.height = v.videoHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(v, 0, 0);
      const { data } = ctx.getImageData(0, 0, c.width, c.height);
      const colours = new Set<number>();
      let lit = 0;
      for (let i = 0; i < data.length; i += 4 * 97) {
        colours.add((data[i] >> 4) * 256 + (data[i + 1] >> 4) * 16 + (data[i + 2] >> 4));
        if (data[i] + data[i + 1] + data[i + 2] > 60) lit++;
      }
      return { width: c.width, height: c.height, colours: colours.size, lit, samples: Math.ceil(data.length / (4 * 97)) };
    });
    expect(frame).toMatchObject({ width: 640, height: 360 });
    expect(frame.colours).toBeGreaterThan(8); // testsrc2: colour bars and a moving pattern
    expect(frame.lit / frame.samples).toBeGreaterThan(0.3);
    expect(cam.count('INVITE')).toBe(1);
    expect(pageErrors).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'player.png') });
  });

  it('shows the reason when the camera cannot be played (device offline)', async () => {
    const admin = (await t.userToken('admin')).token;
    const school = (await t.http().get(`/api/v1/cameras/${cameraId}`).set(auth(admin)).expect(200)).body.schoolId;
    const deviceId = '34020000001320000778'; // never registers
    const offline = (
      await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: school, deviceId, channelId: deviceId, name: '北门', areaKind: 'main_gate' })
        .expect(201)
    ).body.id;
    const p2 = await browser.newPage();
    await p2.goto(`${t.baseUrl}/console/player/#camera=${offline}&token=${token}`);
    await p2.waitForSelector('body[data-player="error"]', { timeout: 15000 });
    expect(await p2.textContent('#status')).toBe('设备离线');
    await p2.close();
  });
});

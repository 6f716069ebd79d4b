import type { Browser, Page } from 'playwright-core';
import { ConsolePage, launchChromium, openConsole, PHONE, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';
import { until } from '../support/processes';
import { SnapshotCamera, startSnapshotCamera } from '../support/video/snapshot-camera';

/**
 * The P1 takeover shows what the alarm's cameras saw before anyone acknowledges (the product's
 * point: every alarm reaches a person who can see what is happening). Two cameras at the gate with
 * an ONVIF snapshot URI (our fake camera, HTTP Digest) give the evidence rounds at the raise and
 * 2 s later; the takeover shows each camera's latest picture — the second round replaces the first
 * without a reload — with when it was taken, and a live view per camera: for these snapshot-only
 * cameras (no stream address), the camera's latest snapshot, refreshed, saying there is no live
 * stream, with no error in the browser's console. On a phone (390×844) in
 * English and on a desk in Chinese; no raw keys, no page errors. Leaves
 * test/artifacts/takeover-pictures-desk.png and takeover-pictures-phone.png.
 */
const ACCOUNT = { username: 'admin', password: 'Snap-Pass-takeover' };

describe('P1 takeover shows the cameras’ pictures (Chromium)', () => {
  let t: TestApp;
  let browser: Browser;
  let cam: SnapshotCamera;
  let raiser: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const cameraIds: string[] = [];
  const open: ConsolePage[] = [];

  beforeAll(async () => {
    t = await startApp({
      video: { onvifAllowedNetworks: ['127.0.0.0/8'], snapshotCacheMs: 0, snapshotFailureMemoMs: 0, snapshotUriTimeoutMs: 3000 },
      alarms: { evidenceSnapshotSeconds: [0, 2] },
    });
    const admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    raiser = (await t.userToken('operator', undefined, 'raiser')).token;
    await t.userToken('operator', undefined, 'duty_op');
    cam = await startSnapshotCamera(ACCOUNT);
    for (const n of [1, 2]) {
      const id = `3402000000132${String(50000000 + n).slice(1)}`;
      const res = await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: seed.schoolA.id, deviceId: id, channelId: id, name: `大门${n}`, location: '南大门', areaKind: 'main_gate', streamUrl: '' })
        .expect(201);
      const cameraId = res.body.id as string;
      await t
        .http()
        .patch(`/api/v1/cameras/${cameraId}/media`)
        .set(auth(admin))
        .send({ onvifHost: cam.host, onvifPort: 80, onvifUsername: ACCOUNT.username, onvifPassword: ACCOUNT.password })
        .expect(200);
      // As a probe keeps it (GetSnapshotUri): this camera gives pictures, and has no stream address.
      await t.db.query(`UPDATE camera_media_settings SET snapshot_url = $2 WHERE camera_id = $1`, [cameraId, cam.url('/snap')]);
      cameraIds.push(cameraId);
    }
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const cp of open.splice(0)) await cp.close();
    const raised = (await t.http().get('/api/v1/incidents?status=raised&limit=500').set(auth(raiser)).expect(200)).body as { items: { id: string }[] };
    for (const i of raised.items) await t.http().post(`/api/v1/incidents/${i.id}/acknowledge`).set(auth(raiser)).send({});
  });

  afterAll(async () => {
    await browser?.close();
    await cam?.stop();
    await t?.close();
  });

  const raise = async () =>
    (
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(raiser))
        .send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '南大门', areaKind: 'main_gate' })
        .expect(201)
    ).body as { id: string; priority: string; cameras: { id: string }[] };

  /** The evidence id each camera's tile shows now ('' while none). */
  const shownIds = (page: Page) =>
    page.$$eval('#takeover .takeover-shot', (els) =>
      els.map((e) => [e.getAttribute('data-camera-id'), e.querySelector('.evidence-picture[data-state="shown"]')?.getAttribute('data-evidence-id') ?? '']),
    );
  const evidenceIds = async (incidentId: string, afterSeconds: number) =>
    (
      (await t.http().get(`/api/v1/incidents/${incidentId}`).set(auth(raiser)).expect(200)).body as {
        timeline: { action: string; data: { cameraId?: string; evidenceId?: string; afterSeconds?: number } | null }[];
      }
    ).timeline
      .filter((e) => e.action === 'evidence' && e.data?.afterSeconds === afterSeconds)
      .map((e) => [e.data!.cameraId, e.data!.evidenceId]);

  it('desk, Chinese: each camera’s latest picture before acknowledging, the second round replacing the first; a live view per camera', async () => {
    const inc = await raise();
    expect(inc.priority).toBe('P1');
    expect(inc.cameras.map((c) => c.id).sort()).toEqual([...cameraIds].sort());
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    const { page } = cp;
    // Every error the browser logs (a refused request — 409, 503 — is one).
    const consoleErrors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    await cp.login('duty_op', PASSWORD);
    await page.waitForSelector(`#takeover[data-incident-id="${inc.id}"]`);
    // Both rounds' pictures exist (the +2 s round too) — the takeover ends up on the latest of each camera, no reload.
    await until(async () => (await evidenceIds(inc.id, 2)).length === 2, 20000, 'the +2 s evidence round');
    const latest = Object.fromEntries(await evidenceIds(inc.id, 2));
    await page.waitForFunction(
      (want) =>
        Object.entries(want as Record<string, string>).every(
          ([cam, ev]) =>
            !!(globalThis as unknown as { document: { querySelector: (s: string) => unknown } }).document.querySelector(
              `#takeover .takeover-shot[data-camera-id="${cam}"] .evidence-picture[data-evidence-id="${ev}"][data-state="shown"] img`,
            ),
        ),
      latest,
      { timeout: 20000 },
    );
    expect(Object.fromEntries(await shownIds(page))).toEqual(latest);
    // Each says when it was taken, and that it is the camera's own picture.
    expect(await page.$$eval('#takeover .takeover-shot .evidence-source', (els) => els.map((e) => e.getAttribute('data-source')))).toEqual([
      'snapshot_uri',
      'snapshot_uri',
    ]);
    expect(await page.$$eval('#takeover .takeover-shot .evidence-time', (els) => els.every((e) => /\d{2}:\d{2}:\d{2}/.test(e.textContent ?? '')))).toBe(true);
    // Still unacknowledged: the operator saw the pictures first.
    expect((await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(raiser)).expect(200)).body.status).toBe('raised');
    // The live view opens in the takeover. These cameras have a snapshot URI and no stream address: the player shows the
    // camera's latest snapshot, fetched again every few seconds, with its time and a note that there is no live stream —
    // never "no stream address", and no refused request in the browser's console.
    await page.click(`#takeover .takeover-shot[data-camera-id="${cameraIds[0]}"] .takeover-live`);
    const player = `#takeover .camera-player[data-camera="${cameraIds[0]}"]`;
    await page.waitForSelector(`${player}[data-state="snapshot"] img.camera-snapshot`, { timeout: 10000 });
    expect(await page.textContent(`${player} .snapshot-only`)).toBe('无实时视频流，显示摄像机最新抓图');
    const firstAt = await page.getAttribute(`${player} .snapshot-time`, 'datetime');
    expect(Date.parse(firstAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(await page.textContent(`${player} .snapshot-time`)).toMatch(/\d{2}:\d{2}:\d{2}/);
    expect(await page.$eval(`${player} img.camera-snapshot`, (i) => (i as unknown as { naturalWidth: number }).naturalWidth)).toBe(64);
    const asked = cam.requests.filter((r) => r.path === '/snap' && r.auth === 'ok').length;
    await page.waitForFunction(
      ([sel, at]) =>
        (globalThis as unknown as { document: { querySelector: (s: string) => { getAttribute: (a: string) => string | null } | null } }).document
          .querySelector(sel)
          ?.getAttribute('datetime') !== at,
      [`${player} .snapshot-time`, firstAt] as const,
      { timeout: 10000 },
    );
    expect(cam.requests.filter((r) => r.path === '/snap' && r.auth === 'ok').length).toBeGreaterThan(asked);
    expect(await page.$(`${player} .error`)).toBeNull();
    expect(consoleErrors).toEqual([]);
    expect(await page.textContent(`#takeover .takeover-shot[data-camera-id="${cameraIds[0]}"] .takeover-live`)).toContain('关闭画面');
    expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);
    await cp.screenshot('takeover-pictures-desk');
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });

  it('phone, English: the pictures fit the screen, the acknowledge button stays reachable, no raw keys', async () => {
    const inc = await raise();
    const cp = await openConsole(browser, t.baseUrl, { viewport: PHONE, isMobile: true });
    open.push(cp);
    const { page } = cp;
    await page.evaluate(() =>
      (globalThis as unknown as { localStorage: { setItem: (k: string, v: string) => void } }).localStorage.setItem('shouhu.lang', 'en'),
    );
    await page.reload();
    await page.waitForSelector('#login-btn');
    await cp.login('duty_op', PASSWORD);
    await page.waitForSelector(`#takeover[data-incident-id="${inc.id}"]`);
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: { querySelectorAll: (s: string) => { length: number } } }).document.querySelectorAll(
          '#takeover .takeover-shot .evidence-picture[data-state="shown"] img',
        ).length === 2,
      undefined,
      { timeout: 20000 },
    );
    expect(await page.textContent('.takeover-title')).toContain('Priority 1 alarm');
    expect(await page.textContent(`#takeover .takeover-shot[data-camera-id="${cameraIds[1]}"] .takeover-live`)).toContain('Live view');
    const boxes = await page.$$eval('#takeover .takeover-shot', (els) =>
      els.map((e) => (e as unknown as { getBoundingClientRect: () => { right: number; width: number } }).getBoundingClientRect()),
    );
    for (const b of boxes) {
      expect(b.right).toBeLessThanOrEqual(PHONE.width);
      expect(b.width).toBeGreaterThan(100);
    }
    const width = await page.evaluate(
      () => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth,
    );
    expect(width).toBeLessThanOrEqual(PHONE.width);
    await page.locator('#takeover-ack').scrollIntoViewIfNeeded();
    expect(await page.isVisible('#takeover-ack')).toBe(true);
    expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);
    await cp.screenshot('takeover-pictures-phone');
    await page.click('#takeover-ack');
    await page.waitForSelector('#takeover', { state: 'detached' });
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });
});

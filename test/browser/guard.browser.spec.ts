import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32, deflateSync } from 'node:zlib';
import { join } from 'node:path';
import type { Browser, Route } from 'playwright-core';
import { DataSource } from 'typeorm';
import { CONSOLE_CSP } from '../../src/modules/console/console-web';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { ConsolePage, fakeCameraArgs, launchChromium, openConsole, PHONE, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * The school guard's phone app (issue 13), in headless Chromium at 390×844 against the built
 * console: the guard's home after login; one-click alarm with the phone's position whose answer
 * is lost on the way back — the retry with the same Idempotency-Key yields the one incident — and
 * cancelling it as a false alarm; protection-post check-in by scanning the post's QR code with
 * the camera (Chromium's fake camera plays a video made here from the real token); the school's
 * own rectification tasks (closed with a photo of the fix from the phone camera), patrol log and compliance with its reasons; English without
 * raw keys; an alarm-button test started from the phone; the web app manifest and icons under the console's CSP. Screenshots go to test/artifacts/.
 */
type Win = { document: { documentElement: { scrollWidth: number } } };

/** A w×h PNG of one colour (what a phone might hand the page; the page re-encodes it as JPEG). */
function png(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3, 0x80)]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('guard phone surface in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let dir: string;
  const open: ConsolePage[] = [];

  const expectClean = async (cp: ConsolePage) => {
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  };
  const phoneWidth = (cp: ConsolePage) => cp.page.evaluate(() => (globalThis as unknown as Win).document.documentElement.scrollWidth);
  const guardConsole = async (b: Browser, opts: Parameters<typeof openConsole>[2] = {}) => {
    const cp = await openConsole(b, t.baseUrl, { viewport: PHONE, isMobile: true, ...opts });
    open.push(cp);
    await cp.login('guard_a', PASSWORD);
    await cp.page.waitForSelector('#guard');
    await cp.page.waitForSelector('body[data-conn="online"]');
    return cp;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shouhu-guard-'));
    t = await startApp({ video: { evidenceDir: join(dir, 'evidence') } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    await t.userToken('school_security', seed.schoolA.id, 'guard_a');
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const cp of open.splice(0)) await cp.close();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is installable: manifest and icons served under /console with the CSP, linked from the page', async () => {
    const page = await t.http().get('/console/').expect(200);
    expect(page.text).toContain('<link rel="manifest" href="/console/manifest.webmanifest" />');
    const res = await t.http().get('/console/manifest.webmanifest').expect(200);
    expect(res.headers['content-type']).toMatch(/application\/manifest\+json/);
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    const manifest = JSON.parse(res.text) as { start_url: string; scope: string; display: string; icons: { src: string; sizes: string; purpose: string }[] };
    expect(manifest).toMatchObject({ start_url: '/console/', scope: '/console/', display: 'standalone' });
    expect(manifest.icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
    expect(manifest.icons.some((i) => i.purpose === 'maskable')).toBe(true);
    for (const icon of manifest.icons) {
      const png = await t.http().get(icon.src).buffer(true).expect(200);
      expect(png.headers['content-type']).toBe('image/png');
      const [w, h] = [(png.body as Buffer).readUInt32BE(16), (png.body as Buffer).readUInt32BE(20)];
      expect(`${w}x${h}`).toBe(icon.sizes);
    }
  });

  it('raises an alarm with one press; the answer lost on the way back is retried with the same key and yields one incident; then cancels it as false', async () => {
    const cp = await guardConsole(browser, { permissions: ['geolocation'], geolocation: { latitude: 31.2304, longitude: 121.4737, accuracy: 12 } });
    const { page } = cp;
    expect(page.url()).toMatch(/\/console\/guard$/);
    expect(await phoneWidth(cp)).toBeLessThanOrEqual(PHONE.width);
    // Only the guard's actions: no operator list, detail or acknowledge buttons.
    expect(await page.$$('#incidents, #detail, #act-acknowledge, #act-resolve')).toHaveLength(0);
    await page.waitForSelector('#alarm-geo[data-geo="ok"]');
    await cp.screenshot('guard-alarm-phone');

    // The first try reaches the server (committed) but its answer never comes back to the phone.
    const keys: string[] = [];
    let lost = 0;
    await page.route('**/api/v1/incidents', async (route: Route) => {
      if (route.request().method() !== 'POST') return route.continue();
      keys.push((await route.request().headerValue('idempotency-key')) ?? '');
      if (lost++ === 0) {
        await route.fetch();
        return route.abort('connectionreset');
      }
      return route.continue();
    });
    await page.click('[data-type="medical"]');
    await page.fill('#alarm-place', '南门岗亭');
    // A photo taken with the phone: re-encoded to a JPEG here, sent once the alarm is received.
    await page.setInputFiles('#alarm-photo', { name: 'IMG_0001.png', mimeType: 'image/png', buffer: png(2400, 1200) });
    await page.waitForSelector('#alarm-photo-preview');
    await page.click('#alarm-btn');
    await page.waitForSelector('#alarm-status[data-phase="retrying"]');
    expect(await page.isDisabled('#alarm-btn')).toBe(true); // no second alarm while this one is on its way
    await page.waitForSelector('#alarm-status[data-phase="received"]', { timeout: 15000 });
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^guard-[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);

    const list = (await t.http().get('/api/v1/incidents').query({ schoolId: seed.schoolA.id }).set(auth(admin)).expect(200)).body as {
      total: number;
      items: { id: string; type: string; location: string; note: string; status: string; source: string }[];
    };
    expect(list.total).toBe(1);
    const [inc] = list.items;
    expect(inc).toMatchObject({ type: 'medical', location: '南门岗亭', status: 'raised' });
    expect((await cp.state()) as unknown).toMatchObject({ alarm: { phase: 'received', incidentId: inc.id } });
    expect(await page.textContent('#alarm-status')).toContain('指挥中心已收到报警');
    // The position is the incident's own (not in the note); the photo is its evidence, scaled to 1600 px.
    await page.waitForSelector('#alarm-photo-status[data-photo="sent"]');
    const full = (await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(admin)).expect(200)).body as {
      note: string;
      reporterPosition: unknown;
      timeline: { action: string; actorType: string; data: { width: number; height: number } }[];
    };
    expect(full.note).toBe('');
    expect(full.reporterPosition).toEqual({ latitude: 31.2304, longitude: 121.4737, accuracyM: 12 });
    expect(full.timeline.filter((e) => e.action === 'photo').map((e) => [e.actorType, e.data.width, e.data.height])).toEqual([['user', 1600, 800]]);
    await cp.screenshot('guard-alarm-received');

    // The school's open alarms, live: it is there with a cancel button; cancelled as a false alarm it leaves the list.
    const row = `#guard-incidents li[data-incident-id="${inc.id}"]`;
    await page.waitForSelector(row);
    await page.click(`${row} .cancel-btn`);
    await page.waitForSelector(row, { state: 'detached' });
    const after = (await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(admin)).expect(200)).body as { status: string; cancelReason: string };
    expect(after).toMatchObject({ status: 'cancelled', cancelReason: '误按' });
    await page.click('#alarm-done');
    expect(await page.$('#alarm-status')).toBeNull();
    await expectClean(cp);
  });

  it('an alarm not yet confirmed survives a reload: the page sends it again with the same key, and there is one incident', async () => {
    const h = auth(admin);
    const count = async () =>
      ((await t.http().get('/api/v1/incidents').query({ schoolId: seed.schoolA.id }).set(h).expect(200)).body as { total: number }).total;
    const before = await count();
    const cp = await guardConsole(browser);
    const { page } = cp;
    // The network is gone: every try fails before reaching the server.
    const keys: string[] = [];
    await page.route('**/api/v1/incidents', async (route: Route) => {
      if (route.request().method() !== 'POST') return route.continue();
      keys.push((await route.request().headerValue('idempotency-key')) ?? '');
      return route.abort('internetdisconnected');
    });
    await page.fill('#alarm-place', '操场');
    await page.click('#alarm-btn');
    await page.waitForSelector('#alarm-status[data-phase="retrying"]');
    expect(await count()).toBe(before);
    await cp.screenshot('guard-alarm-retrying');

    // The phone reloads the page with the network back: the same alarm goes, once.
    await page.unroute('**/api/v1/incidents');
    await page.route('**/api/v1/incidents', async (route: Route) => {
      if (route.request().method() === 'POST') keys.push((await route.request().headerValue('idempotency-key')) ?? '');
      return route.continue();
    });
    await page.reload();
    await page.waitForSelector('#alarm-status[data-phase="received"]', { timeout: 15000 });
    expect(new Set(keys).size).toBe(1);
    expect(await count()).toBe(before + 1);
    await page.click('#alarm-done');
    // Done: nothing left to resend on the next visit.
    await page.reload();
    await page.waitForSelector('#alarm-btn:not([disabled])');
    expect(await page.$('#alarm-status')).toBeNull();
    expect(await count()).toBe(before + 1);
    await expectClean(cp);
  });

  it('checks in at a protection post by scanning its QR code with the phone camera', async () => {
    const post = (
      await t
        .http()
        .post('/api/v1/protection-posts')
        .set(auth(admin))
        .send({ code: 'SA-HXG1', schoolId: seed.schoolA.id, gate: '南大门', windows: [{ kind: 'arrival' }, { kind: 'dismissal' }], requiredHeadcount: 1 })
        .expect(201)
    ).body as { id: string };
    // The bureau prints the post's code from the console (its print page draws the signed payload
    // of today's window with the qrcode library; the post's own token is never sent, attack F8b).
    const png = join(dir, 'post-qr.png');
    const video = join(dir, 'post-qr.y4m');
    await t.userToken('supervisor', undefined, 'qr_printer');
    // The earlier tests' alarms, acknowledged: a P1 left waiting takes over every desk surface, the print page
    // too (layout/DeskAlerts.vue), and its dialog would cover the sheet the camera is shown.
    const raised = (await t.http().get('/api/v1/incidents').query({ status: 'raised' }).set(auth(admin)).expect(200)).body as { items: { id: string }[] };
    for (const i of raised.items) await t.http().post(`/api/v1/incidents/${i.id}/acknowledge`).set(auth(admin)).send({}).expect(200);
    // Straight to the print page (the header links there too).
    const printer = await openConsole(browser, t.baseUrl, { path: '/console/post-qr' });
    open.push(printer);
    await printer.login('qr_printer', PASSWORD);
    await printer.page.waitForSelector('#post-qr');
    expect(await printer.page.getAttribute('#nav-postQr', 'href')).toBe('/console/post-qr');
    await printer.page.selectOption('#qr-school', seed.schoolA.id);
    const sheet = printer.page.locator(`section.sheet[data-post-id="${post.id}"] img.qr`);
    await sheet.waitFor();
    const printed = (await printer.state()) as { postQr?: { posts: { id: string; payload: string }[] } };
    const { payload } = (await t.http().get(`/api/v1/protection-posts/${post.id}/qr`).set(auth(admin)).expect(200)).body as { payload: string };
    expect(printed.postQr?.posts).toEqual([{ id: post.id, payload }]);
    expect(await rawKeysOnPage(printer.page)).toEqual([]);
    await printer.screenshot('post-qr-print');
    await expectClean(printer);
    // The printed code as the camera sees it: the sheet's QR image on white, as a looping video file.
    await sheet.screenshot({ path: png });
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-loop',
      '1',
      '-i',
      png,
      '-vf',
      'pad=640:480:(ow-iw)/2:(oh-ih)/2:white,format=yuv420p',
      '-r',
      '10',
      '-frames:v',
      '20',
      video,
    ]);

    const camBrowser = await launchChromium(fakeCameraArgs(video));
    try {
      const cp = await guardConsole(camBrowser, { permissions: ['camera'] });
      const { page } = cp;
      await page.click('#tab-checkin');
      await page.click('#scan-btn');
      await page.waitForSelector('#checkin-result', { timeout: 20000 });
      expect(await page.textContent('#checkin-result')).toContain('SA-HXG1');
      const checkins = (await t.http().get('/api/v1/post-checkins').query({ postId: post.id }).set(auth(admin)).expect(200)).body as {
        total: number;
        items: { personName: string; schoolId: string; checkedOutAt: string | null }[];
      };
      expect(checkins.total).toBe(1);
      expect(checkins.items[0]).toMatchObject({ personName: 'guard_a', schoolId: seed.schoolA.id, checkedOutAt: null });
      // The camera is released once the code is read.
      expect(await page.$('.g-camera.on')).toBeNull();
      await page.waitForSelector('#checkin-list li');
      expect(await phoneWidth(cp)).toBeLessThanOrEqual(PHONE.width);
      await cp.screenshot('guard-checkin');
      await expectClean(cp);
      open.splice(open.indexOf(cp), 1);
      await cp.close();
    } finally {
      await camBrowser.close();
    }
  });

  it("closes the school's own rectification tasks, logs a patrol, shows why the school fails a target; English shows no raw keys", async () => {
    const findings = t.app.get(FindingsService);
    const finding = (schoolId: string, label: string) => ({
      source: 'audit' as const,
      check: 'device_offline_24h',
      schoolId,
      subjectKind: 'school' as const,
      subjectId: schoolId,
      subjectLabel: label,
      message: `${label} 摄像机离线超过24小时`,
      at: new Date(),
    });
    await t.app.get(DataSource).transaction((m) => findings.record(m, [finding(seed.schoolA.id, '甲小学'), finding(seed.schoolB.id, '乙小学')], new Date()));

    const cp = await guardConsole(browser);
    const { page } = cp;
    await page.click('#tab-tasks');
    await page.waitForSelector('#guard-tasks li[data-task-id]');
    const tasks = await page.$$('#guard-tasks li[data-task-id]');
    expect(tasks).toHaveLength(1); // their school's only
    const taskId = await tasks[0].getAttribute('data-task-id');
    await cp.screenshot('guard-tasks');
    await page.click('#guard-tasks .task-close');
    await page.waitForSelector('#guard-tasks .g-error:text("请填写整改情况")');
    await page.fill('#guard-tasks .task-note', '已更换摄像机电源');
    // A closing shows the fix: without a photo nothing is sent.
    await page.click('#guard-tasks .task-close');
    await page.waitForSelector('#guard-tasks .g-error:text("请至少拍摄 1 张整改照片")');
    // The phone camera's picture (here a PNG handed to the capture input): re-encoded to a JPEG here, uploaded at once, shown small.
    await page.setInputFiles('#guard-tasks .task-photo', { name: 'IMG_0042.png', mimeType: 'image/png', buffer: png(2400, 1200) });
    await page.waitForSelector('#guard-tasks .task-photos li[data-photo="sent"] img');
    expect(await phoneWidth(cp)).toBeLessThanOrEqual(PHONE.width);
    await cp.screenshot('guard-task-photo');
    // A reload keeps what was uploaded: the task's photos of this round come back from the server (GET …/photos).
    await page.reload();
    await page.waitForSelector('#guard');
    await page.click('#tab-tasks');
    await page.waitForSelector('#guard-tasks .task-photos li[data-photo="sent"]');
    // 移除 withdraws it on the server (it no longer counts toward the round's limit); another one is taken.
    await page.click('#guard-tasks .task-photo-remove');
    await page.waitForSelector('#guard-tasks .task-photos li', { state: 'detached' });
    expect((await t.http().get(`/api/v1/rectification-tasks/${taskId}/photos`).set(auth(admin)).expect(200)).body.items).toEqual([]);
    await page.fill('#guard-tasks .task-note', '已更换摄像机电源');
    await page.setInputFiles('#guard-tasks .task-photo', { name: 'IMG_0043.png', mimeType: 'image/png', buffer: png(2400, 1200) });
    await page.waitForSelector('#guard-tasks .task-photos li[data-photo="sent"] img');
    await page.click('#guard-tasks .task-close');
    await page.waitForSelector('#tasks-closed');
    const task = (await t.http().get(`/api/v1/rectification-tasks/${taskId}`).set(auth(admin)).expect(200)).body as Record<string, unknown>;
    expect(task).toMatchObject({ schoolId: seed.schoolA.id, status: 'closed', closeNote: '已更换摄像机电源', closePhotoIds: [expect.any(String)] });
    // The photo is the task's evidence, scaled to 1600 px on the phone; the district reads it as a JPEG.
    const [photoId] = task.closePhotoIds as string[];
    const stored = await t.db.query(`SELECT purpose, ref_id, school_id, width, height, source FROM video_evidence WHERE id = $1`, [photoId]);
    expect(stored.rows).toEqual([{ purpose: 'rectification.photo', ref_id: taskId, school_id: seed.schoolA.id, width: 1600, height: 800, source: 'upload' }]);
    const pic = await t.http().get(`/api/v1/video/evidence/${photoId}`).set(auth(admin)).buffer(true).expect(200);
    expect(pic.headers['content-type']).toBe('image/jpeg');

    // Another task, closed meanwhile on another device: the phone says so in words (not "conflict, refresh"), and
    // offers neither another upload nor closing it again.
    await t.app.get(DataSource).transaction((m) => findings.record(m, [{ ...finding(seed.schoolA.id, '甲小学'), check: 'gate_open' }], new Date()));
    await page.click('#guard-tasks h2 .g-link');
    const next = await page.waitForSelector(`#guard-tasks li[data-task-id]:not([data-task-id="${taskId}"])`);
    const nextId = (await next.getAttribute('data-task-id'))!;
    const item = `#guard-tasks li[data-task-id="${nextId}"]`;
    await page.setInputFiles(`${item} .task-photo`, { name: 'IMG_0044.png', mimeType: 'image/png', buffer: png(800, 600) });
    await page.waitForSelector(`${item} .task-photos li[data-photo="sent"] img`);
    const [elsewhere] = (await t.http().get(`/api/v1/rectification-tasks/${nextId}/photos`).set(auth(admin)).expect(200)).body.items as { id: string }[];
    await t
      .http()
      .post(`/api/v1/rectification-tasks/${nextId}/close`)
      .set(auth(admin))
      .send({ note: '值班室已处理', photoIds: [elsewhere.id] })
      .expect(200);
    await page.fill(`${item} .task-note`, '已关门');
    await page.click(`${item} .task-close`);
    await page.waitForSelector(`${item} .g-error:text("该整改任务已关闭")`);
    expect(await page.isDisabled(`${item} .task-close`)).toBe(true);
    expect(await page.$$(`${item} .task-photo`)).toHaveLength(0);

    await page.click('#tab-patrol');
    await page.fill('#patrol-route', '教学楼-操场-围墙');
    await page.click('#patrol-submit');
    await page.waitForSelector('#patrol-done');
    const { rows } = await t.db.query(`SELECT route, guard_name FROM guard_patrols WHERE school_id = $1`, [seed.schoolA.id]);
    expect(rows).toEqual([{ route: '教学楼-操场-围墙', guard_name: 'guard_a' }]);

    // No camera and no alarm button registered: the networked target fails, and the page says why.
    await page.click('#tab-compliance');
    await page.waitForSelector('#guard-compliance li[data-target="networked"][data-met="false"]');
    expect(await page.textContent('#guard-compliance li[data-target="networked"]')).toContain('未接入摄像机');
    await cp.screenshot('guard-compliance');

    await page.click('.lang-switch');
    await page.waitForSelector('#tab-alarm:has-text("Alarm")');
    expect(await page.textContent('#guard-compliance li[data-target="networked"]')).toContain('No camera connected');
    for (const tab of ['compliance', 'tasks', 'patrol', 'checkin', 'alarm']) {
      await page.click(`#tab-${tab}`);
      await page.waitForSelector(`#guard-${tab}`);
      await page.waitForSelector(`#guard-${tab} .g-hint:has-text("Loading…")`, { state: 'detached' });
      expect({ tab, raw: await rawKeysOnPage(page, ['guard_a']) }).toEqual({ tab, raw: [] });
    }
    await cp.screenshot('guard-english');
    expect(await phoneWidth(cp)).toBeLessThanOrEqual(PHONE.width);
    await expectClean(cp);
  });
  it('starts an alarm-button test: the press that follows is recorded as a test, no alarm; ending it makes presses real again', async () => {
    const h = auth(admin);
    const dev = (
      await t
        .http()
        .post('/api/v1/alarm-devices')
        .set(h)
        .send({ code: 'SA-BTN-1', schoolId: seed.schoolA.id, location: '门卫室', areaKind: 'gatehouse', policeLinked: false })
        .expect(201)
    ).body as { id: string };
    const cred = (await t.http().post('/api/v1/device-credentials').set(h).send({ kind: 'alarm_device', subjectId: dev.id }).expect(201)).body as {
      authorization: string;
    };
    const incidents = async () =>
      ((await t.http().get('/api/v1/incidents').query({ schoolId: seed.schoolA.id }).set(h).expect(200)).body as { total: number }).total;
    const before = await incidents();

    const cp = await guardConsole(browser);
    const { page } = cp;
    await page.click('#tab-patrol');
    const row = `#guard-buttons li[data-button-id="${dev.id}"]`;
    await page.click(`${row} .button-test-start`);
    await page.waitForSelector(`${row}[data-test-mode="true"]`);
    // The guard presses the real button.
    await t.http().post('/api/v1/incidents/press').set('Authorization', cred.authorization).send({ eventId: 'guard-test-1' }).expect(201);
    await page.waitForSelector(`${row} .button-test-seen`, { timeout: 15000 });
    expect(await incidents()).toBe(before);
    const tests = (await t.http().get(`/api/v1/alarm-buttons/${dev.id}/tests`).set(h).expect(200)).body as { kind: string; by: string }[];
    expect(tests).toEqual([expect.objectContaining({ kind: 'test_mode', by: expect.stringContaining('guard_a') })]);
    await cp.screenshot('guard-button-test');
    await page.click(`${row} .button-test-end`);
    await page.waitForSelector(`${row}[data-test-mode="false"]`);
    const { rows } = await t.db.query(`SELECT test_mode_until FROM alarm_devices WHERE id = $1`, [dev.id]);
    expect(rows[0].test_mode_until).toBeNull();
    expect(await rawKeysOnPage(page, ['guard_a'])).toEqual([]);
    await expectClean(cp);
  });
});

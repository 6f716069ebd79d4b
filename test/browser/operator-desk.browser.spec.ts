import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { DataSource } from 'typeorm';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { ARTIFACTS, ConsolePage, launchChromium, openConsole, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';
import { jpeg } from '../support/photos';

/**
 * Operator desk, issue 13 phase 2: the school card on an alarm (address, whom to call, who guards
 * the school now, the area's police station) and the drill-down behind the district strip's
 * figures (which devices are offline or of unknown state and since when, open outages, a status
 * grid of the schools), and the patrol findings panel (open findings, each opening to its detail).
 * Chromium at 1440×900, both languages; screenshots in test/artifacts/.
 */
describe('operator desk in Chromium: school card and device drill-down', () => {
  let t: TestApp;
  let browser: Browser;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const open: ConsolePage[] = [];
  const cams: Record<string, string> = {};
  const evidenceDir = mkdtempSync(join(tmpdir(), 'operator-desk-evidence-'));

  beforeAll(async () => {
    t = await startApp({ video: { evidenceDir } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    await t.userToken('operator', undefined, 'desk_op');
    await t.userToken('admin', undefined, 'desk_admin');
    await t.userToken('operator', undefined, 'next_op', '白班值班员');
    const h = auth(admin);
    await t
      .http()
      .patch(`/api/v1/schools/${seed.schoolA.id}`)
      .set(h)
      .send({
        address: '巴南区鱼洞街道新市街 8 号',
        securityChiefName: '李安',
        securityChiefPhone: '13800000001',
        principalName: '王校长',
        principalPhone: '023-66880002',
        policeStationName: '鱼洞派出所',
        policeStationPhone: '023-66880110',
      })
      .expect(200);
    await t.http().post('/api/v1/guards').set(h).send({ schoolId: seed.schoolA.id, name: '张伟', licenceNo: 'LIC-DESK-1', phone: '13900000003' }).expect(201);
    const post = (
      await t
        .http()
        .post('/api/v1/protection-posts')
        .set(h)
        .send({ schoolId: seed.schoolA.id, code: 'PP-D1', gate: '南门', windows: [{ kind: 'arrival' }] })
        .expect(201)
    ).body;
    await t.http().post('/api/v1/post-checkins').set(h).send({ postId: post.id, personName: '张伟' }).expect(201);
    const cam = async (school: string, n: string, name: string) =>
      (
        await t
          .http()
          .post('/api/v1/cameras')
          .set(h)
          .send({ schoolId: school, deviceId: `500113000013200000${n}`, channelId: `500113000013100000${n}`, name, areaKind: 'main_gate' })
          .expect(201)
      ).body.id as string;
    cams.offline = await cam(seed.schoolA.id, '01', '南门枪机');
    cams.unknown = await cam(seed.schoolB.id, '02', '操场球机');
    cams.online = await cam(seed.schoolB.id, '03', '北门枪机');
    await t.db.query(`UPDATE cameras SET status = 'offline', last_seen_at = now() - interval '2 hours' WHERE id = $1`, [cams.offline]);
    await t.db.query(`UPDATE cameras SET status = 'unknown', last_seen_at = NULL WHERE id = $1`, [cams.unknown]);
    await t.db.query(`UPDATE cameras SET status = 'online', last_seen_at = now() WHERE id = $1`, [cams.online]);
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const cp of open.splice(0)) await cp.close();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  const login = async () => {
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    await cp.login('desk_op', PASSWORD);
    await cp.page.waitForSelector('body[data-conn="online"]');
    return cp;
  };

  it("shows the school card on an alarm: address, whom to call, who is on duty, the area's police station", async () => {
    const inc = (await t.http().post('/api/v1/incidents').set(auth(admin)).send({ schoolId: seed.schoolA.id, type: 'other', location: '南门' }).expect(201))
      .body;
    const cp = await login();
    const { page } = cp;
    await page.click(`#incidents [data-incident-id="${inc.id}"]`);
    await page.waitForSelector(`#school-card[data-school-id="${seed.schoolA.id}"] #card-address:text("鱼洞街道")`);
    expect(await page.getAttribute('#card-chief a.tel', 'href')).toBe('tel:13800000001');
    expect(await page.textContent('#card-chief')).toContain('李安');
    expect(await page.textContent('#card-principal')).toContain('王校长');
    expect(await page.textContent('#card-police')).toContain('鱼洞派出所');
    expect(await page.getAttribute('#card-police a.tel', 'href')).toBe('tel:023-66880110');
    await page.waitForSelector('#card-on-duty:has-text("张伟")');
    await cp.screenshot('operator-school-card');
    await page.click('.bar .lang-switch');
    await page.waitForSelector('#school-card h3:text("School")');
    expect(await page.textContent('#school-card')).toContain('Police station');
    expect(await rawKeysOnPage(page)).toEqual([]);
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
    await page.click('.bar .lang-switch');
  });

  it('opens what is behind the strip: devices offline and unknown since when, the schools grid', async () => {
    const cp = await login();
    const { page } = cp;
    await page.waitForSelector('#stat-unknown:text("1")');
    await page.click('[data-drill-open="unknown"]');
    await page.waitForSelector(`#drill-devices tr[data-device-id="${cams.unknown}"]`);
    expect(await page.textContent(`#drill-devices tr[data-device-id="${cams.unknown}"]`)).toContain('从未上线');
    expect(await page.textContent(`#drill-devices tr[data-device-id="${cams.unknown}"]`)).toContain('乙小学');
    expect(await page.textContent('#drill-total')).toContain('1');

    await page.click('[data-drill="offline"]');
    await page.waitForSelector(`#drill-devices tr[data-device-id="${cams.offline}"]`);
    const row = await page.textContent(`#drill-devices tr[data-device-id="${cams.offline}"]`);
    expect(row).toContain('南门枪机');
    expect(row).toMatch(/2 小时|1 小时 59 分/);
    expect(await page.$$(`#drill-devices tr[data-device-id]`)).toHaveLength(1);

    await page.click('[data-drill="schools"]');
    await page.waitForSelector(`#school-grid li[data-school-id="${seed.schoolA.id}"].st-bad`);
    expect(await page.getAttribute(`#school-grid li[data-school-id="${seed.schoolB.id}"]`, 'class')).toContain('st-unknown');
    await page.click(`#school-grid li[data-school-id="${seed.schoolB.id}"] button`);
    await page.waitForSelector(`#drill-devices tr[data-device-id="${cams.unknown}"]`);
    // The school's devices that are not online.
    expect(await page.$(`#drill-devices tr[data-device-id="${cams.online}"]`)).toBeNull();
    expect(await page.textContent('#drill-total')).toContain('共 1 条');
    await cp.screenshot('operator-device-drill');

    // A device row's "设为维护": a window for that device; the server's bounds come back as field errors in zh-CN.
    const shanghai = (ms: number) => new Date(Date.now() + ms + 8 * 3_600_000).toISOString().slice(0, 16); // datetime-local, Asia/Shanghai
    await page.click(`#drill-devices tr[data-device-id="${cams.unknown}"] .mw-for`);
    await page.waitForSelector('#mw-form');
    expect(await page.inputValue('#mw-scope')).toBe('device');
    await page.fill('#mw-starts', shanghai(-2 * 3_600_000));
    await page.fill('#mw-reason', '更换摄像机');
    await page.click('#mw-save');
    await page.waitForSelector('#mw-err-startsAt:text("开始时间不能早于现在")');
    await page.fill('#mw-starts', shanghai(3_600_000));
    await page.fill('#mw-ends', shanghai(100 * 3_600_000));
    await page.click('#mw-save');
    await page.waitForSelector('#mw-err-endsAt:text("时长超过上限")');
    expect(await page.$('#mw-err-startsAt')).toBeNull();
    await page.fill('#mw-ends', shanghai(3 * 3_600_000));
    await page.click('#mw-save');
    await page.waitForSelector('#mw-list tr[data-status="upcoming"]');
    const windows = (await t.http().get('/api/v1/device-health/maintenance-windows').set(auth(admin)).expect(200)).body.items;
    expect(windows).toEqual([expect.objectContaining({ deviceId: cams.unknown, schoolId: seed.schoolB.id, reason: '更换摄像机', status: 'upcoming' })]);
    await cp.screenshot('operator-maintenance');
    await page.click('#mw-list tr[data-status="upcoming"] .mw-remove');
    await page.waitForSelector('#mw-list tr[data-status="upcoming"]', { state: 'detached' });

    await page.click('[data-drill="outages"]');
    await page.waitForSelector('#drill-outages');
    await page.click('#drill-close');
    await page.waitForSelector('#drill', { state: 'detached' });
    expect(await rawKeysOnPage(page)).toEqual([]);
    expect(await cp.problems()).toEqual([]);
  });

  it('admins open the queue dashboard (bull-board) from the console in a new tab, under the strict CSP; operators have no link', async () => {
    const asOperator = await login();
    expect(await asOperator.page.$('#nav-queues')).toBeNull();
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    await cp.login('desk_admin', PASSWORD);
    const [tab] = await Promise.all([cp.context.waitForEvent('page'), cp.page.click('#nav-queues')]);
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.waitForURL(/\/admin\/queues\/$/);
    await tab.getByText('notifications', { exact: true }).first().waitFor();
    expect(await tab.evaluate(() => (globalThis as unknown as { __cspViolations?: string[] }).__cspViolations ?? [])).toEqual([]);
    // A change the dashboard makes itself carries this server's Origin (its page's Referrer-Policy lets
    // the browser send it): the cross-site check lets it through; the same request from another origin is refused.
    expect(await tab.evaluate(async () => (await fetch('api/queues/system/pause', { method: 'PUT' })).status)).toBe(200);
    expect(await tab.evaluate(async () => (await fetch('api/queues/system/resume', { method: 'PUT' })).status)).toBe(200);
    expect(errors).toEqual([]);
    await tab.screenshot({ path: join(ARTIFACTS, 'admin-queue-board.png') });
    expect(await cp.problems()).toEqual([]);
  });

  it('shift handover: one operator hands over with a note, the next sees it waiting and takes over', async () => {
    const first = await login();
    await first.page.click('#handover-start');
    await first.page.fill('#handover-note', '南门摄像机离线已报修');
    await first.page.click('#handover-submit');
    await first.page.waitForSelector('#handover .pending:has-text("等待下一班值班员确认接班")');
    expect(await first.page.$('#handover .take-over')).toBeNull();

    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    await cp.login('next_op', PASSWORD);
    const { page } = cp;
    await page.waitForSelector('#handover .pending .note:text("南门摄像机离线已报修")');
    expect(await page.textContent('#handover .pending')).toContain('desk_op');
    await cp.screenshot('operator-handover');
    await page.click('#handover .take-over');
    await page.waitForSelector('#handover-message.ok');
    await page.waitForSelector('#handover .pending', { state: 'detached' });
    expect(await rawKeysOnPage(page, ['desk_op'])).toEqual([]);
    expect(await cp.problems()).toEqual([]);
  });

  it('the patrol findings panel lists the open findings, newest first, with how many are open; one opens to its school, what failed and each time it was found (issue 13)', async () => {
    const findings = t.app.get(FindingsService);
    const ds = t.app.get(DataSource);
    const offline = (at: Date) => ({
      source: 'audit' as const,
      check: 'device_offline_24h',
      schoolId: seed.schoolA.id,
      subjectKind: 'camera' as const,
      subjectId: cams.offline,
      subjectLabel: '南门枪机',
      message: '南门枪机 离线超过 24 小时',
      at,
    });
    // School A's gate camera found offline three hours ago and again now (one open finding, found twice), past its
    // deadline; school B's gate found open a minute ago (newer, so listed first).
    const earlier = new Date(Date.now() - 3 * 3_600_000);
    await ds.transaction((m) => findings.record(m, [offline(earlier)], earlier));
    await ds.transaction((m) => findings.record(m, [offline(new Date())], new Date()));
    const minuteAgo = new Date(Date.now() - 60_000);
    await ds.transaction((m) =>
      findings.record(
        m,
        [
          {
            source: 'round',
            check: 'gate_open',
            schoolId: seed.schoolB.id,
            subjectKind: 'gate',
            subjectLabel: '北门',
            message: '北门 上课时间校门未关闭',
            at: minuteAgo,
          },
        ],
        minuteAgo,
      ),
    );
    await t.db.query(`UPDATE rectification_tasks SET deadline = now() - interval '1 hour' WHERE school_id = $1`, [seed.schoolA.id]);
    const taskA = (await t.db.query(`SELECT id FROM rectification_tasks WHERE school_id = $1`, [seed.schoolA.id])).rows[0].id as string;

    const cp = await login();
    const { page } = cp;
    await page.waitForSelector('#patrol-count:text("2")');
    const order = () =>
      page.$$eval('#patrol-list li[data-task-id]', (els) => els.map((e) => (e as unknown as { dataset: { schoolId: string } }).dataset.schoolId));
    expect(await order()).toEqual([seed.schoolB.id, seed.schoolA.id]);
    const rowA = `#patrol-list li[data-task-id="${taskA}"]`;
    expect(await page.textContent(`${rowA} .school`)).toBe('甲小学');
    expect(await page.textContent(`${rowA} .src`)).toBe('设备离线超 24 小时');
    expect(await page.textContent(`${rowA} .sev`)).toBe('已逾期');
    expect(await page.textContent(`${rowA} .times`)).toBe('发现 2 次');
    expect(await page.textContent(`${rowA} time`)).toMatch(/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}$/);

    // A click opens it: the school, the check, what failed, overdue since when, and each time it was found.
    await page.click(`${rowA} button`);
    const d = `#finding-detail[data-task-id="${taskA}"]`;
    await page.waitForSelector(d);
    expect(await page.textContent(`${d} .fd-school`)).toBe('甲小学');
    expect(await page.textContent(`${d} .fd-check`)).toBe('设备离线超 24 小时');
    expect(await page.textContent(`${d} .fd-what`)).toBe('南门枪机 离线超过 24 小时');
    expect((await page.textContent(`${d} .fd-state`))?.trim()).toBe('未整改（已逾期）');
    expect(await page.textContent(`${d} .fd-count`)).toBe('2 次'); // under 发现次数: the word once
    expect(await page.$$(`${d} .fd-findings li[data-finding-id]`)).toHaveLength(2);
    expect(await page.textContent(`${d} .fd-findings`)).toContain('南门枪机：南门枪机 离线超过 24 小时');
    expect(await page.textContent(`${d} .fd-findings`)).toContain('巡查审计');
    // (The screenshot once the drawer has slid in.)
    await page.waitForFunction(
      () => !(globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector('.el-drawer-fade-enter-active'),
    );
    await cp.screenshot('operator-patrol-finding');

    // A new finding arrives live: listed first, counted.
    await ds.transaction((m) =>
      findings.record(
        m,
        [
          {
            source: 'post',
            check: 'post_unstaffed',
            schoolId: seed.schoolB.id,
            subjectKind: 'post',
            subjectLabel: 'PP-B1 北门',
            message: '护学岗 北门 在岗 0 人，应到 2 人',
            at: new Date(),
          },
        ],
        new Date(),
      ),
    );
    await page.waitForSelector('#patrol-count:text("3")');
    expect(await page.textContent('#patrol-list li:first-child .src')).toBe('护学岗未到岗');

    // English: the same detail in words, no raw keys. (The drawer closes with Escape and opens again.)
    await page.keyboard.press('Escape');
    await page.waitForSelector(d, { state: 'hidden' });
    await page.click('.bar .lang-switch');
    await page.click(`${rowA} button`);
    await page.waitForSelector(`${d} .fd-state:text("Open (overdue)")`);
    expect(await page.textContent(`${d} .fd-check`)).toBe('Device offline > 24 h');
    expect(await rawKeysOnPage(page, ['desk_op'])).toEqual([]);

    // The way on: the supervisor page's patrol follow-up, opened on this very task (the list otherwise pages).
    await page.click('#finding-follow-up');
    await page.waitForURL(new RegExp(`/console/supervisor\\?tab=patrol&task=${taskA}$`));
    await page.waitForSelector(`#s-tasks [data-task-id="${taskA}"]`);
    await page.waitForSelector('#s-only-task');
    expect(await page.$$('#s-tasks tr[data-task-id]')).toHaveLength(1);
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });

  it("a finding the school has closed shows, in its drawer, the closing's photos: counted, fetched when scrolled to, each opening full size; none, nothing", async () => {
    const findings = t.app.get(FindingsService);
    const ds = t.app.get(DataSource);
    const gate = (schoolId: string, label: string) => ({
      source: 'round' as const,
      check: 'gate_open',
      schoolId,
      subjectKind: 'gate' as const,
      subjectLabel: label,
      message: `${label} 上课时间校门未关闭`,
      at: new Date(),
    });
    await ds.transaction((m) => findings.record(m, [gate(seed.schoolA.id, '东门'), gate(seed.schoolB.id, '西门')], new Date()));
    const taskOf = async (label: string) =>
      (await t.db.query(`SELECT id FROM rectification_tasks WHERE title LIKE $1 AND status = 'open'`, [`${label}%`])).rows[0].id as string;
    const [withPhotos, without] = [await taskOf('东门'), await taskOf('西门')];

    // Listed as open; then the schools close them — the list says so at its next reload, the drawer at once.
    const cp = await login();
    const { page } = cp;
    const row = (id: string) => `#patrol-list li[data-task-id="${id}"] button`;
    await page.waitForSelector(row(withPhotos));
    await page.waitForSelector(row(without));
    const guard = await t.userToken('school_security', seed.schoolA.id, 'desk_guard');
    const upload = async (shade: number) =>
      (
        await t
          .http()
          .post(`/api/v1/rectification-tasks/${withPhotos}/photos`)
          .set(auth(guard.token))
          .attach('file', jpeg(640, 360, shade), { filename: `fix-${shade}.jpg`, contentType: 'image/jpeg' })
          .expect(201)
      ).body.id as string;
    const photos = [await upload(1), await upload(2)];
    await t
      .http()
      .post(`/api/v1/rectification-tasks/${withPhotos}/close`)
      .set(auth(guard.token))
      .send({ note: '东门已加装闭门器', photoIds: photos })
      .expect(200);
    // Closed before closings carried photos: none.
    await t.db.query(`UPDATE rectification_tasks SET status = 'closed', closed_at = now(), close_note = '已关门' WHERE id = $1`, [without]);

    // (Within a minute of the login: the panel's periodic reload has not yet dropped the closed rows.)
    await page.click(row(without));
    await page.waitForSelector(`#finding-detail[data-task-id="${without}"][data-status="closed"]`);
    expect((await page.textContent('#finding-detail .fd-state'))?.trim()).toBe('已整改');
    expect(await page.$$('#finding-detail .fd-photos, #finding-detail .fd-photos-title, #finding-detail .evidence-picture')).toHaveLength(0);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#finding-detail', { state: 'hidden' });

    // A short window: the photos lie below it, and nothing is fetched until they are scrolled to.
    const evidenceAsked: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/video/evidence/')) evidenceAsked.push(r.url());
    });
    await page.setViewportSize({ width: 1440, height: 240 });
    const d = `#finding-detail[data-task-id="${withPhotos}"]`;
    await page.click(row(withPhotos));
    await page.waitForSelector(`${d}[data-status="closed"] .fd-photos`);
    expect(await page.textContent(`${d} .fd-photos-title`)).toBe('整改照片（2 张）');
    expect(await page.getAttribute(`${d} .fd-photos`, 'data-count')).toBe('2');
    const figures = `${d} .fd-photos .evidence-picture`;
    expect(await page.$$eval(figures, (els) => els.map((e) => e.getAttribute('data-evidence-id')))).toEqual(photos);
    const below = await page.$eval(figures, (e) => e.getBoundingClientRect().top);
    expect(below).toBeGreaterThan(240 + 100); // the premise: past the window and its 100 px look-ahead
    await page.waitForTimeout(300);
    expect(await page.$$eval(figures, (els) => els.map((e) => e.getAttribute('data-state')))).toEqual(['idle', 'idle']);
    expect(evidenceAsked).toEqual([]);
    await page.$eval(`${d} .fd-photos`, (e) => e.scrollIntoView());
    for (const id of photos) await page.waitForSelector(`${d} .evidence-picture[data-evidence-id="${id}"][data-state="shown"]`);
    expect(evidenceAsked.map((u) => u.split('/').pop())).toEqual(expect.arrayContaining(photos));
    expect(evidenceAsked).toHaveLength(2);
    await page.setViewportSize({ width: 1440, height: 900 });

    // A thumbnail opens the picture full size; Escape closes the picture, not the drawer.
    const thumb = await page.$eval(`${d} .evidence-picture[data-evidence-id="${photos[0]}"] img`, (e) => e.getBoundingClientRect().width);
    await page.click(`${d} .evidence-picture[data-evidence-id="${photos[0]}"] .evidence-zoom`);
    const full = '.el-image-viewer__wrapper img.el-image-viewer__img';
    await page.waitForSelector(full);
    const shown = await page.$eval(full, (e) => {
      const img = e as unknown as { naturalWidth: number; naturalHeight: number; src: string; getBoundingClientRect(): { width: number } };
      return { w: img.naturalWidth, h: img.naturalHeight, src: img.src, width: img.getBoundingClientRect().width };
    });
    expect(shown).toMatchObject({ w: 640, h: 360, src: expect.stringMatching(/^blob:/) });
    expect(shown.width).toBeGreaterThan(thumb * 3);
    await page.waitForFunction(
      () => !(globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector('.viewer-fade-enter-active'),
    );
    await cp.screenshot('operator-patrol-finding-photo');
    await page.keyboard.press('Escape');
    await page.waitForSelector('.el-image-viewer__wrapper', { state: 'detached' });
    expect(await page.isVisible(d)).toBe(true);
    await cp.screenshot('operator-patrol-finding-closed');

    // English: the count in words, no raw keys.
    await page.keyboard.press('Escape');
    await page.waitForSelector(d, { state: 'hidden' });
    await page.click('.bar .lang-switch');
    await page.click(row(withPhotos));
    await page.waitForSelector(`${d} .fd-photos-title:text("Photos of the fix (2)")`);
    expect((await page.textContent(`${d} .fd-state`))?.trim()).toBe('Rectified');
    expect(await rawKeysOnPage(page, ['desk_op'])).toEqual([]);
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });
});

import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { ARTIFACTS, ConsolePage, launchChromium, openConsole, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Operator desk, issue 13 phase 2: the school card on an alarm (address, whom to call, who guards
 * the school now, the area's police station) and the drill-down behind the district strip's
 * figures (which devices are offline or of unknown state and since when, open outages, a status
 * grid of the schools). Chromium at 1440×900, both languages; screenshots in test/artifacts/.
 */
describe('operator desk in Chromium: school card and device drill-down', () => {
  let t: TestApp;
  let browser: Browser;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const open: ConsolePage[] = [];
  const cams: Record<string, string> = {};

  beforeAll(async () => {
    t = await startApp();
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
});

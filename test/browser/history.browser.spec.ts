import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { ConsolePage, launchChromium, openConsole, PHONE, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Alarm history (issue 13: "resolved alarms cannot be found again"): an operator finds a closed
 * alarm by outcome and by words, sees its outcome and who resolved it by display name, exports
 * what was found; school staff on a phone see their own school's history only. Chromium, both
 * viewports, both languages; screenshots in test/artifacts/.
 */
describe('alarm history in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const ids: Record<string, string> = {};
  const open: ConsolePage[] = [];

  beforeAll(async () => {
    t = await startApp();
    const admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    const op = (await t.userToken('operator', undefined, 'night_op', '夜班值班员王五')).token;
    await t.userToken('operator', undefined, 'duty_op');
    await t.userToken('school_security', seed.schoolB.id, 'guard_b');
    const raise = async (schoolId: string, type: string, location: string) =>
      (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId, type, location }).expect(201)).body.id as string;
    const step = (id: string, action: string, body: object = {}) => t.http().post(`/api/v1/incidents/${id}/${action}`).set(auth(op)).send(body).expect(200);
    ids.fire = await raise(seed.schoolA.id, 'fire', '=1+2 食堂');
    await step(ids.fire, 'acknowledge');
    await step(ids.fire, 'resolve', { outcome: 'genuine', note: '灭火器扑灭' });
    ids.false = await raise(seed.schoolB.id, 'medical', '操场');
    await step(ids.false, 'acknowledge');
    await step(ids.false, 'resolve', { outcome: 'false_alarm' });
    ids.cancelled = await raise(seed.schoolA.id, 'intrusion', '北门');
    await step(ids.cancelled, 'cancel', { reason: '误按' });
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const cp of open.splice(0)) await cp.close();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const rows = (cp: ConsolePage) =>
    cp.page.$$eval('#h-table tbody tr', (trs) => trs.map((tr) => (tr as unknown as { dataset: { id: string } }).dataset.id).sort());

  it('finds a resolved alarm by outcome and by words, shows who resolved it by name, exports what was found', async () => {
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    const { page } = cp;
    await cp.login('duty_op', PASSWORD);
    await page.click('#nav-history');
    await page.waitForSelector('#h-total:text("共 3 条")');
    expect(await rows(cp)).toEqual([ids.fire, ids.false, ids.cancelled].sort());

    await page.check('input[data-outcome="false_alarm"]');
    await page.click('#h-search');
    await page.waitForSelector('#h-total:text("共 1 条")');
    expect(await rows(cp)).toEqual([ids.false]);
    expect(await page.textContent(`#h-table tr[data-id="${ids.false}"] .outcome`)).toBe('误报');

    await page.uncheck('input[data-outcome="false_alarm"]');
    await page.fill('#h-q', '灭火器');
    await page.click('#h-search');
    await page.waitForSelector('#h-total:text("共 1 条")');
    await page.click(`#h-table tr[data-id="${ids.fire}"]`);
    await page.waitForSelector('#h-detail');
    const detail = await page.textContent('#h-detail');
    expect(detail).toContain('真实警情');
    expect(detail).toContain('夜班值班员王五');
    expect(detail).not.toContain('night_op');
    await cp.screenshot('history-desktop');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#h-export-csv')]);
    const csv = readFileSync((await download.path())!);
    expect([...csv.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = csv.toString('utf8');
    expect(text).toContain(ids.fire);
    expect(text).not.toContain(ids.false);
    expect(text).toContain(`'=1+2 食堂`);

    await page.click('.bar .lang-switch');
    await page.waitForSelector('#h-total:text("1 found")');
    expect(await rawKeysOnPage(page)).toEqual([]);
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });

  it("school staff on a phone see their own school's history only", async () => {
    const cp = await openConsole(browser, t.baseUrl, { viewport: PHONE, isMobile: true, path: '/console/history' });
    open.push(cp);
    const { page } = cp;
    await cp.login('guard_b', PASSWORD);
    await page.waitForSelector('#h-total:text("共 1 条")');
    expect(await rows(cp)).toEqual([ids.false]);
    expect(await page.$('#h-school')).toBeNull();
    // Nothing wider than the phone's screen.
    expect(
      await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(PHONE.width);
    await cp.screenshot('history-phone');
    expect(await cp.problems()).toEqual([]);
  });
});

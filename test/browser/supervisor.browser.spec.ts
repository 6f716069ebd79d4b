import type { Browser } from 'playwright-core';
import { DataSource } from 'typeorm';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { ConsolePage, launchChromium, openConsole, PHONE, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Supervisor and auditor surface (issue 13): response times and the false-alarm rate as ECharts
 * charts and a table, the four targets' trend, the audit log, exports; the charts' code is loaded
 * only with this surface (the operator's page never fetches it); auditors get the same read-only
 * page, on a phone too; English without raw keys. Screenshots in test/artifacts/.
 */
describe('supervisor and auditor surface in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let adminToken: string;
  const open: ConsolePage[] = [];

  beforeAll(async () => {
    t = await startApp();
    const admin = (adminToken = (await t.userToken('admin')).token);
    seed = await seedMinimal(t, admin);
    const op = (await t.userToken('operator', undefined, 'stats_op')).token;
    await t.userToken('supervisor', undefined, 'sup_1');
    await t.userToken('auditor', undefined, 'audit_1');
    const raise = async (schoolId: string, location: string) =>
      (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId, type: 'other', location }).expect(201)).body.id as string;
    const close = async (id: string, outcome: string) => {
      await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op)).send({}).expect(200);
      await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op)).send({ outcome }).expect(200);
    };
    await close(await raise(seed.schoolA.id, '南门'), 'genuine');
    await close(await raise(seed.schoolA.id, '北门'), 'false_alarm');
    await close(await raise(seed.schoolB.id, '操场'), 'genuine');
    await close(await raise(seed.schoolB.id, '食堂'), 'genuine');
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
    const findings = t.app.get(FindingsService);
    await t.app.get(DataSource).transaction((m) => findings.record(m, [finding(seed.schoolA.id, '甲小学'), finding(seed.schoolB.id, '乙小学')], new Date()));
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const cp of open.splice(0)) await cp.close();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const login = async (user: string, opts: Parameters<typeof openConsole>[2] = {}) => {
    const cp = await openConsole(browser, t.baseUrl, opts);
    open.push(cp);
    await cp.login(user, PASSWORD);
    return cp;
  };

  it('charts response times and the false-alarm rate, shows the trend and the audit log, exports; the charts load with this surface only', async () => {
    const scripts: string[] = [];
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    const { page } = cp;
    page.on('request', (r) => r.resourceType() === 'script' && scripts.push(r.url()));
    await cp.login('sup_1', PASSWORD);
    await page.waitForSelector('#list-empty');
    expect(scripts.some((u) => /SupervisorSurface/.test(u))).toBe(false);

    await page.click('#nav-supervisor');
    await page.waitForSelector('#s-count:text("4")');
    expect(scripts.some((u) => /SupervisorSurface/.test(u))).toBe(true);
    expect(await page.textContent('#s-false-rate')).toBe('25.0%');
    expect(await page.textContent(`#s-schools tr[data-school-id="${seed.schoolA.id}"] .false-rate`)).toBe('50.0%');
    await page.waitForSelector('#chart-response canvas');
    expect(Number(await page.getAttribute('#chart-response', 'data-points'))).toBeGreaterThan(0);
    expect(Number(await page.getAttribute('#chart-false', 'data-points'))).toBe(2);
    await cp.screenshot('supervisor-stats');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-incidents')]);
    expect(download.suggestedFilename()).toMatch(/\.xlsx$/);
    const [stats] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-stats')]);
    expect(stats.suggestedFilename()).toMatch(/^响应统计_.*\.xlsx$/);

    await page.click('[data-tab="compliance"]');
    await page.waitForSelector('#chart-trend canvas');
    expect(Number(await page.getAttribute('#chart-trend', 'data-points'))).toBeGreaterThan(0);

    await page.click('[data-tab="patrol"]');
    await page.waitForSelector('#s-tasks tr[data-task-id]');
    expect(await page.$$('#s-tasks tr[data-task-id]')).toHaveLength(2);
    expect(await page.textContent('#s-tasks')).toContain('甲小学');
    expect(await page.$$('#s-findings li[data-finding-id]')).toHaveLength(2);
    await page.click('[data-task-filter="closed"]');
    await page.waitForSelector('#s-tasks-total:text("共 0 条")');
    await cp.screenshot('supervisor-patrol');

    await page.click('[data-tab="audit"]');
    await page.waitForSelector('#s-audit tr[data-audit-id]');
    expect(await page.textContent('#s-audit')).toContain('stats_op');

    await page.click('.bar .lang-switch');
    await page.waitForSelector('[data-tab="audit"]:text("Audit log")');
    await page.click('[data-tab="stats"]');
    await page.waitForSelector('#s-false-rate');
    expect(await rawKeysOnPage(page, ['sup_1'])).toEqual([]);
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });

  it("a supervisor creates, edits and disables a patrol plan; the server's field errors show in zh-CN next to the field", async () => {
    const cp = await login('sup_1', { path: '/console/supervisor' });
    const { page } = cp;
    await page.click('[data-tab="patrol"]');
    await page.click('#plan-new');
    await page.click('#plan-save'); // no name
    await page.waitForSelector('#plan-err-name:text("必填")');
    await page.fill('#plan-name', '工作日上午巡查');
    await page.fill('#plan-cron', '61 9 * * *');
    await page.selectOption('#plan-kind', 'schools');
    await page.click('#plan-save');
    await page.waitForSelector('#plan-err-cron:text("执行时间格式不正确")');
    await page.waitForSelector('#plan-err-scope:text("请选择巡查范围")');
    expect(await page.$('#plan-err-name')).toBeNull();
    await page.fill('#plan-cron', '* * * * *');
    await page.selectOption('#plan-ids', [seed.schoolA.id]);
    await page.click('#plan-save');
    await page.waitForSelector('#plan-err-cron:text("执行过于频繁")');
    expect(await page.$('#plan-err-scope')).toBeNull();
    await page.fill('#plan-cron', '0 9 * * 1-5');
    await page.click('[data-check="gate_open"]'); // one check fewer than all
    await page.click('#plan-save');
    await page.waitForSelector('#plan-saved');
    const plans = (await t.http().get('/api/v1/patrol-plans').set(auth(adminToken)).expect(200)).body.items as {
      id: string;
      name: string;
      cron: string;
      scope: unknown;
      checks: string[];
      enabled: boolean;
    }[];
    const plan = plans.find((p) => p.name === '工作日上午巡查')!;
    expect(plan).toMatchObject({ cron: '0 9 * * 1-5', scope: { kind: 'schools', ids: [seed.schoolA.id] }, enabled: true });
    expect(plan.checks).not.toContain('gate_open');
    const row = `#plan-list tr[data-plan-id="${plan.id}"]`;
    await page.click(`${row} .plan-edit`);
    await page.fill('#plan-name', '工作日上午巡查（含南门）');
    await page.click('#plan-save');
    await page.waitForSelector(`${row} td:text("工作日上午巡查（含南门）")`);
    await page.click(`${row} .plan-toggle`);
    await page.waitForSelector(`${row}[data-enabled="false"]`);
    expect((await t.http().get(`/api/v1/patrol-plans/${plan.id}`).set(auth(adminToken)).expect(200)).body).toMatchObject({
      name: '工作日上午巡查（含南门）',
      enabled: false,
    });
    await cp.screenshot('supervisor-patrol-plans');
    expect(await cp.problems()).toEqual([]);
  });

  it('an auditor on a phone gets the same read-only page: no action buttons anywhere', async () => {
    const cp = await login('audit_1', { viewport: PHONE, isMobile: true, path: '/console/supervisor' });
    const { page } = cp;
    await page.waitForSelector('#s-count:text("4")');
    await page.waitForSelector('#chart-response canvas');
    expect(await page.$$('.act, #act-acknowledge, #act-resolve, #takeover')).toHaveLength(0);
    await page.click('[data-tab="patrol"]');
    await page.waitForSelector('#plan-list');
    expect(await page.$$('#plan-new, .plan-edit, .plan-toggle')).toHaveLength(0);
    await page.click('[data-tab="stats"]');
    await cp.screenshot('supervisor-auditor-phone');
    expect(await cp.problems()).toEqual([]);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { DataSource } from 'typeorm';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { ConsolePage, launchChromium, openConsole, PHONE, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp, TIMETABLE } from '../support/harness';
import { jpeg } from '../support/photos';
import zhCN from '../../web/src/i18n/zh-CN';

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
  const evidenceDir = mkdtempSync(join(tmpdir(), 'supervisor-evidence-'));

  beforeAll(async () => {
    t = await startApp({ video: { evidenceDir } });
    const admin = (adminToken = (await t.userToken('admin')).token);
    seed = await seedMinimal(t, admin);
    const op = (await t.userToken('operator', undefined, 'stats_op', '王值班')).token;
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
    rmSync(evidenceDir, { recursive: true, force: true });
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
    await page.waitForSelector('#chart-response svg');
    expect(Number(await page.getAttribute('#chart-response', 'data-points'))).toBeGreaterThan(0);
    expect(Number(await page.getAttribute('#chart-false', 'data-points'))).toBe(2);
    await cp.screenshot('supervisor-stats');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-incidents')]);
    expect(download.suggestedFilename()).toMatch(/\.xlsx$/);
    const [stats] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-stats')]);
    expect(stats.suggestedFilename()).toMatch(/^响应统计_.*\.xlsx$/);
    const [online] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-online')]);
    expect(online.suggestedFilename()).toMatch(/^设备在线率_\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.xlsx$/);

    await page.click('[data-tab="compliance"]');
    await page.waitForSelector('#chart-trend svg');
    expect(Number(await page.getAttribute('#chart-trend', 'data-points'))).toBeGreaterThan(0);

    await page.click('[data-tab="patrol"]');
    await page.waitForSelector('#s-tasks tr[data-task-id]');
    expect(await page.$$('#s-tasks tr[data-task-id]')).toHaveLength(2);
    expect(await page.textContent('#s-tasks')).toContain('甲小学');
    expect(await page.$$('#s-findings li[data-finding-id]')).toHaveLength(2);
    await page.click('[data-task-filter="closed"]');
    await page.waitForSelector('#s-tasks-total:text("共 0 条")');
    await cp.screenshot('supervisor-patrol');

    // An operator calling himself 系统管理员, one created before bidi controls were refused (written straight to the table), and one of his actions.
    const fake = await t.userToken('operator', undefined, 'fake.admin', '系统管理员');
    await t.http().post('/api/v1/auth/logout').set(auth(fake.token)).send({});
    const evil = (await t.http().post('/api/v1/users').set(auth(adminToken)).send({ username: 'evil.op', password: PASSWORD, role: 'operator' }).expect(201))
      .body.id;
    await t.db.query(`UPDATE users SET display_name = $2 WHERE id = $1`, [evil, '\u202eevil\u202c 操作员']);
    await t.http().patch(`/api/v1/users/${evil}`).set(auth(adminToken)).send({ role: 'operator' }).expect(200);
    await page.click('[data-tab="audit"]');
    await page.waitForSelector('#s-audit tr[data-audit-id]');
    // Who did it, by the name people know them by with the username beside it (a display name is free text: a phone
    // has no hover to tell "系统管理员" from the admin); a user without one by username alone.
    const actors = await page.$$eval('#s-audit .a-actor', (els) =>
      els.map((e) => [(e as unknown as { title: string }).title, (e as unknown as { textContent: string }).textContent.trim()]),
    );
    expect(actors).toContainEqual(['stats_op', '王值班（stats_op）']);
    expect(actors.filter(([username]) => username === 'stats_op').every(([, shown]) => shown === '王值班（stats_op）')).toBe(true);
    expect(actors).toContainEqual(['sup_1', 'sup_1']);
    expect(actors).toContainEqual(['fake.admin', '系统管理员（fake.admin）']);
    // A user acted on is named (the fake admin's creation), a stored bidi override is shown stripped; other records by a short id, the whole one on hover.
    expect(await page.$$eval('#s-audit .a-entity .entity-name', (els) => els.map((e) => (e as unknown as { textContent: string }).textContent.trim()))).toEqual(
      expect.arrayContaining(['系统管理员', 'evil 操作员']),
    );
    const ids = await page.$$eval('#s-audit .a-entity .entity-id', (els) =>
      els.map((e) => [(e as unknown as { title: string }).title, (e as unknown as { textContent: string }).textContent.trim()]),
    );
    expect(ids.length).toBeGreaterThan(0);
    for (const [full, shown] of ids) expect(full.startsWith(shown.replace('…', ''))).toBe(true);
    expect(ids.some(([full, shown]) => full.length > shown.length)).toBe(true);
    // What was done and to what, in words (the code on hover): an alarm raised, a login, a user created.
    const actions = await page.$$eval('#s-audit .a-action', (els) => els.map((e) => (e as unknown as { textContent: string }).textContent.trim()));
    expect(actions).toEqual(expect.arrayContaining(['报警', '处置完毕', '登录', '新增']));
    expect(await page.$$eval('#s-audit .a-entity .label', (els) => els.map((e) => (e as unknown as { textContent: string }).textContent.trim()))).toEqual(
      expect.arrayContaining(['报警', '用户']),
    );
    expect(await page.$$('#s-audit .a-action code')).toHaveLength(0);

    await page.click('.bar .lang-switch');
    await page.waitForSelector('[data-tab="audit"]:text("Audit log")');
    await page.waitForSelector('#s-audit .a-action:text("Log in")');
    expect(await rawKeysOnPage(page, ['sup_1', 'stats_op', 'audit_1', 'admin'])).toEqual([]);
    await page.click('[data-tab="stats"]');
    await page.waitForSelector('#s-false-rate');
    expect(await rawKeysOnPage(page, ['sup_1'])).toEqual([]);
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
  });

  it("the audit log answers with each user actor's display name beside the username recorded (null: none set, or not a user)", async () => {
    const items = (await t.http().get('/api/v1/audit-log').query({ limit: 1000 }).set(auth(adminToken)).expect(200)).body.items as {
      actorType: string;
      actorName: string;
      actorDisplayName: string | null;
    }[];
    const byOp = items.filter((x) => x.actorName === 'stats_op');
    expect(byOp.length).toBeGreaterThan(0);
    expect(byOp.every((x) => x.actorType === 'user' && x.actorDisplayName === '王值班')).toBe(true);
    const bySup = items.filter((x) => x.actorName === 'sup_1'); // no display name set
    expect(bySup.length).toBeGreaterThan(0);
    expect(bySup.every((x) => x.actorType === 'user' && x.actorDisplayName === null)).toBe(true);
    expect(items.filter((x) => x.actorType !== 'user').every((x) => x.actorDisplayName === null)).toBe(true);
  });

  it('on a phone the charts wrap their legend onto rows below the plot, every name whole and shown, clear of the plot and its axes; a desktop keeps it on top (issue 13)', async () => {
    /** The chart's drawn texts: the legend's (series names, its pager "1/2") and all the others (axis labels and names). */
    const texts = (chart: string, names: string[]) =>
      page().evaluate(
        ([sel, legendNames]) => {
          type Box = { left: number; top: number; right: number; bottom: number; width: number; height: number };
          type El = { textContent: string | null; getBoundingClientRect(): Box };
          const doc = (globalThis as unknown as { document: { querySelector(s: string): El; querySelectorAll(s: string): ArrayLike<El> } }).document;
          const box = (e: El) => {
            const b = e.getBoundingClientRect();
            return { text: (e.textContent ?? '').trim(), left: b.left, top: b.top, right: b.right, bottom: b.bottom, visible: b.width > 0 && b.height > 0 };
          };
          const all = Array.from(doc.querySelectorAll(`${sel} svg text`));
          const isLegend = (e: El) => legendNames.includes((e.textContent ?? '').trim()) || /^\d+\/\d+$/.test((e.textContent ?? '').trim());
          return { chart: box(doc.querySelector(sel)), legend: all.filter(isLegend).map(box), others: all.filter((e) => !isLegend(e)).map(box) };
        },
        [chart, names] as const,
      );
    let current: ConsolePage;
    const page = () => current.page;
    /** The legend below everything else drawn (the plot lies within its axes' labels), inside the chart. */
    const legendBelow = async (chart: string, names: string[]) => {
      const { chart: c, legend, others } = await texts(chart, names);
      const shown = legend.filter((b) => b.visible);
      expect(shown.length).toBeGreaterThan(0);
      expect(others.length).toBeGreaterThan(0);
      const plotBottom = Math.max(...others.map((b) => b.bottom));
      for (const b of shown) {
        expect(b.top).toBeGreaterThanOrEqual(plotBottom);
        expect(b.bottom).toBeLessThanOrEqual(c.bottom);
        // Inside the chart sideways too: nothing cut at the edge.
        expect(b.left).toBeGreaterThanOrEqual(c.left);
        expect(b.right).toBeLessThanOrEqual(c.right);
      }
      // Every series named in full (no "专职保" cut, none hidden behind a pager's arrow), and no pager ("1/2") at all.
      expect(shown.map((b) => b.text).sort()).toEqual([...names].sort());
      expect(legend.some((b) => /^\d+\/\d+$/.test(b.text))).toBe(false);
      // Wrapped: the names lie on as many rows as the chart made room for (data-legend-rows), and they do not overlap.
      const rowTops = [...new Set(shown.map((b) => Math.round(b.top)))];
      expect(Number(await page().getAttribute(chart, 'data-legend-rows'))).toBeGreaterThanOrEqual(rowTops.length);
      for (const a of shown)
        for (const b of shown) if (a !== b) expect(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top).toBe(true);
      return rowTops.length;
    };
    const targets = Object.values(zhCN.sup.target);
    const responses = [zhCN.sup.ackP50, zhCN.sup.ackP90, zhCN.sup.resolveP50];

    current = await login('audit_1', { viewport: PHONE, isMobile: true, path: '/console/supervisor' });
    await page().waitForSelector('#chart-response[data-layout="narrow"] svg text');
    await legendBelow('#chart-response', responses);
    await page().click('[data-tab="compliance"]');
    await page().waitForSelector('#chart-trend[data-layout="narrow"] svg text');
    // Five targets do not fit one row of a phone: two rows or more, all of them shown.
    expect(await legendBelow('#chart-trend', targets)).toBeGreaterThanOrEqual(2);
    await current.screenshot('supervisor-compliance-phone');
    expect(await current.problems()).toEqual([]);

    // A desktop: as before, the legend on top, above the plot.
    current = await login('audit_1', { path: '/console/supervisor?tab=compliance' });
    await page().waitForSelector('#chart-trend[data-layout="wide"] svg text');
    const wide = await texts('#chart-trend', targets);
    const plotTop = Math.min(...wide.others.map((b) => b.top));
    expect(wide.legend.length).toBe(targets.length);
    for (const b of wide.legend) expect(b.top).toBeLessThan(plotTop);
    expect(await current.problems()).toEqual([]);
  });

  it('on a phone in English the findings name their school (not one letter), and the follow-up table scrolls sideways instead of squeezing it', async () => {
    const cp = await login('stats_op', { viewport: PHONE, isMobile: true });
    const { page } = cp;
    await page.evaluate(() => (globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } }).localStorage.setItem('shouhu.lang', 'en'));
    await page.reload();
    await page.waitForSelector('#patrol-list li[data-task-id] .school');
    const schools = await page.$$eval('#patrol-list .finding .school', (els) =>
      els.map((e) => ({
        text: (e.textContent ?? '').trim(),
        shown: e.getBoundingClientRect().width,
        needed: (e as unknown as { scrollWidth: number }).scrollWidth,
      })),
    );
    expect(schools.map((x) => x.text).sort()).toEqual(['乙小学', '甲小学']);
    for (const x of schools) expect(x.shown).toBeGreaterThanOrEqual(x.needed); // the whole name, no ellipsis
    // The drawer says how many times once: "Times found" then the number.
    await page.click('#patrol-list li[data-task-id] .finding');
    await page.waitForSelector('#finding-detail .fd-count');
    expect((await page.textContent('#finding-detail .fd-count'))?.trim()).toBe('1');
    expect(await rawKeysOnPage(page, ['stats_op'])).toEqual([]);

    const sup = await login('sup_1', { viewport: PHONE, isMobile: true, path: '/console/supervisor' });
    await sup.page.click('[data-tab="patrol"]');
    await sup.page.waitForSelector('#s-tasks tr[data-task-id]');
    const cell = await sup.page.$eval('#s-tasks td.task-school', (e) => ({ width: e.getBoundingClientRect().width, height: e.getBoundingClientRect().height }));
    expect(cell.width).toBeGreaterThanOrEqual(60); // 甲小学 on one line, not a character a line
    expect(cell.height).toBeLessThan(60);
    const scroll = await sup.page.$eval('#s-tasks-scroll', (e) => {
      const el = e as unknown as { scrollWidth: number; clientWidth: number };
      return { scrollWidth: el.scrollWidth, clientWidth: el.clientWidth };
    });
    expect(scroll.scrollWidth).toBeGreaterThan(scroll.clientWidth);
    // The page itself does not scroll sideways: only the table does.
    expect(
      await sup.page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(PHONE.width);
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

  it('shows the four targets for the district, each zone and each school with why they fail; a zone or a school narrows the trend (issue 13)', async () => {
    const h = auth(adminToken);
    const zone2 = (await t.http().post('/api/v1/zones').set(h).send({ districtId: seed.district.id, code: 'Z2', name: '二学区', level: 'middle' }).expect(201))
      .body;
    const schoolC = (
      await t
        .http()
        .post('/api/v1/schools')
        .set(h)
        .send({
          districtId: seed.district.id,
          zoneId: zone2.id,
          code: 'SC',
          name: '丙中学',
          type: 'middle',
          studentCount: 300,
          staffCount: 30,
          timetable: TIMETABLE,
        })
        .expect(201)
    ).body;

    const cp = await login('sup_1', { path: '/console/supervisor' });
    const { page } = cp;
    await page.click('[data-tab="compliance"]');
    await page.waitForSelector('#chart-trend svg');
    expect(await page.textContent('#c-trend-title')).toBe('全区：达标学校占比（%）');
    // The day's shares, per zone, and every school with why it misses each target.
    await page.waitForSelector('#c-day [data-share="guards"] strong:text("0%")');
    expect(await page.$$eval('#c-zones tbody tr', (rows) => rows.length)).toBe(2);
    expect(await page.textContent('#c-zones')).toContain('二学区');
    expect(await page.$$eval('#c-schools tbody tr', (rows) => rows.length)).toBe(3);
    const c = `#c-schools [data-school-id="${schoolC.id}"]`;
    expect(await page.textContent(`${c} [data-target="guards"]`)).toMatch(/^专职保安：专职保安员 0\/\d+ 人，缺 \d+ 人$/);
    expect(await page.textContent(`${c} [data-target="networked"]`)).toContain('未接入摄像机');
    expect(await rawKeysOnPage(page)).toEqual([]);
    await cp.screenshot('supervisor-compliance');

    // A zone: its schools only, the trend of that zone.
    await page.click(`#c-zones [data-zone-id="${zone2.id}"] button`);
    await page.waitForSelector('#c-trend-title:text("二学区：达标学校占比（%）")');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: { querySelectorAll: (s: string) => { length: number } } }).document.querySelectorAll('#c-schools tbody tr')
          .length === 1,
    );
    expect(await page.$('#c-zones')).toBeNull();
    expect(await page.inputValue('#c-zone')).toBe(zone2.id);
    // A school: its trend and its reasons.
    await page.click(`${c} button`);
    await page.waitForSelector('#c-school-filter');
    await page.waitForSelector('#c-trend-title:text("丙中学：达标学校占比（%）")');
    expect(await page.textContent('#c-school-reasons')).toContain('未配备一键报警');
    await page.click('#c-school-filter button');
    await page.waitForSelector('#c-schools');

    // English: the same page in words, no raw keys.
    await page.click('.lang-switch');
    await page.waitForSelector('#c-trend-title:text("二学区: share of schools meeting each target (%)")');
    expect(await page.textContent(`${c} [data-target="networked"]`)).toContain('No camera connected');
    // The target, then why, in English punctuation (a colon and a semicolon with spaces, not '：' and '；').
    expect(await page.textContent(`${c} [data-target="networked"]`)).toBe('Networked: No camera connected; No alarm button');
    expect(await rawKeysOnPage(page)).toEqual([]);
    await page.click('.lang-switch');
    expect(await cp.problems()).toEqual([]);
  });

  it("shows the plans' latest runs; a run opens to its failing schools and the checks they failed (issue 13)", async () => {
    const plan = (
      await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(adminToken))
        .send({ name: '保安配备检查', cron: '0 9 * * 1-5', scope: { kind: 'schools', ids: [seed.schoolA.id, seed.schoolB.id] }, checks: ['guard_staffing'] })
        .expect(201)
    ).body as { id: string };
    const run = (await t.http().post(`/api/v1/patrol-plans/${plan.id}/run`).set(auth(adminToken)).send({}).expect(201)).body as { id: string };
    const cp = await login('audit_1', { path: '/console/supervisor' });
    const { page } = cp;
    await page.click('[data-tab="patrol"]');
    const row = `#s-runs tr[data-run-id="${run.id}"]`;
    await page.waitForSelector(row);
    expect(await page.textContent(row)).toContain('保安配备检查');
    expect(await page.textContent(row)).toContain('手动');
    await page.click(`${row} button`);
    await page.waitForSelector('#s-runs .run-detail li');
    const failing = await page.$$eval('#s-runs .run-detail li', (els) => els.map((e) => (e as unknown as { textContent: string }).textContent.trim()));
    expect(failing.sort()).toEqual(['乙小学：保安配备', '甲小学：保安配备']);
    expect(await rawKeysOnPage(page, ['audit_1'])).toEqual([]);
    // English: the school, an ASCII colon and a space, the checks — never the Chinese full-width colon.
    await page.click('.lang-switch');
    await page.waitForSelector('#s-runs .run-detail li:has-text("Guard staffing")');
    const failingEn = await page.$$eval('#s-runs .run-detail li', (els) => els.map((e) => (e as unknown as { textContent: string }).textContent.trim()));
    expect(failingEn.sort()).toEqual(['乙小学: Guard staffing', '甲小学: Guard staffing']);
    await page.click('.lang-switch');
    expect(await cp.problems()).toEqual([]);
    await t.http().delete(`/api/v1/patrol-plans/${plan.id}`).set(auth(adminToken)).expect(204);
  });

  it('a supervisor sends a closed rectification task back with a reason; the school sees why on the phone and closes it again (issue 13)', async () => {
    const guard = await t.userToken('school_security', seed.schoolB.id, 'guard_b');
    const tasks = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open' }).set(auth(guard.token)).expect(200)).body.items as {
      id: string;
    }[];
    const taskId = tasks[0].id;
    const photo = (
      await t
        .http()
        .post(`/api/v1/rectification-tasks/${taskId}/photos`)
        .set(auth(guard.token))
        .attach('file', jpeg(640, 360), { filename: 'fix.jpg', contentType: 'image/jpeg' })
        .expect(201)
    ).body.id as string;
    await t
      .http()
      .post(`/api/v1/rectification-tasks/${taskId}/close`)
      .set(auth(guard.token))
      .send({ note: '已重启录像机', photoIds: [photo] })
      .expect(200);

    const cp = await login('sup_1', { path: '/console/supervisor' });
    const { page } = cp;
    await page.click('[data-tab="patrol"]');
    await page.click('[data-task-filter="closed"]');
    const row = `#s-tasks [data-task-id="${taskId}"]`;
    // The closing's photos, fetched when asked for.
    expect(await page.textContent(`${row} .task-photos-btn`)).toBe('整改照片（1 张）');
    expect(await page.$(`${row} .evidence-picture`)).toBeNull();
    await page.click(`${row} .task-photos-btn`);
    await page.waitForSelector(`${row} .evidence-picture[data-evidence-id="${photo}"][data-state="shown"]`);
    await page.click(`${row} .reopen-btn`);
    // A reason is required: said in the page's language, nothing sent.
    await page.click(`${row} .reopen-confirm`);
    expect(await page.textContent(`${row} .reopen-form .error`)).toBe('请填写退回原因');
    await page.fill(`${row} .reopen-reason`, '录像机仍然离线，请联系厂家维修');
    await page.click(`${row} .reopen-confirm`);
    await page.waitForSelector('#s-reopened:text("已退回学校重新整改")');
    await page.waitForSelector(row, { state: 'detached' });
    await page.click('[data-task-filter="open"]');
    expect(await page.textContent(`${row} .reopened`)).toBe('已退回 1 次：录像机仍然离线，请联系厂家维修');
    await page.click('.lang-switch');
    await page.waitForSelector(`${row} .reopened:text("sent back 1×: 录像机仍然离线，请联系厂家维修")`);
    await page.click('.lang-switch');
    // The photos of the closing sent back stay with the task.
    expect(await page.textContent(`${row} .task-photos-btn`)).toBe('被退回的整改照片（1 张）');
    expect(await rawKeysOnPage(page)).toEqual([]);
    await cp.screenshot('supervisor-task-sent-back');
    expect(await cp.problems()).toEqual([]);

    // The school's phone shows why, and what it wrote last time; it closes the task again.
    const phone = await login('guard_b', { viewport: PHONE, isMobile: true });
    await phone.page.click('#tab-tasks');
    const mine = `#guard-tasks [data-task-id="${taskId}"]`;
    expect(await phone.page.textContent(`${mine} .task-reopened`)).toContain('被退回重办：录像机仍然离线，请联系厂家维修');
    expect(await phone.page.textContent(mine)).toContain('上次整改情况：已重启录像机');
    await phone.page.waitForSelector(`${mine} .task-last-photos .evidence-picture[data-evidence-id="${photo}"][data-state="shown"]`);
    await phone.page.fill(`${mine} .task-note`, '厂家已更换录像机');
    await phone.page.setInputFiles(`${mine} .task-photo`, { name: 'fix2.jpg', mimeType: 'image/jpeg', buffer: jpeg(1200, 900, 7) });
    await phone.page.waitForSelector(`${mine} .task-photos li[data-photo="sent"]`);
    await phone.page.click(`${mine} .task-close`);
    await phone.page.waitForSelector('#tasks-closed');
    const closedAgain = (await t.http().get(`/api/v1/rectification-tasks/${taskId}`).set(auth(guard.token)).expect(200)).body;
    expect(closedAgain).toMatchObject({ status: 'closed', closeNote: '厂家已更换录像机', reopenCount: 1, closePhotoIds: [expect.any(String)] });
    expect(closedAgain.closePhotoIds).not.toContain(photo); // this closing's own photo
    expect(await phone.problems()).toEqual([]);
  });

  it('an auditor on a phone gets the same read-only page: no action buttons anywhere', async () => {
    const cp = await login('audit_1', { viewport: PHONE, isMobile: true, path: '/console/supervisor' });
    const { page } = cp;
    await page.waitForSelector('#s-count:text("4")');
    await page.waitForSelector('#chart-response svg');
    expect(await page.$$('.act, #act-acknowledge, #act-resolve, #takeover')).toHaveLength(0);
    await page.click('[data-tab="patrol"]');
    await page.waitForSelector('#plan-list');
    expect(await page.$$('#plan-new, .plan-edit, .plan-toggle')).toHaveLength(0);
    // Closed tasks are there to read, never to send back.
    await page.click('[data-task-filter="closed"]');
    await page.waitForSelector('#s-tasks [data-task-id]');
    expect(await page.$$('.reopen-btn, .reopen-form')).toHaveLength(0);
    // Reading includes the closing's photos.
    await page.click('#s-tasks .task-photos-btn');
    await page.waitForSelector('#s-tasks .evidence-picture[data-state="shown"]');
    // Reading includes exporting: the tasks this filter shows, and the findings (issue 13: exports of findings and tasks).
    const [tasks] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-tasks')]);
    expect(tasks.suggestedFilename()).toMatch(/^整改任务_\d{4}-\d{2}-\d{2}\.xlsx$/);
    const [findings] = await Promise.all([page.waitForEvent('download'), page.click('#s-export-findings')]);
    expect(findings.suggestedFilename()).toMatch(/^巡查发现_\d{4}-\d{2}-\d{2}\.xlsx$/);
    expect(await page.$('#s-patrol .error')).toBeNull();
    await page.click('[data-tab="stats"]');
    await cp.screenshot('supervisor-auditor-phone');
    expect(await cp.problems()).toEqual([]);
  });

  it('the task list pages through every task (50 a page); a link to one task shows it alone until 显示全部', async () => {
    const findings = t.app.get(FindingsService);
    const many = Array.from({ length: 60 }, (_, i) => ({
      source: 'audit' as const,
      check: 'gate_open',
      schoolId: seed.schoolA.id,
      subjectKind: 'gate' as const,
      subjectLabel: `门 ${i + 1}`,
      message: `门 ${i + 1} 上课时段开启`,
      at: new Date(),
    }));
    const stored = await t.app.get(DataSource).transaction((m) => findings.record(m, many, new Date()));
    const all = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open', limit: 1 }).set(auth(adminToken)).expect(200)).body.total as number;
    expect(all).toBeGreaterThan(60);

    const cp = await login('sup_1', { path: '/console/supervisor' });
    const { page } = cp;
    await page.click('[data-tab="patrol"]');
    await page.waitForSelector(`#s-tasks-total:text("共 ${all} 条")`);
    expect(await page.$$('#s-tasks tr[data-task-id]')).toHaveLength(50);
    const first = await page.getAttribute('#s-tasks tr[data-task-id]', 'data-task-id');
    await page.click('#s-tasks-pages .el-pager li:has-text("2")');
    await page.waitForFunction(
      (id) =>
        (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string } | null } }).document
          .querySelector('#s-tasks tr[data-task-id]')
          ?.getAttribute('data-task-id') !== id,
      first,
    );
    expect(await page.$$('#s-tasks tr[data-task-id]')).toHaveLength(all - 50);

    // A link to one task (the operator's findings drawer): that task alone, whatever the filter; 显示全部 goes back.
    const one = stored[59].taskId!;
    await page.goto(`${t.baseUrl}/console/supervisor?tab=patrol&task=${one}`);
    await page.waitForSelector('#s-only-task');
    await page.waitForSelector(`#s-tasks tr[data-task-id="${one}"]`);
    expect(await page.$$('#s-tasks tr[data-task-id]')).toHaveLength(1);
    expect(await page.$('#s-tasks-pages')).toBeNull();
    await page.click('#s-only-task button');
    await page.waitForSelector('#s-only-task', { state: 'detached' });
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('#s-tasks tr[data-task-id]')
          .length === 50,
    );
    expect(page.url()).not.toContain('task=');
    expect(await cp.problems()).toEqual([]);
  });
});

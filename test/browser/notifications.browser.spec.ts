import type { Browser } from 'playwright-core';
import { UsersService } from '../../src/modules/auth/users.service';
import { signLink } from '../../src/modules/notifications/ack-links';
import { ConsolePage, launchChromium, openConsole, rawKeysOnPage } from '../support/browser';
import { FakeReceiver, startFakeReceiver } from '../support/fake-receivers';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';
import { waitFor } from '../support/police-receiver';

type EscState = {
  incidents: { id: string; escalationLevel: number }[];
  selected: string | null;
  escalation: {
    heard: number;
    tones: number;
    notices: { level: number; channel: string | null; status: string; recipient: string }[];
    noticesFor: string | null;
  };
  missingKeys: string[];
};

/**
 * Escalation on the operator console in Chromium: the message link lands on its incident after
 * login; an escalated alarm moves to the top with its level and sounds the escalation tone; the
 * notices sent for the selected incident are listed; who is on duty, the roster's gaps and a
 * failing channel are shown. Escalation delays are short (config); nothing measures time.
 */
describe('escalation on the console (Chromium)', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  let browser: Browser;
  let wecom: FakeReceiver;
  let raiser: string;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const open: ConsolePage[] = [];

  const raise = async (location: string) =>
    (await t.http().post('/api/v1/incidents').set(auth(raiser)).send({ schoolId: seed.schoolA.id, type: 'other', location, priority: 'P2' }).expect(201))
      .body as { id: string };
  const state = async (cp: ConsolePage) => (await cp.state()) as unknown as EscState;

  beforeAll(async () => {
    wecom = await startFakeReceiver('wecom');
    t = await startApp({
      alarms: { escalationSeconds: { P1: [600], P2: [600], P3: [600], P4: [600] } },
      notifications: { retryDelayMs: 200, reconcileEveryMs: 0, rosterCheckEveryMs: 0 },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    raiser = (await t.userToken('operator', undefined, 'raiser')).token;
    const sup = await t.userToken('supervisor', undefined, 'sup_zhang');
    await t.app.get(UsersService).update(sup.userId, { displayName: '张主管', phone: '13800000001' });
    const ch = await t
      .http()
      .post('/api/v1/notifications/channels')
      .set(auth(admin))
      .send({ kind: 'wecom', name: '指挥中心群', webhookUrl: wecom.url })
      .expect(201);
    await t
      .http()
      .put('/api/v1/notifications/policies/P2')
      .set(auth(admin))
      .send({
        levels: [
          { targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: [ch.body.id] },
          { targets: [{ kind: 'duty', dutyRole: 'bureau_leader' }] },
        ],
      })
      .expect(400); // P2 has one level in this config: refused
    await t
      .http()
      .put('/api/v1/notifications/policies/P2')
      .set(auth(admin))
      .send({ levels: [{ targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: [ch.body.id] }] })
      .expect(200);
    const now = Date.now();
    await t
      .http()
      .post('/api/v1/duty/shifts')
      .set(auth(admin))
      .send({
        dutyRole: 'duty_supervisor',
        userId: sup.userId,
        startsAt: new Date(now - 1800_000).toISOString(), // entered late: within notifications.rosterMaxBackdateMinutes
        endsAt: new Date(now + 3 * 86400_000).toISOString(),
      })
      .expect(201);
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const cp of open) await cp.close();
    await browser?.close();
    await t?.close();
    await wecom?.close();
  });

  it('the link in a message opens its incident after login', async () => {
    const inc = await raise('链接测试点');
    const token = signLink(t.config.notifications.linkSecret, inc.id, new Date(Date.now() + 600_000));
    const cp = await openConsole(browser, t.baseUrl, { path: `/console/ack/${token}` });
    open.push(cp);
    await cp.login('sup_zhang', PASSWORD);
    await waitFor(async () => (await state(cp))?.selected === inc.id, 20000, 'the incident selected');
    expect(cp.page.url()).toMatch(/\/console\/operator$/);
    await cp.page.waitForSelector(`#detail`);
    // A link that does not verify says so, in the page's language.
    await cp.page.goto(`${t.baseUrl}/console/ack/not-a-token`);
    await cp.page.waitForSelector('#ack-error');
    expect(await cp.page.textContent('#ack-error')).toContain('链接无效');
    expect(await cp.problems()).toEqual([]);
    await t.http().post(`/api/v1/incidents/${inc.id}/acknowledge`).set(auth(raiser)).send({});
  });

  it('an escalated alarm goes to the top with its level and its own tone; its notices, the duty roster and a failing channel are shown', async () => {
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    await cp.login('sup_zhang', PASSWORD);
    await cp.page.waitForSelector('body[data-conn="online"]');
    await cp.page.waitForSelector('#duty-strip');
    // On duty now, and the roles nobody holds shown as gaps.
    await cp.page.waitForSelector('[data-duty-role="duty_supervisor"] strong');
    expect(await cp.page.textContent('[data-duty-role="duty_supervisor"]')).toContain('张主管');
    expect(await cp.page.textContent('[data-duty-role="bureau_leader"]')).toContain('无人值班');
    expect(Number(await cp.page.getAttribute('#duty-strip', 'data-gaps'))).toBe(2);

    const older = await raise('老报警（不升级）');
    t.config.alarms.escalationSeconds.P2 = [1];
    const newer = await raise('新报警（升级）');
    t.config.alarms.escalationSeconds.P2 = [600];
    await waitFor(async () => (await state(cp)).escalation?.heard >= 1, 30000, 'the escalation event');
    const s = await state(cp);
    expect(s.escalation.tones).toBeGreaterThanOrEqual(1);
    // Escalated first, although the other alarm has waited longer.
    expect(s.incidents.map((i) => i.id).slice(0, 2)).toEqual([newer.id, older.id]);
    expect(s.incidents[0].escalationLevel).toBe(1);
    const row = cp.page.locator(`[data-incident-id="${newer.id}"]`).first();
    expect(await row.getAttribute('class')).toContain('escalated');
    expect(await row.textContent()).toContain('1');

    await row.click();
    await cp.page.waitForSelector('#notices li[data-status="sent"][data-channel="wecom"]', { timeout: 20000 });
    expect(await cp.page.textContent('#notices')).toContain('张主管（值班主管）');
    expect(await cp.page.textContent('#notices')).toContain('已送达');
    expect((await state(cp)).escalation.notices).toEqual([{ level: 1, channel: 'wecom', status: 'sent', recipient: '张主管（值班主管）' }]);
    expect(await rawKeysOnPage(cp.page, ['sup_zhang', 'raiser'])).toEqual([]);

    // The group robot starts failing: the console says so.
    wecom.failUntil = Date.now() + 3_600_000;
    t.config.alarms.escalationSeconds.P2 = [1];
    await raise('渠道故障时的报警');
    t.config.alarms.escalationSeconds.P2 = [600];
    await cp.page.waitForSelector('#channel-failing', { timeout: 30000 });
    expect(await cp.page.textContent('#channel-failing')).toContain('指挥中心群');
    await cp.screenshot('escalation-console');
    expect(await cp.problems()).toEqual([]);
    expect((await state(cp)).missingKeys).toEqual([]);
    wecom.failUntil = 0;
  });
  it('a supervisor keeps the roster on the console: adds a shift, hands the shift on duty over, silences a channel for maintenance; operators only read (issue 14)', async () => {
    const leader = await t.userToken('supervisor', undefined, 'leader_li');
    await t.app.get(UsersService).update(leader.userId, { displayName: '李局长' });
    const SH = new Intl.DateTimeFormat('sv-SE', {
      timeZone: 'Asia/Shanghai',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    const input = (ms: number) => SH.format(new Date(ms)).replace(' ', 'T');
    const cp = await openConsole(browser, t.baseUrl);
    open.push(cp);
    await cp.login('sup_zhang', PASSWORD);
    const { page } = cp;
    // From the duty strip to the roster: the bureau leader's duty is a gap.
    await page.click('#duty-link');
    await page.waitForSelector('#duty-page');
    await page.waitForSelector('#d-gaps [data-duty-role="bureau_leader"]');
    expect(await page.textContent('#d-now [data-duty-role="bureau_leader"]')).toContain('无人值班');

    // A shift that ends before it starts: the field says so, in zh-CN.
    await page.selectOption('#d-role', 'bureau_leader');
    await page.selectOption('#d-user', leader.userId);
    await page.fill('#d-starts', input(Date.now() - 1_800_000));
    await page.fill('#d-ends', input(Date.now() - 7_200_000));
    await page.click('#d-add');
    await page.waitForSelector('#d-new .error');
    expect(await page.textContent('#d-new')).toContain('结束时间须晚于开始时间');
    // The server's own reasons, by field, each submit starting clean: a shift longer than 31 days…
    await page.fill('#d-ends', input(Date.now() + 40 * 86_400_000));
    await page.click('#d-add');
    await page.waitForSelector('#d-new .error:text("一个班次最长 31 天")');
    expect(await page.textContent('#d-new')).not.toContain('结束时间须晚于开始时间');
    // …and one wholly in the past.
    await page.fill('#d-starts', input(Date.now() - 5 * 3_600_000));
    await page.fill('#d-ends', input(Date.now() - 4 * 3_600_000));
    await page.click('#d-add');
    await page.waitForSelector('#d-new .error:text("已结束的班次不能再排")');
    expect(await page.textContent('#d-new')).not.toContain('一个班次最长');
    expect(await page.textContent('#d-new')).not.toContain('填写有误');
    await page.fill('#d-starts', input(Date.now() - 1_800_000));
    // The leader on duty from half an hour ago for two days: on duty now, the gap (notifications.rosterLookaheadHours ahead) gone.
    await page.fill('#d-ends', input(Date.now() + 2 * 86_400_000));
    await page.fill('#d-note', '夜班带班');
    await page.click('#d-add');
    await page.waitForSelector('#d-done:text("已添加排班")');
    await page.waitForSelector('#d-now [data-duty-role="bureau_leader"] .on-duty:has-text("李局长")');
    expect(await page.$('#d-gaps [data-duty-role="bureau_leader"]')).toBeNull();
    expect(await page.textContent('#d-shifts')).toContain('夜班带班');
    // The same duty for the same person again: the 409 names the shift it clashes with, in Beijing time.
    const leaderShift = (await t.http().get('/api/v1/duty/now').set(auth(raiser)).expect(200)).body.onDuty.bureau_leader[0];
    await page.selectOption('#d-role', 'bureau_leader');
    await page.selectOption('#d-user', leader.userId);
    await page.fill('#d-starts', input(Date.now() + 3_600_000));
    await page.fill('#d-ends', input(Date.now() + 5 * 3_600_000));
    await page.click('#d-add');
    await page.waitForSelector('#d-add-error');
    const beijing = (iso: string) =>
      new Intl.DateTimeFormat('zh-CN', {
        timeZone: 'Asia/Shanghai',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hour12: false,
      }).format(new Date(iso));
    expect(await page.textContent('#d-add-error')).toBe(`此人在该时段已有同一岗位的班次（${beijing(leaderShift.startsAt)} – ${beijing(leaderShift.endsAt)}）`);

    // 张主管 hands his shift over to 李局长, with what he must know.
    const mine = '#d-now [data-duty-role="duty_supervisor"]';
    await page.click(`${mine} .handover-btn`);
    await page.selectOption(`${mine} .handover-to`, leader.userId);
    await page.fill(`${mine} .handover-note`, '北门摄像头待修');
    await page.click(`${mine} .handover-confirm`);
    await page.waitForSelector('#d-done:text("已交接给 李局长")');
    await page.waitForSelector(`${mine} .on-duty:has-text("李局长")`);
    const dutyNow = (await t.http().get('/api/v1/duty/now').set(auth(raiser)).expect(200)).body;
    expect(dutyNow.onDuty.duty_supervisor.map((x: { userName: string }) => x.userName)).toEqual(['李局长']);
    // Shifts that have begun are the record: no delete, and the button says why (the server would answer 409).
    const ended = dutyNow.onDuty.duty_supervisor[0].handedOverFromId as string;
    const removeOf = (id: string) => `#d-shifts tr[data-shift-id="${id}"] .shift-remove`;
    expect(await page.isDisabled(removeOf(ended))).toBe(true);
    expect(await page.getAttribute(`#d-shifts tr[data-shift-id="${ended}"] span[title]`, 'title')).toContain('已结束的班次是值班记录');
    const onDutyId = dutyNow.onDuty.duty_supervisor[0].id as string;
    expect(await page.isDisabled(removeOf(onDutyId))).toBe(true);
    expect(await page.getAttribute(`#d-shifts tr[data-shift-id="${onDutyId}"] span[title]`, 'title')).toContain('请交接班');

    // The group robot's provider has maintenance tonight: silenced (audited), then back.
    const channel = '#d-channels [data-channel-id]';
    await page.click(`${channel} .silence-btn`);
    await page.fill(`${channel} .silence-reason`, '运营商网关维护');
    await page.click(`${channel} .silence-confirm`);
    await page.waitForSelector(`${channel}[data-state="silenced"]`);
    expect(await page.textContent(channel)).toContain('运营商网关维护');
    expect(await rawKeysOnPage(page, ['sup_zhang', 'leader_li'])).toEqual([]);
    await cp.screenshot('duty-roster');
    await page.click(`${channel} .unsilence-btn`);
    await page.waitForSelector(`${channel}:not([data-state="silenced"])`);
    const audit = (await t.db.query(`SELECT action FROM audit_log WHERE entity = 'notification_channel' ORDER BY id`)).rows.map((r) => r.action);
    expect(audit).toEqual(expect.arrayContaining(['silence', 'unsilence']));
    // English: the same page in words.
    await page.click('.lang-switch');
    await page.waitForSelector('#duty-page h2:text("Duty roster and notification channels")');
    expect(await rawKeysOnPage(page, ['sup_zhang', 'leader_li'])).toEqual([]);
    await page.click('.lang-switch');

    // What others change is shown as it happens, no reload (console events, as on the duty strip; attack pass 10 #5).
    // A shift for the operator desk added on another console:
    const gone = await t.userToken('operator', undefined, 'op_gone', '王值班');
    const desk = await t
      .http()
      .post('/api/v1/duty/shifts')
      .set(auth(admin))
      .send({
        dutyRole: 'operator_desk',
        userId: gone.userId,
        startsAt: new Date(Date.now() - 600_000).toISOString(),
        endsAt: new Date(Date.now() + 8 * 3_600_000).toISOString(),
      })
      .expect(201);
    const deskNow = '#d-now [data-duty-role="operator_desk"]';
    const deskRow = `#d-shifts tr[data-shift-id="${desk.body.id}"]`;
    await page.waitForSelector(`${deskNow} .on-duty:has-text("王值班")`);
    await page.waitForSelector(deskRow);
    // Its person renamed by an admin (change 'person'): on duty now, the shift's row and the people to pick say the new name.
    await t.http().patch(`/api/v1/users/${gone.userId}`).set(auth(admin)).send({ displayName: '王值班员' }).expect(200);
    await page.waitForSelector(`${deskRow}:has-text("王值班员")`);
    await page.waitForSelector(`${deskNow} .on-duty:has-text("王值班员")`);
    expect(await page.textContent(`#d-user option[value="${gone.userId}"]`)).toContain('王值班员');
    // Then disabled mid-shift: the shift is shown, but as not counted, the desk as unmanned, and nobody offers them any more.
    await t.http().patch(`/api/v1/users/${gone.userId}`).set(auth(admin)).send({ disabled: true }).expect(200);
    await page.waitForSelector(`${deskNow} .not-counted`);
    expect(await page.textContent(`${deskNow} .not-counted`)).toContain('王值班员（不计入值班：用户已停用）');
    expect(await page.textContent(deskNow)).toContain('无人值班');
    expect(await page.textContent(deskRow)).toContain('不计入值班：用户已停用');
    await page.waitForSelector(`#d-user option[value="${gone.userId}"]`, { state: 'detached' });
    expect(await cp.problems()).toEqual([]);

    // An operator reads the roster: no form, no handover, no silence.
    const reader = await openConsole(browser, t.baseUrl, { path: '/console/duty' });
    open.push(reader);
    await reader.login('raiser', PASSWORD);
    await reader.page.waitForSelector('#duty-page');
    await reader.page.waitForSelector('#d-now [data-duty-role="bureau_leader"] .on-duty');
    expect(await reader.page.$$('#d-new, .handover-btn, .silence-btn, .unsilence-btn, .shift-remove')).toHaveLength(0);
    expect(await reader.page.textContent('#duty-page')).toContain('当前角色只能查看值班表');
    expect(await reader.problems()).toEqual([]);
  });
});

import type { Browser, Page } from 'playwright-core';
import { ConsolePage, launchChromium, openConsole, rawKeysOnPage } from '../support/browser';
import { FakeReceiver, startFakeReceiver } from '../support/fake-receivers';
import { auth, PASSWORD, startApp, TestApp } from '../support/harness';

type Channel = { id: string; name: string; kind: string; webhookUrl: string; hasSecret: boolean };
type Policy = { priority: string; source: string; levels: { level: number; targets: Record<string, string>[]; channelIds: string[] | null }[] };

/**
 * The duty page's notification editor in Chromium (admins): a DingTalk channel made with its 加签 secret
 * (never shown back), a test message to the fake DingTalk robot and its answer in plain Chinese — accepted,
 * refused for a wrong secret, busy — an escalation level pointed at the channel and still there after a
 * reload, a channel deleted after a confirmation; the server's field refusals next to their field; and
 * supervisors and operators reading channels and policies with no edit control (nor its code loaded).
 * The default escalation delays apply (P2: 60 s and 120 s, two levels); nothing waits on them.
 */
describe('notification channels and escalation policies on the duty page (Chromium)', () => {
  jest.setTimeout(60_000);
  let t: TestApp;
  let browser: Browser;
  let dingtalk: FakeReceiver;
  let admin: string;
  const open: ConsolePage[] = [];

  const channels = async () => (await t.http().get('/api/v1/notifications/channels').set(auth(admin)).expect(200)).body as Channel[];
  const policies = async () => (await t.http().get('/api/v1/notifications/policies').set(auth(admin)).expect(200)).body as Policy[];
  const dutyPage = async (username: string) => {
    const cp = await openConsole(browser, t.baseUrl, { path: '/console/duty' });
    open.push(cp);
    const scripts: string[] = [];
    cp.page.on('request', (r) => r.resourceType() === 'script' && scripts.push(r.url()));
    await cp.login(username, PASSWORD);
    await cp.page.waitForSelector('#duty-page');
    await cp.page.waitForSelector('#d-policies .policy[data-priority="P4"] .policy-level');
    return { cp, page: cp.page, scripts };
  };
  const row = (id: string) => `#d-channels li[data-channel-id="${id}"]`;
  /** Sends a test message from the channel's row and reads this answer (not the one shown before: it goes at the click). */
  const answerOf = async (page: Page, id: string, ok: boolean) => {
    await Promise.all([page.waitForResponse((r) => r.url().endsWith(`/channels/${id}/test`)), page.click(`${row(id)} .channel-test`)]);
    return (await page.waitForSelector(`${row(id)} .test-answer[data-ok="${ok}"]`)).textContent();
  };

  beforeAll(async () => {
    dingtalk = await startFakeReceiver('dingtalk');
    t = await startApp({ notifications: { reconcileEveryMs: 0, rosterCheckEveryMs: 0 } });
    admin = (await t.userToken('admin', undefined, 'admin_wang', '王管理员')).token;
    await t.userToken('supervisor', undefined, 'sup_li', '李主管');
    await t.userToken('operator', undefined, 'op_zhao', '赵值班');
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const cp of open) await cp.close();
    await browser?.close();
    await t?.close();
    await dingtalk?.close();
  });

  it('an admin adds a DingTalk channel with its secret, tests it, points an escalation level at it (kept after a reload) and deletes another', async () => {
    const { cp, page } = await dutyPage('admin_wang');

    // A new DingTalk robot with its 加签 secret.
    await page.click('#ch-add');
    await page.selectOption('#ch-kind', 'dingtalk');
    await page.fill('#ch-name', '指挥中心钉钉群');
    await page.fill('#ch-url', dingtalk.url);
    await page.fill('#ch-secret', dingtalk.secret);
    await page.click('#ch-save');
    await page.waitForSelector('#d-done:text("已新增渠道 指挥中心钉钉群")');
    const [ch] = await channels();
    expect(ch).toMatchObject({ kind: 'dingtalk', name: '指挥中心钉钉群', hasSecret: true });
    await page.waitForSelector(`${row(ch.id)} .channel-test`);

    // A test message reaches the robot, signed: the answer in plain words, the provider's own code beside it.
    expect(await answerOf(page, ch.id, true)).toContain('测试消息已送达：钉钉应答成功');
    expect(await page.textContent(`${row(ch.id)} .test-code`)).toContain('0 ok');
    expect(dingtalk.received).toHaveLength(1);
    expect(dingtalk.received[0].text).toContain('测试学校');

    // Edited with a wrong secret: the form never shows the stored one, and the robot's refusal is explained.
    await page.click(`${row(ch.id)} .channel-edit`);
    await page.waitForSelector('#ch-form');
    expect(await page.inputValue('#ch-secret')).toBe('');
    expect(await page.inputValue('#ch-url')).toBe('');
    expect(await page.textContent('#ch-form')).toContain('已设置密钥（不回显）');
    expect(await page.content()).not.toContain(dingtalk.secret);
    expect(await page.content()).not.toContain(dingtalk.url.split('access_token=')[1]);
    await page.fill('#ch-secret', 'SECnot-the-robots-secret-0000');
    await page.click('#ch-save');
    await page.waitForSelector('#d-done:text("已保存渠道 指挥中心钉钉群")');
    expect(await answerOf(page, ch.id, false)).toContain('测试消息未送达：签名不匹配或时间戳无效');
    expect(await page.textContent(`${row(ch.id)} .test-code`)).toContain('310000');
    // The right secret again; then the robot is busy (rate limit): said so.
    await page.click(`${row(ch.id)} .channel-edit`);
    await page.fill('#ch-secret', dingtalk.secret);
    await page.click('#ch-save');
    await page.waitForSelector('#ch-add');
    dingtalk.failUntil = Date.now() + 3_600_000;
    expect(await answerOf(page, ch.id, false)).toContain('钉钉繁忙或限流');
    dingtalk.failUntil = 0;
    expect(await answerOf(page, ch.id, true)).toContain('钉钉应答成功');
    expect(dingtalk.rejected.map((r) => r.code)).toEqual(['310000']);

    // P2's first level: also the group itself, and only through this channel.
    const p2 = '#d-policies .policy[data-priority="P2"]';
    await page.click(`${p2} .policy-edit`);
    const level1 = `${p2} .policy-form .policy-level[data-level="1"]`;
    await page.click(`${level1} .target-add`);
    await page.selectOption(`${level1} .policy-target[data-index="1"] .target-kind`, 'group');
    await page.selectOption(`${level1} .policy-target[data-index="1"] .target-channel`, ch.id);
    await page.check(`${level1} .channels-some`);
    await page.check(`${level1} .channel-pick[value="${ch.id}"]`);
    await cp.screenshot('notification-editor-policy-form');
    await page.click(`${p2} .policy-save`);
    await page.waitForSelector('#policy-done:text("已保存二级报警的升级策略")');

    await page.reload();
    const shown = `${p2}[data-source="stored"] .policy-level[data-level="1"]`;
    await page.waitForSelector(shown);
    expect(await page.textContent(`${shown} .level-channels`)).toBe('指挥中心钉钉群');
    expect(await page.textContent(`${shown} .level-targets`)).toBe('值班主管（当班者）、群：指挥中心钉钉群');
    expect(await page.textContent(`${p2} .policy-level[data-level="2"] .level-channels`)).toBe('全部启用的渠道');
    expect((await policies()).find((p) => p.priority === 'P2')!.levels[0]).toMatchObject({
      targets: [
        { kind: 'duty', dutyRole: 'duty_supervisor' },
        { kind: 'group', channelId: ch.id },
      ],
      channelIds: [ch.id],
    });

    // Another channel goes, after a confirmation that names it.
    const spare = (
      await t
        .http()
        .post('/api/v1/notifications/channels')
        .set(auth(admin))
        .send({ kind: 'wecom', name: '旧企业微信群', webhookUrl: 'https://example.com/hook' })
        .expect(201)
    ).body as Channel;
    await page.reload();
    await page.click(`${row(spare.id)} .channel-remove`);
    expect(await page.textContent(`${row(spare.id)} .remove-confirm`)).toContain('确定删除渠道“旧企业微信群”');
    await page.click(`${row(spare.id)} .remove-yes`);
    await page.waitForSelector('#d-done:text("已删除渠道 旧企业微信群")');
    expect(await page.$(row(spare.id))).toBeNull();
    expect((await channels()).map((c) => c.id)).toEqual([ch.id]);
    const audit = (await t.db.query(`SELECT action FROM audit_log WHERE entity = 'notification_channel' ORDER BY id`)).rows.map((r) => r.action);
    expect(audit).toEqual(['create', 'update', 'update', 'create', 'delete']);

    // Every word in the page's language: Chinese, then English.
    expect(await rawKeysOnPage(page, ['admin_wang'])).toEqual([]);
    await cp.screenshot('notification-editor');
    await page.click('.lang-switch');
    await page.waitForSelector('#d-policies h3:text("Escalation policies")');
    expect(await page.textContent(`${shown} .level-targets`)).toBe('Duty supervisor (on duty), group: 指挥中心钉钉群');
    expect(await answerOf(page, ch.id, true)).toContain('Test message delivered: DingTalk accepted it.');
    expect(await rawKeysOnPage(page, ['admin_wang'])).toEqual([]);
    await page.click('.lang-switch');
    expect((await cp.state()).missingKeys).toEqual([]);
    expect(await cp.problems()).toEqual([]);
  });

  it('what the server refuses is said next to its field, in Chinese: a webhook that is no web address, a short SMS secret, a channel gone from a policy', async () => {
    const { cp, page } = await dutyPage('admin_wang');
    const before = (await channels()).length;
    await page.click('#ch-add');
    await page.selectOption('#ch-kind', 'dingtalk');
    await page.fill('#ch-name', '填错地址的群');
    await page.fill('#ch-url', 'ftp://oapi.dingtalk.com/robot/send?access_token=abc');
    await page.click('#ch-save');
    expect(await (await page.waitForSelector('#ch-form .error[data-field="webhookUrl"]')).textContent()).toBe('须为 http 或 https 开头的完整地址');
    expect(await page.$('#ch-error')).toBeNull();

    // An SMS gateway signs with at least 16 characters; each submit starts clean.
    await page.selectOption('#ch-kind', 'sms');
    await page.fill('#ch-url', 'https://sms.example.com/send');
    await page.fill('#ch-secret', 'short');
    await page.click('#ch-save');
    expect(await (await page.waitForSelector('#ch-form .error[data-field="secret"]')).textContent()).toBe('密钥至少 16 个字符');
    expect(await page.$('#ch-form .error[data-field="webhookUrl"]')).toBeNull();
    await cp.screenshot('notification-editor-refused');
    expect(await channels()).toHaveLength(before);

    // A policy naming a channel deleted meanwhile: the level's channel list says so.
    const gone = (
      await t
        .http()
        .post('/api/v1/notifications/channels')
        .set(auth(admin))
        .send({ kind: 'wecom', name: '将被删除的群', webhookUrl: 'https://example.com/h2' })
        .expect(201)
    ).body as Channel;
    await page.reload();
    const p3 = '#d-policies .policy[data-priority="P3"]';
    await page.click(`${p3} .policy-edit`);
    const level2 = `${p3} .policy-form .policy-level[data-level="2"]`;
    await page.check(`${level2} .channels-some`);
    await page.check(`${level2} .channel-pick[value="${gone.id}"]`);
    await t.http().delete(`/api/v1/notifications/channels/${gone.id}`).set(auth(admin)).expect(204);
    await page.click(`${p3} .policy-save`);
    expect(await (await page.waitForSelector(`${level2} .error[data-field="channelIds"]`)).textContent()).toBe('渠道不存在（可能已被删除）');
    expect(await page.$(`${p3} .policy-form .policy-level[data-level="1"] .error`)).toBeNull();
    expect((await policies()).find((p) => p.priority === 'P3')!.source).toBe('default');
    expect(await rawKeysOnPage(page, ['admin_wang'])).toEqual([]);
    expect(await cp.problems()).toEqual([]);
  });

  it('supervisors and operators read the channels and policies with no edit control, and never load the editor', async () => {
    const [ch] = await channels();
    await t
      .http()
      .put('/api/v1/notifications/policies/P4')
      .set(auth(admin))
      .send({ levels: [{ targets: [{ kind: 'duty', dutyRole: 'operator_desk' }], channelIds: [ch.id] }, { targets: [{ kind: 'group', channelId: ch.id }] }] })
      .expect(200);
    for (const who of ['sup_li', 'op_zhao']) {
      const { cp, page, scripts } = await dutyPage(who);
      await page.waitForSelector(`${row(ch.id)}`);
      const p4 = '#d-policies .policy[data-priority="P4"][data-source="stored"]';
      await page.waitForSelector(p4);
      expect(await page.textContent(`${p4} .policy-level[data-level="1"] .level-channels`)).toBe('指挥中心钉钉群');
      expect(await page.textContent(`${p4} .policy-level[data-level="2"] .level-targets`)).toBe('群：指挥中心钉钉群');
      expect(await page.textContent('#d-policies')).toContain('升级策略由系统管理员维护');
      expect(await page.$$('#ch-add, #ch-form, .channel-edit, .channel-test, .channel-remove, .policy-edit, .policy-form')).toHaveLength(0);
      expect(scripts.filter((u) => /ChannelForm|ChannelActions|PolicyEditForm/.test(u))).toEqual([]);
      expect(await rawKeysOnPage(page, [who])).toEqual([]);
      expect(await cp.problems()).toEqual([]);
    }
  });

  it('deleting a channel escalation levels use names those levels: blocked when one would notify nobody, else deleted and taken out of them', async () => {
    const [ch] = await channels();
    // P2 level 1 tells the duty supervisor through this channel only, and its group: without it, nobody.
    const { cp, page } = await dutyPage('admin_wang');
    await page.click(`${row(ch.id)} .channel-remove`);
    await page.click(`${row(ch.id)} .remove-yes`);
    const panel = `${row(ch.id)} .channel-in-use`;
    await page.waitForSelector(`${panel}[data-blocked="true"]`);
    expect(await page.textContent(`${panel} .use-level[data-priority="P2"][data-level="1"]`)).toMatch(
      /二级报警第 1 级（人员通知渠道、群通知对象、唯一渠道）\s*移除后该级别将无法通知任何人/,
    );
    expect(await page.textContent(`${panel} .use-blocked`)).toContain('不能删除：请先在升级策略中为上述级别选择其他渠道');
    expect(await page.$(`${panel} .detach-yes`)).toBeNull();
    await cp.screenshot('notification-editor-channel-in-use-blocked');
    await page.click(`${panel} .detach-no`);
    await page.waitForSelector(`${row(ch.id)} .channel-remove`);
    expect((await channels()).map((c) => c.id)).toContain(ch.id);

    // With a second channel for the supervisor (and P4 no longer using it), the same delete takes it out of P2 level 1.
    const spare = (
      await t
        .http()
        .post('/api/v1/notifications/channels')
        .set(auth(admin))
        .send({ kind: 'wecom', name: '备用企业微信群', webhookUrl: 'https://example.com/spare' })
        .expect(201)
    ).body as Channel;
    const sup = { kind: 'duty', dutyRole: 'duty_supervisor' };
    await t
      .http()
      .put('/api/v1/notifications/policies/P2')
      .set(auth(admin))
      .send({ levels: [{ targets: [sup, { kind: 'group', channelId: ch.id }], channelIds: [ch.id, spare.id] }, { targets: [sup] }] })
      .expect(200);
    await t
      .http()
      .put('/api/v1/notifications/policies/P4')
      .set(auth(admin))
      .send({ levels: [{ targets: [sup] }, { targets: [sup], channelIds: [spare.id] }] })
      .expect(200);
    await page.reload();
    await page.click(`${row(ch.id)} .channel-remove`);
    await page.click(`${row(ch.id)} .remove-yes`);
    await page.waitForSelector(`${panel}[data-blocked="false"]`);
    expect(await page.textContent(`${panel} p`)).toContain('升级策略中以下级别使用渠道“指挥中心钉钉群”');
    expect((await page.textContent(`${panel} .use-level`))!.trim()).toBe('二级报警第 1 级（人员通知渠道、群通知对象）');
    expect(await page.textContent(`${panel} .detach-yes`)).toContain('删除并从这些级别中移除');
    await page.click(`${panel} .detach-yes`);
    await page.waitForSelector('#d-done:text("已删除渠道 指挥中心钉钉群，并已从 1 个升级级别中移除")');
    expect(await page.$(row(ch.id))).toBeNull();
    // The policies shown are read again: P2 level 1 now goes through the spare channel only.
    const p2 = '#d-policies .policy[data-priority="P2"] .policy-level[data-level="1"]';
    await page.waitForSelector(`${p2} .level-channels:text-is("备用企业微信群")`);
    expect(await page.textContent(`${p2} .level-targets`)).toBe('值班主管（当班者）');
    expect((await policies()).find((p) => p.priority === 'P2')!.levels[0]).toMatchObject({ targets: [sup], channelIds: [spare.id] });

    // Disabling the spare channel in its form: the last channel of P2 level 1 and P4 level 2, so refused, saying why. It is the
    // last enabled channel too: every other level (the defaults of P1 and P3 among them) tells its people through every enabled
    // channel, and would reach nobody (attack pass 10 #4).
    await page.click(`${row(spare.id)} .channel-edit`);
    await page.uncheck('#ch-enabled');
    await page.click('#ch-save');
    await page.waitForSelector('#ch-form .channel-in-use[data-blocked="true"]');
    expect(await page.textContent('#ch-form .channel-in-use .use-blocked')).toContain('不能停用');
    expect(await page.textContent('#ch-form .channel-in-use .use-blocked')).toContain('这是最后一个启用的渠道：请先新增或启用其他渠道');
    expect(await page.$$eval('#ch-form .use-level', (els) => els.map((e) => `${e.getAttribute('data-priority')}-${e.getAttribute('data-level')}`))).toEqual([
      'P1-1',
      'P1-2',
      'P2-1',
      'P2-2',
      'P3-1',
      'P3-2',
      'P4-1',
      'P4-2',
    ]);
    expect(await page.textContent('#ch-form .use-level[data-priority="P1"][data-level="1"]')).toMatch(
      /一级报警第 1 级（人员经全部启用的渠道通知，而这是最后一个启用的渠道）\s*移除后该级别将无法通知任何人/,
    );
    expect(await page.$('#ch-error')).toBeNull();
    expect((await channels()).find((c) => c.id === spare.id)).toMatchObject({ enabled: true });
    expect(await rawKeysOnPage(page, ['admin_wang'])).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
    expect(await cp.problems()).toEqual([]);
  });
});

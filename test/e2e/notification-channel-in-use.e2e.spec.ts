import { auth, startApp, TestApp } from '../support/harness';
import { waitFor } from '../support/police-receiver';

type Level = { level: number; targets: Record<string, string>[]; channelIds: string[] | null };
type Policy = { priority: string; source: string; levels: Level[] };
type Use = { priority: string; level: number; usedAs: string[]; onlyChannel: boolean; allEnabledChannels: boolean; leftUnreachable: string | null };

/**
 * A notification channel that escalation policies name is not deleted (or disabled) behind their back: the
 * supervisor's phone must not stop ringing because an admin tidied the channel list. 409 naming the levels;
 * `?detach=true` takes it out of them in the same transaction (audited); refused even then when a level would be
 * left reaching nobody, or its people with no channel. Default escalation delays (two levels per priority); no
 * alarm is raised here, so nothing is sent.
 */
describe('notification channels named by escalation policies', () => {
  let t: TestApp;
  let admin: string;
  let sup: string;
  const ch: Record<string, string> = {};

  const channel = async (kind: string, name: string) =>
    (
      await t
        .http()
        .post('/api/v1/notifications/channels')
        .set(auth(admin))
        .send({ kind, name, webhookUrl: `http://127.0.0.1:9/${encodeURIComponent(name)}`, ...(kind === 'sms' ? { secret: 'sixteen-chars-secret' } : {}) })
        .expect(201)
    ).body.id as string;
  const put = (priority: string, levels: object[]) => t.http().put(`/api/v1/notifications/policies/${priority}`).set(auth(admin)).send({ levels }).expect(200);
  const policies = async () => (await t.http().get('/api/v1/notifications/policies').set(auth(admin)).expect(200)).body as Policy[];
  const policy = async (p: string) => (await policies()).find((x) => x.priority === p)!;
  const del = (id: string, query = '') => t.http().delete(`/api/v1/notifications/channels/${id}${query}`).set(auth(admin));
  const patch = (id: string, body: object, query = '') => t.http().patch(`/api/v1/notifications/channels/${id}${query}`).set(auth(admin)).send(body);
  const exists = async (id: string) => (await t.db.query(`SELECT 1 FROM notification_channels WHERE id = $1`, [id])).rowCount === 1;
  const audits = async (entity: string) =>
    (await t.db.query(`SELECT action, entity_id, before, after, request_id FROM audit_log WHERE entity = $1 ORDER BY id`, [entity])).rows as {
      action: string;
      entity_id: string | null;
      before: Record<string, unknown> | null;
      after: Record<string, unknown> | null;
      request_id: string | null;
    }[];
  const supervisor = { kind: 'duty', dutyRole: 'duty_supervisor' };
  const leader = { kind: 'duty', dutyRole: 'bureau_leader' };
  const operator = { kind: 'duty', dutyRole: 'operator_desk' };
  const group = (id: string) => ({ kind: 'group', channelId: id });

  beforeAll(async () => {
    t = await startApp({ notifications: { reconcileEveryMs: 0, rosterCheckEveryMs: 0 } });
    admin = (await t.userToken('admin')).token;
    sup = (await t.userToken('supervisor')).token;
    ch.sms = await channel('sms', '短信网关');
    ch.wecom = await channel('wecom', '企业微信值班群');
    ch.dingtalk = await channel('dingtalk', '钉钉值班群');
    ch.feishu = await channel('feishu', '飞书指挥群');
  });

  afterAll(async () => {
    await t?.close();
  });

  it('a channel no policy names is deleted as before (204, audited); the default policies name no channel, so they hold none while another is enabled', async () => {
    expect((await policies()).map((p) => p.source)).toEqual(['default', 'default', 'default', 'default']);
    expect((await policies()).flatMap((p) => p.levels.map((l) => l.channelIds))).toEqual(Array(8).fill(null));
    const spare = await channel('wecom', '旧群');
    await del(spare).expect(204);
    expect(await exists(spare)).toBe(false);
    const [entry] = (await audits('notification_channel')).filter((a) => a.entity_id === spare && a.action === 'delete');
    expect(entry).toMatchObject({ after: null, before: expect.objectContaining({ name: '旧群' }) });
    expect(await audits('escalation_policy')).toEqual([]);
    await del(spare).expect(404);
  });

  it('refuses to delete a channel levels name: 409 IN_USE listing priority, level, how it is named and whether it is the only channel; nothing changes', async () => {
    await put('P1', [
      { targets: [supervisor, group(ch.feishu)], channelIds: [ch.sms] },
      { targets: [leader], channelIds: [ch.sms, ch.wecom] },
    ]);
    await put('P2', [
      { targets: [supervisor, group(ch.sms)], channelIds: null },
      { targets: [leader], channelIds: [ch.wecom] },
    ]);
    const before = await policies();
    const r = await del(ch.sms).expect(409);
    expect(r.body.error.code).toBe('NOTIFICATION_CHANNEL.IN_USE');
    expect(r.body.error.details).toEqual({
      channelId: ch.sms,
      levels: [
        // Its people lose their only channel; the Feishu group is still told.
        { priority: 'P1', level: 1, usedAs: ['channels'], onlyChannel: false, allEnabledChannels: false, leftUnreachable: 'people_without_channel' },
        { priority: 'P1', level: 2, usedAs: ['channels'], onlyChannel: false, allEnabledChannels: false, leftUnreachable: null },
        // The only channel it names, but its people go through every enabled channel.
        { priority: 'P2', level: 1, usedAs: ['group'], onlyChannel: true, allEnabledChannels: true, leftUnreachable: null },
      ],
    });
    expect(r.body.error.message).toContain('P1 level 1');
    // With detach: P1 level 1's supervisor would be left with no channel at all: refused, naming that.
    const refused = await del(ch.sms, '?detach=true').expect(409);
    expect(refused.body.error.code).toBe('NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE');
    expect(refused.body.error.details.levels.filter((u: Use) => u.leftUnreachable).map((u: Use) => [u.priority, u.level])).toEqual([['P1', 1]]);
    expect(await exists(ch.sms)).toBe(true);
    expect(await policies()).toEqual(before);
    expect((await audits('notification_channel')).filter((a) => a.entity_id === ch.sms && a.action === 'delete')).toEqual([]);
    expect((await audits('escalation_policy')).filter((a) => a.action === 'detach_channel')).toEqual([]);
    // Bad input is a field-level 400; the route is the admins'.
    const bad = await del(ch.sms, '?detach=maybe').expect(400);
    expect(bad.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['detach']);
    await t.http().delete(`/api/v1/notifications/channels/${ch.sms}?detach=true`).set(auth(sup)).expect(403);
    await t.http().delete(`/api/v1/notifications/channels/${ch.sms}?detach=true`).expect(401);
    expect(await exists(ch.sms)).toBe(true);
  });

  it('detach=true deletes it and takes it out of every level naming it in one transaction, audited with the levels changed', async () => {
    // P1 level 1 gets a second channel for its people: now nobody is left without one.
    await put('P1', [
      { targets: [supervisor, group(ch.feishu)], channelIds: [ch.sms, ch.dingtalk] },
      { targets: [leader], channelIds: [ch.sms, ch.wecom] },
    ]);
    const before = await policies();

    // A failure after the levels were changed (the database refuses the channel's row) leaves the levels as they were.
    await t.db.query(`CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$`);
    await t.db.query(`CREATE TRIGGER refuse_delete BEFORE DELETE ON notification_channels FOR EACH ROW EXECUTE FUNCTION refuse_delete()`);
    try {
      await del(ch.sms, '?detach=true').expect(500);
    } finally {
      await t.db.query(`DROP TRIGGER refuse_delete ON notification_channels; DROP FUNCTION refuse_delete()`);
    }
    expect(await policies()).toEqual(before);
    expect(await exists(ch.sms)).toBe(true);
    // Each change names its policy by its key, the priority (attack pass 10 #2: it was null, the priority only in the data).
    expect((await audits('escalation_policy')).map((a) => [a.action, a.entity_id])).toEqual([
      ['update', 'P1'],
      ['update', 'P2'],
      ['update', 'P1'],
    ]);

    await del(ch.sms, '?detach=true').expect(204);
    expect(await exists(ch.sms)).toBe(false);
    const p1 = await policy('P1');
    const p2 = await policy('P2');
    expect(p1.levels.map(({ targets, channelIds }) => ({ targets, channelIds }))).toEqual([
      { targets: [supervisor, group(ch.feishu)], channelIds: [ch.dingtalk] },
      { targets: [leader], channelIds: [ch.wecom] },
    ]);
    // The group target goes; the level's people still go through every enabled channel.
    expect(p2.levels.map(({ targets, channelIds }) => ({ targets, channelIds }))).toEqual([
      { targets: [supervisor], channelIds: null },
      { targets: [leader], channelIds: [ch.wecom] },
    ]);
    expect(p1.source).toBe('stored');

    // Audited: the channel's delete names the levels it was taken out of; each policy changed has its own entry, same request.
    const [gone] = (await audits('notification_channel')).filter((a) => a.entity_id === ch.sms && a.action === 'delete');
    expect(gone.after).toEqual({
      detachedFrom: [
        { priority: 'P1', level: 1, usedAs: ['channels'] },
        { priority: 'P1', level: 2, usedAs: ['channels'] },
        { priority: 'P2', level: 1, usedAs: ['group'] },
      ],
    });
    expect(gone.before).toMatchObject({ name: '短信网关', secret: '[redacted]' });
    const detached = (await audits('escalation_policy')).filter((a) => a.action === 'detach_channel');
    expect(detached.map((a) => a.after)).toEqual([
      expect.objectContaining({ priority: 'P1', channelId: ch.sms, changedLevels: [1, 2] }),
      expect.objectContaining({ priority: 'P2', channelId: ch.sms, changedLevels: [1] }),
    ]);
    expect((detached[0].before as { levels: Level[] }).levels[0].channelIds).toEqual([ch.sms, ch.dingtalk]);
    expect(new Set([gone.request_id, ...detached.map((a) => a.request_id)]).size).toBe(1);
    expect(gone.request_id).toBeTruthy();
    expect(detached.map((a) => a.entity_id)).toEqual(['P1', 'P2']);
    // An auditor asking for one policy's history gets its changes, whichever way they came.
    const auditor = (await t.userToken('auditor')).token;
    const p2History = await t.http().get('/api/v1/audit-log?entity=escalation_policy&entityId=P2').set(auth(auditor)).expect(200);
    expect(p2History.body.items.map((e: { action: string; entityId: string }) => [e.action, e.entityId])).toEqual([
      ['detach_channel', 'P2'],
      ['update', 'P2'],
    ]);
  });

  it('refuses even with detach a level that would notify nobody (only a group, that group), unless its people use every enabled channel', async () => {
    await put('P3', [
      { targets: [group(ch.feishu)], channelIds: null },
      { targets: [operator, group(ch.feishu)], channelIds: null },
    ]);
    const r = await del(ch.feishu, '?detach=true').expect(409);
    expect(r.body.error.code).toBe('NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE');
    expect(r.body.error.details.levels).toEqual([
      { priority: 'P1', level: 1, usedAs: ['group'], onlyChannel: false, allEnabledChannels: false, leftUnreachable: null },
      { priority: 'P3', level: 1, usedAs: ['group'], onlyChannel: true, allEnabledChannels: true, leftUnreachable: 'nobody' },
      { priority: 'P3', level: 2, usedAs: ['group'], onlyChannel: true, allEnabledChannels: true, leftUnreachable: null },
    ]);
    expect(r.body.error.message).toContain('P3 level 1');
    expect(await exists(ch.feishu)).toBe(true);
    expect((await policy('P3')).levels[0].targets).toEqual([group(ch.feishu)]);
    // Once the level names someone else, the same request goes through.
    await put('P3', [
      { targets: [supervisor, group(ch.feishu)], channelIds: null },
      { targets: [operator, group(ch.feishu)], channelIds: null },
    ]);
    await del(ch.feishu, '?detach=true').expect(204);
    expect((await policy('P3')).levels.map((l) => l.targets)).toEqual([[supervisor], [operator]]);
    expect((await policy('P1')).levels[0].targets).toEqual([supervisor]);
  });

  it('disabling follows the same rule: 409 naming the levels, detach=true takes it out of them, refused when a level would be left with nobody; a disabled channel counts for none', async () => {
    ch.wecom2 = await channel('wecom', '第二个企业微信群');
    await put('P4', [
      { targets: [operator, group(ch.wecom2)], channelIds: null },
      { targets: [leader], channelIds: [ch.wecom, ch.dingtalk] },
    ]);
    // P1 level 1 reaches its supervisor by DingTalk only (its group went with Feishu): disabling it is refused outright, and with detach too.
    const used = await patch(ch.dingtalk, { enabled: false }).expect(409);
    expect(used.body.error).toMatchObject({
      code: 'NOTIFICATION_CHANNEL.IN_USE',
      details: {
        levels: [
          { priority: 'P1', level: 1, usedAs: ['channels'], onlyChannel: true, leftUnreachable: 'nobody' },
          { priority: 'P4', level: 2, usedAs: ['channels'], onlyChannel: false, leftUnreachable: null },
        ],
      },
    });
    expect((await patch(ch.dingtalk, { enabled: false }, '?detach=true').expect(409)).body.error.code).toBe('NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE');
    expect((await t.db.query(`SELECT enabled FROM notification_channels WHERE id = $1`, [ch.dingtalk])).rows[0].enabled).toBe(true);
    // Anything else about it changes as before; so does an input error come first.
    await patch(ch.dingtalk, { name: '钉钉值班群（新）' }).expect(200);
    expect((await patch(ch.dingtalk, { enabled: false, webhookUrl: 'ftp://x' }).expect(400)).body.error.details.fields[0].field).toBe('webhookUrl');

    // The second WeCom group: only a group target beside P4's operator desk (every enabled channel) — detached on disable.
    await patch(ch.wecom2, { enabled: false }).expect(409);
    const off = await patch(ch.wecom2, { enabled: false }, '?detach=true').expect(200);
    expect(off.body).toMatchObject({ enabled: false, state: 'disabled' });
    expect((await policy('P4')).levels[0]).toMatchObject({ targets: [operator], channelIds: null });
    const [entry] = (await audits('notification_channel')).filter((a) => a.entity_id === ch.wecom2 && a.action === 'update');
    expect(entry.after).toMatchObject({ enabled: false, detachedFrom: [{ priority: 'P4', level: 1, usedAs: ['group'] }] });
    // Enabling again is never refused (and does not put it back: the policy says what it does).
    await patch(ch.wecom2, { enabled: true }).expect(200);

    // A disabled channel beside it in a list counts for nothing: WeCom is then the leader's only working channel at P1 level 2.
    await put('P1', [
      { targets: [supervisor], channelIds: [ch.dingtalk] },
      { targets: [leader], channelIds: [ch.wecom, ch.wecom2] },
    ]);
    await patch(ch.wecom2, { enabled: false }, '?detach=true').expect(200);
    await put('P1', [
      { targets: [supervisor], channelIds: [ch.dingtalk] },
      { targets: [leader], channelIds: [ch.wecom, ch.wecom2] },
    ]);
    const last = await del(ch.wecom, '?detach=true').expect(409);
    expect(last.body.error.details.levels.find((u: Use) => u.priority === 'P1' && u.level === 2)).toMatchObject({
      onlyChannel: true,
      leftUnreachable: 'nobody',
    });
  });

  it('a policy saved while its channel is being deleted is refused (400 no such channel): never a level naming a channel that is gone', async () => {
    const z = await channel('feishu', '将被删除的群');
    await put('P2', [
      { targets: [supervisor], channelIds: null },
      { targets: [leader], channelIds: [ch.wecom] },
    ]);
    const waiting = async () =>
      Number((await t.db.query(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].count);
    // The test holds the stored policies: the delete locks its channel, then waits for them; the save (its channel checked
    // already, before its transaction) then comes while the channel is not yet gone.
    await t.db.query(`BEGIN`);
    try {
      await t.db.query(`SELECT priority FROM escalation_policies FOR UPDATE`);
      const deleting = del(z).then((r) => r);
      await waitFor(async () => (await waiting()) >= 1, 10_000, 'the delete waiting for the policies');
      const saving = t
        .http()
        .put('/api/v1/notifications/policies/P2')
        .set(auth(admin))
        .send({
          levels: [
            { targets: [supervisor], channelIds: [z] },
            { targets: [leader], channelIds: [ch.wecom] },
          ],
        })
        .then((r) => r);
      await waitFor(async () => (await waiting()) >= 2, 10_000, 'the save waiting too');
      await t.db.query(`COMMIT`);
      const [deleted, saved] = await Promise.all([deleting, saving]);
      expect(deleted.status).toBe(204);
      expect(saved.status).toBe(400);
      expect(saved.body.error.details.fields).toEqual([{ field: 'levels[0].channelIds[0]', reason: 'no such channel' }]);
    } finally {
      await t.db.query(`ROLLBACK`).catch(() => undefined);
    }
    expect((await policy('P2')).levels[0].channelIds).toBeNull(); // as it was
  });

  it('the last enabled channel is not deleted or disabled while levels reach their people through every enabled channel, defaults included (attack pass 10 #4)', async () => {
    // The configured defaults everywhere: each level tells a duty role through every enabled channel.
    await t.db.query(`DELETE FROM escalation_policies`);
    const enabledIds = async () => (await t.db.query(`SELECT id FROM notification_channels WHERE enabled ORDER BY name`)).rows.map((r) => r.id as string);
    await patch(ch.wecom2, { enabled: true }).expect(200);
    expect((await enabledIds()).sort()).toEqual([ch.dingtalk, ch.wecom, ch.wecom2].sort());
    // Another enabled channel is left: deleted as before.
    await del(ch.dingtalk).expect(204);
    await patch(ch.wecom2, { enabled: false }).expect(200);
    expect(await enabledIds()).toEqual([ch.wecom]);

    // The last one: no level names it, yet without it every level would tell its duty role through nothing at all.
    const everyLevel = ['P1', 'P2', 'P3', 'P4'].flatMap((priority) =>
      [1, 2].map((level) => ({ priority, level, usedAs: [], onlyChannel: true, allEnabledChannels: true, leftUnreachable: 'nobody' })),
    );
    for (const attempt of [
      () => del(ch.wecom),
      () => del(ch.wecom, '?detach=true'),
      () => patch(ch.wecom, { enabled: false }),
      () => patch(ch.wecom, { enabled: false }, '?detach=true'),
    ]) {
      const r = await attempt().expect(409);
      expect(r.body.error.code).toBe('NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE');
      expect(r.body.error.details).toEqual({ channelId: ch.wecom, levels: everyLevel });
      expect(r.body.error.message).toContain('P1 level 1 (every enabled channel: this is the last one enabled)');
    }
    expect(await enabledIds()).toEqual([ch.wecom]);
    // A stored level naming it is listed as before; IN_USE comes first without detach, and detach cannot help.
    await put('P2', [{ targets: [supervisor], channelIds: [ch.wecom] }, { targets: [leader] }]);
    const named = await del(ch.wecom).expect(409);
    expect(named.body.error.code).toBe('NOTIFICATION_CHANNEL.IN_USE');
    expect(named.body.error.details.levels.filter((u: Use) => u.priority === 'P2')).toEqual([
      { priority: 'P2', level: 1, usedAs: ['channels'], onlyChannel: true, allEnabledChannels: false, leftUnreachable: 'nobody' },
      { priority: 'P2', level: 2, usedAs: [], onlyChannel: true, allEnabledChannels: true, leftUnreachable: 'nobody' },
    ]);
    expect((await del(ch.wecom, '?detach=true').expect(409)).body.error.code).toBe('NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE');
    // A maintenance window is a silence, still allowed: the channel stays enabled (messages due meanwhile are recorded as suppressed).
    await t
      .http()
      .post(`/api/v1/notifications/channels/${ch.wecom}/silence`)
      .set(auth(sup))
      .send({ until: new Date(Date.now() + 3600_000).toISOString(), reason: '维护' })
      .expect(200);
    await t.http().delete(`/api/v1/notifications/channels/${ch.wecom}/silence`).set(auth(sup)).expect(200);
    // A disabled channel is not the last enabled one: it goes.
    await del(ch.wecom2).expect(204);
    expect((await audits('notification_channel')).filter((a) => a.action === 'delete' && a.entity_id === ch.wecom)).toEqual([]);

    // Two admins each removing one of the last two enabled channels at once: one goes, the other is refused (never both).
    await t.db.query(`DELETE FROM escalation_policies`);
    const spare = await channel('wecom', '备用群');
    const [deleted, disabled] = await Promise.all([del(ch.wecom).then((r) => r.status), patch(spare, { enabled: false }).then((r) => r.status)]);
    expect([deleted, disabled].filter((status) => status === 409)).toHaveLength(1);
    expect([deleted === 204, disabled === 200].filter(Boolean)).toHaveLength(1);
    expect(await enabledIds()).toHaveLength(1);
  });
});

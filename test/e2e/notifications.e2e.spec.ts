import { JobName, JOBS } from '../../src/infra/queue/queue.catalogue';
import { QueueService } from '../../src/infra/queue/queue.service';
import { AlarmsJobs } from '../../src/modules/alarms/alarms.jobs';
import { UsersService } from '../../src/modules/auth/users.service';
import { DeliveriesService } from '../../src/modules/notifications/deliveries.service';
import { RosterService } from '../../src/modules/notifications/roster.service';
import { TargetResolver } from '../../src/modules/notifications/target-address';
import { FakeReceiver, startFakeReceiver } from '../support/fake-receivers';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { waitFor } from '../support/police-receiver';

/**
 * Escalation that reaches a person, end to end on the real app with fake WeCom / DingTalk / Feishu /
 * SMS receivers that check signatures as the platforms do. Escalation delays are short (config);
 * nothing here measures time but how soon an oversized policy is refused (a bound far above its cost).
 */
describe('notifications: roster, policy, channels, delivery', () => {
  jest.setTimeout(90_000);
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let op: { token: string; userId: string; username: string };
  let sup: { token: string; userId: string; username: string };
  let leader: { token: string; userId: string; username: string };
  let auditor: string;
  let wecom: FakeReceiver;
  let dingtalk: FakeReceiver;
  let feishu: FakeReceiver;
  let sms: FakeReceiver;
  const ch: Record<string, string> = {};

  const iso = (ms: number) => new Date(ms).toISOString();
  const raise = async (location: string, priority = 'P1') =>
    (await t.http().post('/api/v1/incidents').set(auth(op.token)).send({ schoolId: seed.schoolA.id, type: 'intrusion', location, priority }).expect(201))
      .body as { id: string };
  const about = (r: FakeReceiver, location: string) => r.received.filter((m) => m.text.includes(location));
  const deliveries = async (incidentId: string) =>
    (await t.http().get(`/api/v1/incidents/${incidentId}/notifications`).set(auth(op.token)).expect(200)).body.items as {
      level: number;
      channelKind: string;
      status: string;
      recipientName: string;
      attempts: number;
      providerCode: string | null;
    }[];
  const timeline = async (incidentId: string) =>
    (await t.http().get(`/api/v1/incidents/${incidentId}`).set(auth(op.token)).expect(200)).body.timeline as {
      action: string;
      note: string;
      data: Record<string, unknown>;
    }[];

  beforeAll(async () => {
    [wecom, dingtalk, feishu, sms] = await Promise.all([
      startFakeReceiver('wecom'),
      startFakeReceiver('dingtalk'),
      startFakeReceiver('feishu'),
      startFakeReceiver('sms'),
    ]);
    t = await startApp({
      alarms: { escalationSeconds: { P1: [1, 3], P2: [1, 600], P3: [600], P4: [600] }, outbox: { pollMs: 100, redispatchAfterMs: 2000, batchSize: 100 } },
      notifications: {
        publicBaseUrl: 'https://shouhu.test',
        retryDelayMs: 250,
        attempts: 100,
        reconcileEveryMs: 0,
        rosterCheckEveryMs: 0,
        redispatchAfterMs: 1000,
      },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op = await t.userToken('operator');
    sup = await t.userToken('supervisor');
    leader = await t.userToken('supervisor');
    auditor = (await t.userToken('auditor')).token;
    const users = t.app.get(UsersService);
    await users.update(sup.userId, { phone: '13800000001', displayName: '张主管' });
    await users.update(leader.userId, { phone: '13900000002', displayName: '李局长' });
    const add = async (kind: string, r: FakeReceiver, extra: Record<string, unknown> = {}) => {
      const res = await t
        .http()
        .post('/api/v1/notifications/channels')
        .set(auth(admin))
        .send({ kind, name: `${kind} 值班`, webhookUrl: r.url, ...(r.secret ? { secret: r.secret } : {}), ...extra })
        .expect(201);
      ch[kind] = res.body.id;
      return res.body;
    };
    const w = await add('wecom', wecom);
    expect(w.webhookUrl).not.toContain(wecom.url.split('key=')[1]); // masked
    expect(w).not.toHaveProperty('secret');
    await add('dingtalk', dingtalk);
    await add('feishu', feishu);
    await add('sms', sms, { template: { to: '{{phone}}', content: '{{text}}', incident: '{{incidentId}}' } });
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([wecom, dingtalk, feishu, sms].map((r) => r?.close()));
  });

  it('refuses a webhook at a private, loopback or metadata address with a field-level 400 when private targets are not allowed (A16)', async () => {
    // The suite's fake providers live on loopback (config/test.json allows it); production's default refuses it.
    t.config.notifications.allowPrivateTargets = false;
    try {
      for (const webhookUrl of ['http://169.254.169.254/latest/meta-data/', 'http://127.0.0.1:6379/', 'http://localhost:5432/', 'http://[::1]/x']) {
        const r = await t
          .http()
          .post('/api/v1/notifications/channels')
          .set(auth(admin))
          .send({ kind: 'wecom', name: `内网 ${webhookUrl}`, webhookUrl })
          .expect(400);
        expect(r.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['webhookUrl']);
      }
      await t.http().patch(`/api/v1/notifications/channels/${ch.wecom}`).set(auth(admin)).send({ webhookUrl: 'http://10.0.0.8/hook' }).expect(400);
      for (const webhookUrl of ['http://[64:ff9b::7f00:1]:3192/', 'http://[2002:7f00:1::]:3192/']) {
        const r = await t.http().patch(`/api/v1/notifications/channels/${ch.wecom}`).set(auth(admin)).send({ webhookUrl }).expect(400);
        expect(r.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['webhookUrl']);
      }
      // The stored loopback URL is now refused, yet the channel can still be renamed and disabled (only a changed URL is judged).
      const renamed = await t.http().patch(`/api/v1/notifications/channels/${ch.wecom}`).set(auth(admin)).send({ name: 'wecom 值班（改名）' }).expect(200);
      expect(renamed.body.name).toBe('wecom 值班（改名）');
      const off = await t.http().patch(`/api/v1/notifications/channels/${ch.wecom}`).set(auth(admin)).send({ enabled: false }).expect(200);
      expect(off.body).toMatchObject({ enabled: false, state: 'disabled' });
      await t.http().patch(`/api/v1/notifications/channels/${ch.wecom}`).set(auth(admin)).send({ enabled: true, name: 'wecom 值班' }).expect(200);
    } finally {
      t.config.notifications.allowPrivateTargets = true;
    }
  });

  it('refuses a webhook whose name cannot be checked, at save and at send: never sent unchecked (attack pass 10 #3)', async () => {
    // The app's resolver is replaced (TargetResolver): this machine has no DNS to rely on, and the point is a slow one.
    const lookup = jest.spyOn(t.app.get(TargetResolver), 'resolve');
    const post = (name: string, webhookUrl: string) =>
      t.http().post('/api/v1/notifications/channels').set(auth(admin)).send({ kind: 'wecom', name, webhookUrl, enabled: false });
    t.config.notifications.allowPrivateTargets = false;
    let saved: string | null = null;
    try {
      // A name answering a public address is saved (disabled: escalations here do not reach it).
      lookup.mockImplementation(async () => [{ address: '203.0.113.10' }]);
      saved = (await post('慢解析的群', 'https://slow-dns.provider.test/cgi-bin/webhook/send?key=k').expect(201)).body.id as string;
      // DNS answering after the check's 2 s (the metadata service, at that): passed unchecked before; now a 400 on the field.
      lookup.mockImplementation(() => new Promise((resolve) => setTimeout(() => resolve([{ address: '169.254.169.254' }]), 3000).unref()));
      const late = await post('另一个慢解析的群', 'https://stall.provider.test/hook').expect(400);
      expect(late.body.error.details.fields).toEqual([
        {
          field: 'webhookUrl',
          reason: 'stall.provider.test: no DNS answer within 2000 ms, so its address could not be checked: try again, or check the host name',
        },
      ]);
      // The saved channel's name now stalls too: a test send is not made, and the answer and the channel's last error say why.
      const answer = await t.http().post(`/api/v1/notifications/channels/${saved}/test`).set(auth(admin)).expect(200);
      expect(answer.body).toMatchObject({ ok: false, retryable: true, code: 'UNRESOLVED' });
      const listed = (await t.http().get('/api/v1/notifications/channels').set(auth(admin)).expect(200)).body as { id: string; lastError: string | null }[];
      expect(listed.find((c) => c.id === saved)!.lastError).toBe(
        'UNRESOLVED slow-dns.provider.test: no DNS answer within 2000 ms, so its address could not be checked: not sent',
      );
      // A lookup that fails outright (no such name) is refused as well.
      lookup.mockRejectedValue(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.provider.test'), { code: 'ENOTFOUND' }));
      const missing = await post('不存在的域名', 'https://nowhere.provider.test/hook').expect(400);
      expect(missing.body.error.details.fields).toEqual([
        { field: 'webhookUrl', reason: expect.stringMatching(/^ENOTFOUND nowhere\.provider\.test: .*could not be checked/) },
      ]);
      expect(lookup).toHaveBeenCalledWith('nowhere.provider.test');
    } finally {
      lookup.mockRestore();
      t.config.notifications.allowPrivateTargets = true;
      if (saved) await t.http().delete(`/api/v1/notifications/channels/${saved}`).set(auth(admin)).expect(204);
    }
  });

  it('keeps webhook keys out of what operators and auditors read: a URL with a user name or password is refused, a stored failure text is shown cut (attack pass 9 #2)', async () => {
    const r = await t
      .http()
      .post('/api/v1/notifications/channels')
      .set(auth(admin))
      .send({ kind: 'dingtalk', name: '带账号的地址', webhookUrl: 'https://u:p@oapi.dingtalk.com/robot/send?access_token=TOPSECRET' })
      .expect(400);
    expect(r.body.error.details.fields).toEqual([{ field: 'webhookUrl', reason: 'must not carry a user name or password' }]);
    // An SMS template is a few fields, not megabytes listed to every operator and read with every delivery batch (attack pass 9 #5).
    const big = await t
      .http()
      .post('/api/v1/notifications/channels')
      .set(auth(admin))
      .send({
        kind: 'sms',
        name: '大模板',
        webhookUrl: 'https://sms.example.com/send',
        secret: 'a-secret-of-24-characters',
        template: { text: 'x'.repeat(9000) },
      })
      .expect(400);
    expect(big.body.error.details.fields).toEqual([{ field: 'template', reason: 'must be at most 8192 characters as JSON' }]);
    // A failure text stored before answers were scrubbed (it quoted the request URL with its key and signature).
    await t.db.query(`UPDATE notification_channels SET failing_since = now(), last_error = $2 WHERE id = $1`, [
      ch.wecom,
      'fetch failed: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=TOPSECRET&sign=xyz',
    ]);
    try {
      const list = (await t.http().get('/api/v1/notifications/channels').set(auth(op.token)).expect(200)).body as { id: string; lastError: string | null }[];
      const w = list.find((c) => c.id === ch.wecom)!;
      expect(w.lastError).toBe('fetch failed: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?…');
      expect(JSON.stringify(list)).not.toContain('TOPSECRET');
    } finally {
      await t.db.query(`UPDATE notification_channels SET failing_since = NULL, last_error = NULL WHERE id = $1`, [ch.wecom]);
    }
  });

  it('refuses channel names that are blank or hide characters, and SMS secrets that are blanks or short in characters (attack pass 9 #6, #8)', async () => {
    const post = (body: Record<string, unknown>) => t.http().post('/api/v1/notifications/channels').set(auth(admin)).send(body);
    for (const name of ['   ', '值班\u202e群', '值班\u200b群', '值班\n群', '\u3164']) {
      const r = await post({ kind: 'wecom', name, webhookUrl: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k' }).expect(400);
      expect({ name, fields: r.body.error.details.fields.map((f: { field: string }) => f.field) }).toEqual({ name, fields: ['name'] });
    }
    await t.http().patch(`/api/v1/notifications/channels/${ch.wecom}`).set(auth(admin)).send({ name: '  ' }).expect(400);
    for (const secret of [' '.repeat(16), '🔔'.repeat(8)]) {
      const r = await post({ kind: 'sms', name: '短信网关 X', webhookUrl: 'https://sms.example.com/send', secret }).expect(400);
      expect(r.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['secret']);
    }
  });

  describe('duty roster', () => {
    it('refuses bad shifts with field-level 400s and non-supervisors with 403', async () => {
      const now = Date.now();
      const bad = await t
        .http()
        .post('/api/v1/duty/shifts')
        .set(auth(admin))
        .send({ dutyRole: 'duty_supervisor', userId: sup.userId, startsAt: iso(now), endsAt: iso(now - 1000) })
        .expect(400);
      expect(bad.body.error.details.fields[0].field).toBe('endsAt');
      const role = await t
        .http()
        .post('/api/v1/duty/shifts')
        .set(auth(admin))
        .send({ dutyRole: 'chef', userId: sup.userId, startsAt: iso(now), endsAt: iso(now + 1000) })
        .expect(400);
      expect(role.body.error.details.fields.map((f: { field: string }) => f.field)).toContain('dutyRole');
      const staff = await t.userToken('school_security', seed.schoolA.id);
      const notCenter = await t
        .http()
        .post('/api/v1/duty/shifts')
        .set(auth(admin))
        .send({ dutyRole: 'duty_supervisor', userId: staff.userId, startsAt: iso(now), endsAt: iso(now + 1000) })
        .expect(400);
      expect(notCenter.body.error.details.fields[0].field).toBe('userId');
      await t
        .http()
        .post('/api/v1/duty/shifts')
        .set(auth(op.token))
        .send({ dutyRole: 'duty_supervisor', userId: sup.userId, startsAt: iso(now), endsAt: iso(now + 1000) })
        .expect(403);
      await t.http().get('/api/v1/duty/shifts/not-a-uuid').set(auth(op.token)).expect(400);
      await t.http().get('/api/v1/duty/shifts/00000000-0000-4000-8000-000000000000').set(auth(op.token)).expect(404);
    });

    it('refuses a second shift of the same person and role over the same time (409 naming the other) and a shift that has ended (400); other roles and adjacent shifts are fine (attack pass 7 F4)', async () => {
      const held = await t.userToken('supervisor', undefined, 'double_booked');
      const day = 86400_000;
      const from = Date.now() + 20 * day;
      const post = (body: object) => t.http().post('/api/v1/duty/shifts').set(auth(sup.token)).send(body);
      const a = (await post({ dutyRole: 'duty_supervisor', userId: held.userId, startsAt: iso(from), endsAt: iso(from + 8 * 3600_000) }).expect(201)).body;
      const clash = await post({ dutyRole: 'duty_supervisor', userId: held.userId, startsAt: iso(from + 3600_000), endsAt: iso(from + 12 * 3600_000) }).expect(
        409,
      );
      expect(clash.body.error).toMatchObject({ code: 'DUTY_SHIFT.OVERLAP', details: { shiftId: a.id, startsAt: iso(from), endsAt: iso(from + 8 * 3600_000) } });
      // Two at once: exactly one is planned.
      const both = await Promise.all(
        [1, 2].map(() => post({ dutyRole: 'operator_desk', userId: held.userId, startsAt: iso(from + 2 * day), endsAt: iso(from + 2 * day + 3600_000) })),
      );
      expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
      // Back to back, and the same hours in another role, are not overlaps.
      const b = (
        await post({ dutyRole: 'duty_supervisor', userId: held.userId, startsAt: iso(from + 8 * 3600_000), endsAt: iso(from + 16 * 3600_000) }).expect(201)
      ).body;
      await post({ dutyRole: 'operator_desk', userId: held.userId, startsAt: iso(from), endsAt: iso(from + 8 * 3600_000) }).expect(201);
      // Moving one shift onto the other is the same conflict; moving it onto itself is not.
      expect(
        (
          await t
            .http()
            .patch(`/api/v1/duty/shifts/${b.id}`)
            .set(auth(sup.token))
            .send({ startsAt: iso(from + 7 * 3600_000) })
            .expect(409)
        ).body.error.code,
      ).toBe('DUTY_SHIFT.OVERLAP');
      await t
        .http()
        .patch(`/api/v1/duty/shifts/${b.id}`)
        .set(auth(sup.token))
        .send({ endsAt: iso(from + 15 * 3600_000) })
        .expect(200);
      // Wholly past: refused, field endsAt.
      const past = await post({ dutyRole: 'duty_supervisor', userId: held.userId, startsAt: iso(Date.now() - 2 * day), endsAt: iso(Date.now() - day) }).expect(
        400,
      );
      expect(past.body.error.details.fields).toEqual([expect.objectContaining({ field: 'endsAt' })]);
      await t
        .http()
        .patch(`/api/v1/duty/shifts/${a.id}`)
        .set(auth(sup.token))
        .send({ endsAt: iso(Date.now() - 1000) })
        .expect(400);
    });

    it("lists who may hold a duty for the roster's pickers: control-center users not disabled, to supervisors and admins", async () => {
      const gone = await t.userToken('operator', undefined, 'gone_op');
      await t.app.get(UsersService).update(gone.userId, { disabled: true });
      const staff = await t.userToken('school_security', seed.schoolA.id);
      const items = (await t.http().get('/api/v1/duty/people').set(auth(sup.token)).expect(200)).body.items as { id: string; name: string; role: string }[];
      expect(items).toEqual(
        expect.arrayContaining([{ id: sup.userId, name: '张主管', role: 'supervisor' }, expect.objectContaining({ id: op.userId, role: 'operator' })]),
      );
      expect(items.map((p) => p.id)).not.toContain(gone.userId);
      expect(items.map((p) => p.id)).not.toContain(staff.userId);
      expect(new Set(items.map((p) => p.role))).toEqual(new Set(['operator', 'supervisor', 'admin']));
      expect((await t.http().get('/api/v1/duty/people').set(auth(admin)).expect(200)).body.items).toHaveLength(items.length);
      await t.http().get('/api/v1/duty/people').set(auth(op.token)).expect(403);
      await t.http().get('/api/v1/duty/people').set(auth(auditor)).expect(403);
      await t.http().get('/api/v1/duty/people').expect(401);
    });

    it('a shift held by a user who was disabled covers nothing: the role is a gap again (attack pass 7 F1)', async () => {
      const roster = t.app.get(RosterService);
      const held = await t.userToken('supervisor', undefined, 'leaving_leader');
      const from = Date.now() + 10 * 86400_000;
      const to = from + 86400_000;
      await t
        .http()
        .post('/api/v1/duty/shifts')
        .set(auth(sup.token))
        .send({ dutyRole: 'bureau_leader', userId: held.userId, startsAt: iso(from), endsAt: iso(to) })
        .expect(201);
      const leaderGaps = async () => (await roster.gaps(new Date(from), new Date(to))).filter((g) => g.dutyRole === 'bureau_leader');
      expect(await leaderGaps()).toEqual([]);
      await t.http().patch(`/api/v1/users/${held.userId}`).set(auth(admin)).send({ disabled: true }).expect(200);
      expect((await leaderGaps()).map((g) => [g.from, g.to])).toEqual([[iso(from), null]]); // uncovered from then on: no later shift
    });

    it('reports a gap once, shows who is on duty now, and hands a shift over (audited)', async () => {
      const roster = t.app.get(RosterService);
      // Nobody on the roster yet: every role is a gap, reported once to the console.
      const first = await roster.checkGaps();
      expect(first.gaps.map((g) => g.dutyRole).sort()).toEqual(['bureau_leader', 'duty_supervisor', 'operator_desk']);
      expect(first.reported).toBe(3);
      expect((await roster.checkGaps()).reported).toBe(0);
      const ev = await t.db.query(`SELECT payload FROM console_events WHERE type = 'duty.roster_gap' ORDER BY seq`);
      expect(ev.rows).toHaveLength(1);
      expect(ev.rows[0].payload.gaps).toHaveLength(3);

      const now = Date.now();
      const day = 86400_000;
      const mk = (dutyRole: string, userId: string, from: number, to: number) =>
        t
          .http()
          .post('/api/v1/duty/shifts')
          .set(auth(sup.token))
          .send({ dutyRole, userId, startsAt: iso(from), endsAt: iso(to), note: '白班' })
          .expect(201)
          .then((r) => r.body);
      // Begun half an hour ago (entered late: within notifications.rosterMaxBackdateMinutes).
      const supShift = await mk('duty_supervisor', sup.userId, now - 1800_000, now + 2 * day);
      await mk('bureau_leader', leader.userId, now - 1800_000, now + 2 * day);
      // The operator desk is covered only for the next 2 hours, then again from hour 4: a gap of two hours.
      await mk('operator_desk', op.userId, now - 1800_000, now + 2 * 3600_000);
      await mk('operator_desk', op.userId, now + 4 * 3600_000, now + 2 * day);
      const gapCheck = await roster.checkGaps();
      expect(gapCheck.gaps).toEqual([{ dutyRole: 'operator_desk', from: iso(now + 2 * 3600_000), to: iso(now + 4 * 3600_000) }]);
      expect(gapCheck.reported).toBe(1);

      const dutyNow = (await t.http().get('/api/v1/duty/now').set(auth(auditor)).expect(200)).body;
      expect(dutyNow.onDuty.duty_supervisor.map((s: { userName: string }) => s.userName)).toEqual(['张主管']);
      expect(dutyNow.onDuty.duty_supervisor[0].phone).toBe('138****0001');
      expect(dutyNow.gaps).toHaveLength(1);

      // Handover to the leader and back: the current shift ends now, the next holds the role to its end.
      const h = await t
        .http()
        .post(`/api/v1/duty/shifts/${supShift.id}/handover`)
        .set(auth(sup.token))
        .send({ toUserId: leader.userId, note: '交接：北门摄像头待修' })
        .expect(200);
      expect(h.body.started).toMatchObject({ userId: leader.userId, endsAt: supShift.endsAt, handedOverFromId: supShift.id, dutyRole: 'duty_supervisor' });
      await t.http().post(`/api/v1/duty/shifts/${supShift.id}/handover`).set(auth(sup.token)).send({ toUserId: leader.userId }).expect(409);
      await t.http().post(`/api/v1/duty/shifts/${h.body.started.id}/handover`).set(auth(sup.token)).send({ toUserId: sup.userId }).expect(200);
      const audit = await t.db.query(`SELECT action FROM audit_log WHERE entity = 'duty_shift' AND action = 'handover'`);
      expect(audit.rows).toHaveLength(2);
      const after = (await t.http().get('/api/v1/duty/now').set(auth(op.token)).expect(200)).body;
      expect(after.onDuty.duty_supervisor.map((s: { userId: string }) => s.userId)).toEqual([sup.userId]);
    });
  });

  describe('escalation', () => {
    beforeAll(async () => {
      // P1: level 1 → the duty supervisor by WeCom and SMS, plus the Feishu group; level 2 → the bureau leader by DingTalk.
      await t
        .http()
        .put('/api/v1/notifications/policies/P1')
        .set(auth(admin))
        .send({
          levels: [
            {
              targets: [
                { kind: 'duty', dutyRole: 'duty_supervisor' },
                { kind: 'group', channelId: ch.feishu },
              ],
              channelIds: [ch.wecom, ch.sms],
            },
            { targets: [{ kind: 'duty', dutyRole: 'bureau_leader' }], channelIds: [ch.dingtalk] },
          ],
        })
        .expect(200);
      await t
        .http()
        .put('/api/v1/notifications/policies/P2')
        .set(auth(admin))
        .send({
          levels: [
            { targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: [ch.wecom] },
            { targets: [{ kind: 'duty', dutyRole: 'bureau_leader' }], channelIds: [ch.dingtalk] },
          ],
        })
        .expect(200);
    });

    it('validates the policy: one level per escalation delay, existing channels, admins only', async () => {
      const wrong = await t
        .http()
        .put('/api/v1/notifications/policies/P3')
        .set(auth(admin))
        .send({ levels: [{ targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }] }, { targets: [{ kind: 'duty', dutyRole: 'bureau_leader' }] }] })
        .expect(400);
      expect(wrong.body.error.details.fields[0].field).toBe('levels');
      // People told through no channel at all (attack pass 9 #9): refused; left out means every enabled channel.
      const none = await t
        .http()
        .put('/api/v1/notifications/policies/P3')
        .set(auth(admin))
        .send({ levels: [{ targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: [] }] })
        .expect(400);
      expect(none.body.error.details.fields).toEqual([
        { field: 'levels[0].channelIds', reason: 'must name at least one channel, or be left out for every enabled channel' },
      ]);
      const missing = await t
        .http()
        .put('/api/v1/notifications/policies/P3')
        .set(auth(admin))
        .send({ levels: [{ targets: [{ kind: 'group', channelId: '00000000-0000-4000-8000-000000000000' }, { kind: 'user' }] }] })
        .expect(400);
      expect(missing.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual([
        'levels[0].targets[0].channelId',
        'levels[0].targets[1].userId',
      ]);
      // 3,000 levels (attack pass 10 #1): refused on the field at once, not after every level was built and validated (~4 s).
      const levels = Array.from({ length: 3000 }, () => ({ targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: [ch.wecom] }));
      const t0 = performance.now();
      const huge = await t.http().put('/api/v1/notifications/policies/P3').set(auth(admin)).send({ levels }).expect(400);
      const ms = performance.now() - t0;
      expect(huge.body.error.details.fields).toEqual([{ field: 'levels', reason: 'levels must contain no more than 5 elements' }]);
      expect(ms).toBeLessThan(1000);
      await t.http().put('/api/v1/notifications/policies/P9').set(auth(admin)).send({ levels: [] }).expect(400);
      await t.http().put('/api/v1/notifications/policies/P3').set(auth(sup.token)).send({ levels: [] }).expect(403);
      const list = (await t.http().get('/api/v1/notifications/policies').set(auth(op.token)).expect(200)).body;
      expect(list.find((p: { priority: string }) => p.priority === 'P1')).toMatchObject({
        source: 'stored',
        levels: [{ afterSeconds: 1 }, { afterSeconds: 3 }],
      });
      expect(list.find((p: { priority: string }) => p.priority === 'P4')).toMatchObject({
        source: 'default',
        levels: [{ level: 1, targets: [{ kind: 'duty', dutyRole: 'duty_supervisor' }], channelIds: null }],
      });
    });

    it("level 1 reaches the duty supervisor's channels and the group, level 2 the leader's; the timeline says who, how and that it arrived", async () => {
      const inc = await raise('一号楼东门');
      await waitFor(async () => about(dingtalk, '一号楼东门').length > 0, 30000, 'level 2 at the leader');
      const wc = about(wecom, '一号楼东门');
      const sm = about(sms, '一号楼东门');
      const fs = about(feishu, '一号楼东门');
      expect(wc).toHaveLength(1);
      expect(sm).toHaveLength(1);
      expect(fs).toHaveLength(1);
      expect(about(dingtalk, '一号楼东门')).toHaveLength(1);
      // The message: school, place, type, time raised, waiting time, recipient and the signed link.
      const md = (wc[0].body.markdown as { content: string }).content;
      expect(md).toContain('甲小学');
      expect(md).toContain('类型：入侵（P1）');
      expect(md).toMatch(/报警时间：\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}（北京时间）/);
      expect(md).toMatch(/已 \d+ 秒 无人确认|已 \d+ 秒无人确认/);
      expect(md).toContain('张主管（值班主管）');
      expect(md).toMatch(/\(https:\/\/shouhu\.test\/console\/ack\/[A-Za-z0-9_-]{22}\.[0-9a-z]+\.[A-Za-z0-9_-]{22}\)/);
      expect(sm[0].body).toMatchObject({ to: '13800000001', incident: inc.id });
      expect(sm[0].key).toBe(`${inc.id}:1:u:${sup.userId}:${ch.sms}`);
      expect(about(dingtalk, '一号楼东门')[0].mentions).toEqual(['13900000002']);
      // No platform refused a signature or a format.
      expect([wecom, dingtalk, feishu, sms].flatMap((r) => r.rejected)).toEqual([]);

      await waitFor(async () => (await deliveries(inc.id)).filter((d) => d.status === 'sent').length === 4, 10000, 'four deliveries recorded sent');
      const ds = await deliveries(inc.id);
      expect(ds.map((d) => [d.level, d.channelKind, d.status]).sort()).toEqual([
        [1, 'feishu', 'sent'],
        [1, 'sms', 'sent'],
        [1, 'wecom', 'sent'],
        [2, 'dingtalk', 'sent'],
      ]);
      const tl = await timeline(inc.id);
      expect(tl.map((e) => e.note).join('\n')).not.toContain('已通知值班主管');
      const sent = tl.filter((e) => e.action === 'notified').map((e) => e.note);
      expect(sent).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^已通过企业微信「wecom 值班」通知 张主管（值班主管）：送达（应答 0/),
          expect.stringMatching(/^已通过钉钉「dingtalk 值班」通知 李局长（带班领导）：送达（应答 0/),
          expect.stringMatching(/^已通过短信\/语音「sms 值班」通知 张主管（值班主管）：送达（应答 HTTP 200/),
        ]),
      );
      // The console heard of every delivery.
      const ev = await t.db.query(`SELECT count(*)::int AS n FROM console_events WHERE type = 'notification.delivery' AND payload->>'incidentId' = $1`, [
        inc.id,
      ]);
      expect(ev.rows[0].n).toBeGreaterThanOrEqual(8); // 4 queued + 4 sent
    });

    it('acknowledging between the levels cancels level 2', async () => {
      const inc = await raise('二号楼', 'P2'); // P2: level 1 at 1 s, level 2 at 600 s
      await waitFor(async () => about(wecom, '二号楼').length > 0, 20000, 'level 1');
      await t.http().post(`/api/v1/incidents/${inc.id}/acknowledge`).set(auth(sup.token)).send({}).expect(200);
      const queue = t.app.get(QueueService).queue(JOBS[JobName.AlarmEscalate].queue);
      expect(await queue.getJob(`esc-${inc.id}-2`)).toBeUndefined();
      // Even a level-2 timer that fired anyway re-checks the state: no escalation, no notice, no message.
      expect(await t.app.get(AlarmsJobs).escalate(inc.id, 2)).toBe('skipped');
      expect(await t.app.get(DeliveriesService).escalation(inc.id, 2)).toBe('already handled');
      expect((await deliveries(inc.id)).filter((d) => d.level === 2)).toEqual([]);
      expect(about(dingtalk, '二号楼')).toEqual([]);
    });

    it('a receiver failing for a while gets the message exactly once afterwards; the failure is a console banner and a metric', async () => {
      wecom.failUntil = Date.now() + 2500;
      const failedBefore = wecom.failedOnDemand;
      const inc = await raise('三号楼', 'P2');
      await waitFor(async () => about(wecom, '三号楼').length > 0, 30000, 'delivery after the outage');
      expect(wecom.failedOnDemand).toBeGreaterThan(failedBefore);
      await waitFor(async () => (await deliveries(inc.id)).some((d) => d.status === 'sent'), 10000, 'recorded sent');
      // Nothing more arrives: a reconcile pass and a re-run of the escalation add nothing.
      await t.app.get(DeliveriesService).reconcile();
      await t.app.get(DeliveriesService).escalation(inc.id, 1);
      await new Promise((r) => setTimeout(r, 1000));
      expect(about(wecom, '三号楼')).toHaveLength(1);
      const [d] = (await deliveries(inc.id)).filter((x) => x.level === 1);
      expect(d.attempts).toBeGreaterThan(1);
      const tl = await timeline(inc.id);
      expect(tl.some((e) => e.action === 'notify_failed' && /第 1 次发送失败（应答 -1 系统繁忙）/.test(e.note))).toBe(true);
      const states = await t.db.query(
        `SELECT payload->>'state' AS state FROM console_events WHERE type = 'notification.channel' AND payload->>'channelId' = $1 ORDER BY seq`,
        [ch.wecom],
      );
      expect(states.rows.map((r) => r.state).slice(-2)).toEqual(['failing', 'recovered']);
      const metrics = await t.http().get('/metrics').expect(200);
      expect(metrics.text).toMatch(/shouhu_notification_attempts_total\{kind="wecom",outcome="retrying"\} [1-9]/);
    });

    it('a silenced channel is skipped and recorded as such (audited); nobody on duty is recorded too', async () => {
      const bad = await t
        .http()
        .post(`/api/v1/notifications/channels/${ch.sms}/silence`)
        .set(auth(sup.token))
        .send({ until: iso(Date.now() - 1000), reason: 'x' })
        .expect(400);
      expect(bad.body.error.details.fields[0].field).toBe('until');
      await t
        .http()
        .post(`/api/v1/notifications/channels/${ch.sms}/silence`)
        .set(auth(op.token))
        .send({ until: iso(Date.now() + 3600_000), reason: '维护' })
        .expect(403);
      const s = await t
        .http()
        .post(`/api/v1/notifications/channels/${ch.sms}/silence`)
        .set(auth(sup.token))
        .send({ until: iso(Date.now() + 3600_000), reason: '运营商网关维护' })
        .expect(200);
      expect(s.body).toMatchObject({ state: 'silenced', silenceReason: '运营商网关维护' });
      const inc = await raise('四号楼', 'P1');
      await waitFor(async () => (await deliveries(inc.id)).some((d) => d.channelKind === 'sms' && d.status === 'suppressed'), 20000, 'sms suppressed');
      expect(about(sms, '四号楼')).toEqual([]);
      await t.http().post(`/api/v1/incidents/${inc.id}/acknowledge`).set(auth(sup.token)).send({}).expect(200);
      await t.http().delete(`/api/v1/notifications/channels/${ch.sms}/silence`).set(auth(sup.token)).expect(200);
      const audit = await t.db.query(
        `SELECT action FROM audit_log WHERE entity = 'notification_channel' AND entity_id = $1 AND action LIKE '%silence' ORDER BY id`,
        [ch.sms],
      );
      expect(audit.rows.map((r) => r.action)).toEqual(['silence', 'unsilence']);

      // The duty supervisor's shift is handed over to a supervisor who is then disabled (a shift on duty is the record:
      // not deleted). Their shift covers nothing: the next escalation records that nobody was on duty (finding F4).
      const [onDuty] = (await t.http().get('/api/v1/duty/now').set(auth(op.token)).expect(200)).body.onDuty.duty_supervisor as { id: string }[];
      await t.http().delete(`/api/v1/duty/shifts/${onDuty.id}`).set(auth(sup.token)).expect(409);
      const leaving = await t.userToken('supervisor', undefined, 'leaving_sup');
      await t.http().post(`/api/v1/duty/shifts/${onDuty.id}/handover`).set(auth(sup.token)).send({ toUserId: leaving.userId }).expect(200);
      await t.http().patch(`/api/v1/users/${leaving.userId}`).set(auth(admin)).send({ disabled: true }).expect(200);
      const now = (await t.http().get('/api/v1/duty/now').set(auth(op.token)).expect(200)).body;
      expect(now.onDuty.duty_supervisor).toEqual([]);
      expect(now.notCounted).toEqual([expect.objectContaining({ userId: leaving.userId, dutyRole: 'duty_supervisor', notCounted: 'user_disabled' })]);
      const inc2 = await raise('五号楼', 'P2');
      await waitFor(async () => (await deliveries(inc2.id)).some((d) => d.status === 'no_recipient'), 20000, 'no recipient recorded');
      const tl = await timeline(inc2.id);
      expect(tl.map((e) => e.note)).toEqual(expect.arrayContaining([expect.stringContaining('值班主管当前无人值班')]));
      await t.http().post(`/api/v1/incidents/${inc2.id}/acknowledge`).set(auth(sup.token)).send({}).expect(200);
    });

    it('a person named in a policy and later demoted to school staff is not told the alarm; the timeline says why (attack pass 9 #4)', async () => {
      const before = (await t.http().get('/api/v1/notifications/policies').set(auth(op.token)).expect(200)).body.find(
        (p: { priority: string }) => p.priority === 'P2',
      ) as { source: string; levels: { targets: unknown[]; channelIds: string[] | null }[] };
      const named = await t.userToken('operator', undefined, 'named_then_demoted', '被点名的值班员');
      await t
        .http()
        .put('/api/v1/notifications/policies/P2')
        .set(auth(admin))
        .send({
          levels: [
            { targets: [{ kind: 'user', userId: named.userId }], channelIds: null },
            { targets: [{ kind: 'user', userId: named.userId }], channelIds: null },
          ],
        })
        .expect(200);
      try {
        await t.http().patch(`/api/v1/users/${named.userId}`).set(auth(admin)).send({ role: 'school_security', schoolId: seed.schoolA.id }).expect(200);
        const inc = await raise('六号楼', 'P2');
        await waitFor(async () => (await deliveries(inc.id)).some((d) => d.status === 'no_recipient'), 20000, 'no recipient recorded');
        expect((await deliveries(inc.id)).filter((d) => d.status !== 'no_recipient')).toEqual([]);
        expect((await timeline(inc.id)).map((e) => e.note)).toEqual(expect.arrayContaining([expect.stringContaining('已不是巡查中心人员')]));
        await t.http().post(`/api/v1/incidents/${inc.id}/acknowledge`).set(auth(sup.token)).send({}).expect(200);
      } finally {
        if (before.source === 'stored')
          await t
            .http()
            .put('/api/v1/notifications/policies/P2')
            .set(auth(admin))
            .send({ levels: before.levels.map((l) => ({ targets: l.targets, channelIds: l.channelIds })) })
            .expect(200);
        else await t.db.query(`DELETE FROM escalation_policies WHERE priority = 'P2'`);
      }
    });

    it('the link in a message opens its incident after login; forged or expired links are refused', async () => {
      const msg = wecom.received.find((m) => m.text.includes('一号楼东门'))!;
      const token = /\/console\/ack\/([^)\s]+)/.exec(msg.text)![1];
      const r = await t.http().get(`/api/v1/notifications/links/${token}`).set(auth(sup.token)).expect(200);
      const [inc] = (await t.db.query(`SELECT id FROM incidents WHERE location = '一号楼东门'`)).rows;
      expect(r.body.incidentId).toBe(inc.id);
      await t.http().get(`/api/v1/notifications/links/${token}`).expect(401);
      const forged = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
      expect((await t.http().get(`/api/v1/notifications/links/${forged}`).set(auth(sup.token)).expect(400)).body.error.code).toBe('NOTIFICATION_LINK.INVALID');
      const { signLink } = await import('../../src/modules/notifications/ack-links');
      const old = signLink(t.config.notifications.linkSecret, inc.id, new Date(Date.now() - 1000));
      expect((await t.http().get(`/api/v1/notifications/links/${old}`).set(auth(sup.token)).expect(410)).body.error.code).toBe('NOTIFICATION_LINK.EXPIRED');
    });
  });
});

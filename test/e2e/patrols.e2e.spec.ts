import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { QueueName } from '../../src/infra/queue/queue.catalogue';
import { QueueService } from '../../src/infra/queue/queue.service';
import type { AuthUser } from '../../src/infra/access/roles';
import { ComplianceService, exportRows } from '../../src/modules/compliance/compliance.service';
import { readTable } from '../../src/infra/tabular/tabular';
import { AuditsService } from '../../src/modules/patrols/audits.service';
import { DAY_FACTS, DayFactsService } from '../../src/modules/patrols/day-facts.service';
import { FieldService } from '../../src/modules/patrols/field.service';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { RoundsService } from '../../src/modules/patrols/rounds.service';
import { RegistryService } from '../../src/modules/registry/registry.service';
import { schoolHours } from '../../src/modules/school-day/calendar';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { jpeg } from '../support/photos';

/** Shanghai wall-clock time on a date as an instant. */
const sh = (date: string, hhmm: string) => new Date(`${date}T${hhmm}:00+08:00`);
const MONDAY = '2026-03-02';

describe('patrols and compliance over HTTP', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let cams: { id: string; schoolId: string; areaKind: string }[];
  let post: { id: string; qrToken: string };
  let secA: { token: string; userId: string; username: string };
  let secB: { token: string; userId: string; username: string };
  let operator: { token: string; userId: string; username: string };
  const asUser = (u: { userId: string; username: string }, role: AuthUser['role'], schoolId: string | null = null): AuthUser => ({
    id: u.userId,
    username: u.username,
    role,
    schoolId,
    jti: 'test',
  });
  const schedulers = () => t.app.get(QueueService).queue(QueueName.Patrols);
  /**
   * An evidence record as the video wall keeps it before a verdict (POST /cameras/:id/evidence,
   * purpose round.verdict, refId the round): written directly, as these cameras stream nothing here
   * (alarm-video.browser.spec takes real pictures).
   */
  const picture = async (roundId: string, cameraId: string, purpose = 'round.verdict', source = 'stream'): Promise<string> =>
    (
      await t.db.query(
        `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, source)
         SELECT id, school_id, 'test/' || gen_random_uuid(), repeat('0', 64), 1, 640, 360, $2, $3, now(), $4 FROM cameras WHERE id = $1 RETURNING id`,
        [cameraId, purpose, roundId, source],
      )
    ).rows[0].id;

  const evidenceDir = mkdtempSync(join(tmpdir(), 'patrols-evidence-'));
  /** A photo of the fix uploaded for a task (a closing names at least one; task-photos.e2e tests them): its evidence id. */
  const fixPhoto = async (token: string, taskId: string): Promise<string> =>
    (
      await t
        .http()
        .post(`/api/v1/rectification-tasks/${taskId}/photos`)
        .set(auth(token))
        .attach('file', jpeg(64, 48), { filename: 'fix.jpg', contentType: 'image/jpeg' })
        .expect(201)
    ).body.id;

  beforeAll(async () => {
    // Verdicts unspaced here (one test turns the spacing on): the round tests judge cameras back to back.
    t = await startApp({
      patrols: { postCheckEveryMs: 0, roundVerdictMinSeconds: 0 },
      compliance: { snapshotEnabled: false },
      video: { evidenceDir },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    const h = auth(admin);
    const cam = (schoolId: string, n: number, areaKind: string, location: string) =>
      t
        .http()
        .post('/api/v1/cameras')
        .set(h)
        .send({
          schoolId,
          deviceId: `500113000013200000${String(n).padStart(2, '0')}`,
          channelId: `500113000013100000${String(n).padStart(2, '0')}`,
          name: `${location}${n}`,
          location,
          areaKind,
        })
        .expect(201)
        .then((r) => r.body);
    cams = [
      await cam(seed.schoolA.id, 1, 'main_gate', '南大门'),
      await cam(seed.schoolA.id, 2, 'perimeter', '围墙'),
      await cam(seed.schoolB.id, 3, 'playground', '操场'),
    ];
    await t
      .http()
      .post('/api/v1/alarm-devices')
      .set(h)
      .send({ code: 'SA-AB01', schoolId: seed.schoolA.id, location: '门卫室', areaKind: 'gatehouse', policeLinked: true })
      .expect(201);
    for (const [i, s] of [seed.schoolA.id, seed.schoolA.id, seed.schoolB.id].entries())
      await t
        .http()
        .post('/api/v1/guards')
        .set(h)
        .send({ schoolId: s, name: `保安${i}`, licenceNo: `CQ-T-${1000 + i}` })
        .expect(201);
    const p = (
      await t
        .http()
        .post('/api/v1/protection-posts')
        .set(h)
        .send({ code: 'SA-HXG1', schoolId: seed.schoolA.id, gate: '南大门', windows: [{ kind: 'arrival' }, { kind: 'dismissal' }], requiredHeadcount: 2 })
        .expect(201)
    ).body;
    secA = await t.userToken('school_security', seed.schoolA.id);
    secB = await t.userToken('school_security', seed.schoolB.id);
    operator = await t.userToken('operator');
    // What the printed QR code says: the signed payload of the current window (never the post's own token).
    const qr = (await t.http().get(`/api/v1/protection-posts/${p.id}/qr`).set(auth(operator.token)).expect(200)).body;
    post = { id: p.id, qrToken: qr.payload };
  });
  afterAll(async () => {
    await t.close();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  describe('patrol plans ↔ job schedulers', () => {
    it('create, change, disable and delete a plan; its scheduler follows in Redis', async () => {
      const created = await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(admin))
        .send({ name: '每日巡查', cron: '0 9 * * 1-5', scope: { kind: 'district' }, checks: ['guard_staffing'] })
        .expect(201);
      const id = created.body.id;
      const s = await schedulers().getJobScheduler(`patrol-plan:${id}`);
      expect(s).toMatchObject({ pattern: '0 9 * * 1-5', tz: 'Asia/Shanghai' });
      await t.http().patch(`/api/v1/patrol-plans/${id}`).set(auth(admin)).send({ cron: '30 16 * * *' }).expect(200);
      expect(await schedulers().getJobScheduler(`patrol-plan:${id}`)).toMatchObject({ pattern: '30 16 * * *' });
      await t.http().patch(`/api/v1/patrol-plans/${id}`).set(auth(admin)).send({ enabled: false }).expect(200);
      expect(await schedulers().getJobScheduler(`patrol-plan:${id}`)).toBeFalsy();
      await t.http().patch(`/api/v1/patrol-plans/${id}`).set(auth(admin)).send({ enabled: true }).expect(200);
      expect(await schedulers().getJobScheduler(`patrol-plan:${id}`)).toBeTruthy();
      await t.http().delete(`/api/v1/patrol-plans/${id}`).set(auth(admin)).expect(204);
      expect(await schedulers().getJobScheduler(`patrol-plan:${id}`)).toBeFalsy();
      await t.http().get(`/api/v1/patrol-plans/${id}`).set(auth(admin)).expect(404);
    });

    it('reconciles schedulers with the plans table at boot', async () => {
      const id = (
        await t
          .http()
          .post('/api/v1/patrol-plans')
          .set(auth(admin))
          .send({ name: 'r', cron: '0 8 * * *', scope: { kind: 'district' }, checks: ['gate_open'] })
          .expect(201)
      ).body.id;
      await t.app.get(QueueService).removeScheduler('patrols.run' as never, `patrol-plan:${id}`);
      await schedulers().upsertJobScheduler(
        'patrol-plan:00000000-0000-4000-8000-00000000dead',
        { pattern: '0 1 * * *' },
        { name: 'patrols.run', data: { planId: '00000000-0000-4000-8000-00000000dead' } },
      );
      const r = await t.app.get(AuditsService).reconcileSchedulers();
      expect(r.removed).toBe(1);
      expect(await schedulers().getJobScheduler(`patrol-plan:${id}`)).toBeTruthy();
      expect(await schedulers().getJobScheduler('patrol-plan:00000000-0000-4000-8000-00000000dead')).toBeFalsy();
      await t.http().delete(`/api/v1/patrol-plans/${id}`).set(auth(admin)).expect(204);
    });

    it('refuses bad plans (400), other roles (403) and no token (401)', async () => {
      const bad = await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(admin))
        .send({ name: 'x', cron: '61 * * * *', scope: { kind: 'zone' }, checks: ['nope'] })
        .expect(400);
      expect(bad.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(expect.arrayContaining(['checks']));
      const badCron = await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(admin))
        .send({ name: 'x', cron: '61 * * * *', scope: { kind: 'zone' }, checks: ['gate_open'] })
        .expect(400);
      expect(badCron.body.error.details.fields.map((f: { field: string }) => f.field).sort()).toEqual(['cron', 'scope.ids']);
      await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(operator.token))
        .send({ name: 'x', cron: '0 9 * * *', scope: { kind: 'district' }, checks: ['gate_open'] })
        .expect(403);
      await t.http().get('/api/v1/patrol-plans').set(auth(secA.token)).expect(403);
      await t.http().get('/api/v1/patrol-plans').expect(401);
      await t.http().post('/api/v1/patrol-plans/00000000-0000-4000-8000-000000000000/run').expect(401);
    });
  });

  describe('runs, findings, tasks', () => {
    let planId: string;
    beforeAll(async () => {
      planId = (
        await t
          .http()
          .post('/api/v1/patrol-plans')
          .set(auth(admin))
          .send({
            name: '保安配备',
            cron: '0 9 * * *',
            scope: { kind: 'schools', ids: [seed.schoolA.id, seed.schoolB.id] },
            checks: ['guard_staffing', 'alarm_button'],
          })
          .expect(201)
      ).body.id;
    });

    it('a run twice for the same slot counts once (also when concurrent)', async () => {
      const slot = new Date(Date.now() - 3_600_000).toISOString(); // a manual run names a recent slot
      const first = await t.http().post(`/api/v1/patrol-plans/${planId}/run`).set(auth(admin)).send({ slot }).expect(201);
      expect(first.body).toMatchObject({ duplicate: false, schoolCount: 2, failedSchoolCount: 2 });
      const again = await t.http().post(`/api/v1/patrol-plans/${planId}/run`).set(auth(admin)).send({ slot }).expect(200);
      expect(again.body).toMatchObject({ id: first.body.id, duplicate: true });
      const audits = t.app.get(AuditsService);
      const slot2 = new Date('2026-03-03T01:00:00.000Z');
      const [a, b] = await Promise.all([audits.runPlan(planId, { slot: slot2 }), audits.runPlan(planId, { slot: slot2 })]);
      expect(a!.run!.id).toBe(b!.run!.id);
      expect([a!.duplicate, b!.duplicate].sort()).toEqual([false, true]);
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM patrol_runs WHERE plan_id = $1`, [planId]);
      expect(rows[0].n).toBe(2);
      const f = await t.db.query(
        `SELECT run_id, count(*)::int AS n FROM patrol_findings WHERE run_id IN (SELECT id FROM patrol_runs WHERE plan_id = $1) GROUP BY run_id`,
        [planId],
      );
      expect(f.rows.map((r) => r.n)).toEqual([first.body.findingCount, first.body.findingCount]);
    });

    it('findings open one task per problem, push console events, and school security close their own', async () => {
      const runs = (await t.http().get('/api/v1/patrol-runs').query({ planId }).set(auth(admin)).expect(200)).body.items;
      const schools = (await t.http().get(`/api/v1/patrol-runs/${runs[0].id}/schools`).set(auth(admin)).expect(200)).body.items;
      const b = schools.find((s: { schoolId: string }) => s.schoolId === seed.schoolB.id);
      expect(b.results.guard_staffing).toMatchObject({ status: 'fail', required: 2, actual: 1, short: 1 });
      expect(b.results.alarm_button).toMatchObject({ status: 'fail', buttons: 0 });
      const a = schools.find((s: { schoolId: string }) => s.schoolId === seed.schoolA.id);
      expect(a.results.guard_staffing.status).toBe('pass');
      expect(a.results.alarm_button.bad[0].problems).toEqual(['no_heartbeat', 'test_overdue']);

      // Two runs found B short of guards: one open task with two findings.
      const tasks = (await t.http().get('/api/v1/rectification-tasks').query({ schoolId: seed.schoolB.id, status: 'open' }).set(auth(admin)).expect(200)).body;
      const staffing = tasks.items.find((x: { check: string }) => x.check === 'guard_staffing');
      expect(staffing).toMatchObject({ findingCount: 2, status: 'open', checkLabel: '专职保安员配备不足' });
      // An audit run sends district summary events (one per 500 schools), not one per school.
      const ev = await t.db.query(`SELECT school_id, payload FROM console_events WHERE type = 'patrol.finding' AND payload->>'runId' = $1`, [runs[0].id]);
      expect(ev.rows).toHaveLength(1);
      expect(ev.rows[0].school_id).toBeNull();
      const summary = ev.rows[0].payload;
      expect(summary).toMatchObject({ source: 'audit', total: runs[0].findingCount, chunk: { index: 1, of: 1 } });
      expect(summary.schools.map((x: { schoolId: string }) => x.schoolId).sort()).toEqual([seed.schoolA.id, seed.schoolB.id].sort());
      const evB = summary.schools.find((x: { schoolId: string }) => x.schoolId === seed.schoolB.id);
      expect(evB).toEqual({ schoolId: seed.schoolB.id, total: 2, checks: { alarm_button: 1, guard_staffing: 1 } });
      const listedB = summary.findings.filter((x: { taskId: string }) => x.taskId && tasks.items.some((tk: { id: string }) => tk.id === x.taskId));
      expect(listedB.map((x: { check: string }) => x.check).sort()).toEqual(['alarm_button', 'guard_staffing']);

      // School security: own tasks only.
      const own = (await t.http().get('/api/v1/rectification-tasks').set(auth(secB.token)).expect(200)).body;
      expect(own.items.every((x: { schoolId: string }) => x.schoolId === seed.schoolB.id)).toBe(true);
      await t.http().get('/api/v1/rectification-tasks').query({ schoolId: seed.schoolB.id }).set(auth(secA.token)).expect(403);
      const photo = await fixPhoto(secB.token, staffing.id);
      await t
        .http()
        .post(`/api/v1/rectification-tasks/${staffing.id}/close`)
        .set(auth(secA.token))
        .send({ note: 'x', photoIds: [photo] })
        .expect(404); // another school's: as if missing
      await t.http().post(`/api/v1/rectification-tasks/${staffing.id}/close`).set(auth(secB.token)).send({}).expect(400);
      const auditor = (await t.userToken('auditor')).token;
      await t
        .http()
        .post(`/api/v1/rectification-tasks/${staffing.id}/close`)
        .set(auth(auditor))
        .send({ note: 'x', photoIds: [photo] })
        .expect(403);
      const closed = await t
        .http()
        .post(`/api/v1/rectification-tasks/${staffing.id}/close`)
        .set(auth(secB.token))
        .send({ note: '已招聘保安一名', evidenceRef: 'photo:123', photoIds: [photo] })
        .expect(200);
      // evidenceRef (free text) is still kept for older clients; the photos are the evidence.
      expect(closed.body).toMatchObject({
        status: 'closed',
        closeNote: '已招聘保安一名',
        evidenceRef: 'photo:123',
        closePhotoIds: [photo],
        closedBy: secB.userId,
      });
      await t
        .http()
        .post(`/api/v1/rectification-tasks/${staffing.id}/close`)
        .set(auth(secB.token))
        .send({ note: 'again', photoIds: [photo] })
        .expect(409);
      const detail = (await t.http().get(`/api/v1/rectification-tasks/${staffing.id}`).set(auth(secB.token)).expect(200)).body;
      expect(detail.findings).toHaveLength(2);
      // Found again after closing: a new task.
      await t.app.get(AuditsService).runPlan(planId, { slot: new Date('2026-03-04T01:00:00.000Z') });
      const reopened = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open' }).set(auth(secB.token)).expect(200)).body.items;
      expect(reopened.filter((x: { check: string }) => x.check === 'guard_staffing')).toHaveLength(1);
      await t.http().get('/api/v1/patrol-findings').query({ check: 'guard_staffing' }).set(auth(secB.token)).expect(200);
      await t.http().get('/api/v1/rectification-tasks').expect(401);
    });
    it('deduplicated findings already stored count for nothing; the rest open or join one task and carry its id', async () => {
      const svc = t.app.get(FindingsService);
      const db = t.app.get(DataSource);
      const now = new Date('2026-03-05T02:00:00.000Z');
      const f = (dedupKey: string | null) => ({
        source: 'audit' as const,
        check: 'gate_open',
        schoolId: seed.schoolB.id,
        subjectKind: 'gate' as const,
        subjectLabel: '东门',
        message: '东门 上课时段开启',
        dedupKey,
        at: now,
      });
      // The same dedup key twice in one batch is stored once.
      const first = await db.transaction((m) => svc.record(m, [f('edge:gate:1'), f('edge:gate:1'), f(null)], now));
      expect(first).toHaveLength(2);
      expect(first[0].taskId).toBeTruthy();
      expect(first[1].taskId).toBe(first[0].taskId);
      const again = await db.transaction((m) => svc.record(m, [f('edge:gate:1'), f(null)], now));
      expect(again.map((x) => x.taskId)).toEqual([first[0].taskId]);
      const [task] = (await t.db.query(`SELECT finding_count FROM rectification_tasks WHERE id = $1`, [first[0].taskId])).rows;
      expect(task.finding_count).toBe(3);
      const stored = (await t.db.query(`SELECT dedup_key, task_id FROM patrol_findings WHERE subject_label = '东门' AND school_id = $1`, [seed.schoolB.id]))
        .rows;
      expect(stored).toHaveLength(3);
      expect(stored.every((r) => r.task_id === first[0].taskId)).toBe(true);
      expect(stored.filter((r) => r.dedup_key === 'edge:gate:1')).toHaveLength(1);
    });

    it("lists open tasks newest first (order=newest: the operator's findings panel) or by deadline, each with its school's name; a bad order is a 400 on it", async () => {
      const h = auth(admin);
      const newest = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open', order: 'newest', limit: 3 }).set(h).expect(200)).body;
      const expected = (
        await t.db.query(`SELECT id FROM rectification_tasks WHERE status = 'open' ORDER BY coalesce(reopened_at, created_at) DESC, id LIMIT 3`)
      ).rows.map((r) => r.id);
      expect(expected.length).toBeGreaterThan(1);
      expect(newest.items.map((x: { id: string }) => x.id)).toEqual(expected);
      const { rows: open } = await t.db.query(`SELECT count(*)::int AS n FROM rectification_tasks WHERE status = 'open'`);
      expect(newest.total).toBe(open[0].n);
      const names = new Map([
        [seed.schoolA.id, seed.schoolA.name],
        [seed.schoolB.id, seed.schoolB.name],
      ]);
      for (const x of newest.items as { schoolId: string; schoolName: string }[]) expect(x.schoolName).toBe(names.get(x.schoolId));
      // The default stays: open first, the nearest deadline first.
      const byDeadline = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open' }).set(h).expect(200)).body.items as { deadline: string }[];
      expect(byDeadline.map((x) => x.deadline)).toEqual([...byDeadline.map((x) => x.deadline)].sort());
      const one = (await t.http().get(`/api/v1/rectification-tasks/${newest.items[0].id}`).set(h).expect(200)).body;
      expect(one.schoolName).toBe(names.get(one.schoolId));
      const bad = await t.http().get('/api/v1/rectification-tasks').query({ order: 'oldest' }).set(h).expect(400);
      expect(bad.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['order']);
    });

    it('a supervisor sends a closed task back with a reason: open again with a new deadline, the school sees why and closes it again (issue 13)', async () => {
      const svc = t.app.get(FindingsService);
      const db = t.app.get(DataSource);
      const finding = (at: Date) => ({
        source: 'audit' as const,
        check: 'gate_open',
        schoolId: seed.schoolB.id,
        subjectKind: 'gate' as const,
        subjectLabel: '西门',
        message: '西门 上课时段开启',
        dedupKey: null,
        at,
      });
      const [{ taskId }] = await db.transaction((m) => svc.record(m, [finding(new Date())], new Date()));
      const url = `/api/v1/rectification-tasks/${taskId}/reopen`;
      const sup = await t.userToken('supervisor');
      // Only a closed task goes back.
      const open = await t.http().post(url).set(auth(sup.token)).send({ reason: '未整改' }).expect(409);
      expect(open.body.error.code).toBe('RECTIFICATION_TASK.NOT_CLOSED');
      const firstPhoto = await fixPhoto(secB.token, taskId!);
      await t
        .http()
        .post(`/api/v1/rectification-tasks/${taskId}/close`)
        .set(auth(secB.token))
        .send({ note: '已关门', evidenceRef: 'photo:7', photoIds: [firstPhoto] })
        .expect(200);

      // Supervisors and admins follow tasks to closure; others may not send one back; a reason is required.
      const auditor = (await t.userToken('auditor')).token;
      for (const token of [auditor, operator.token, secB.token]) await t.http().post(url).set(auth(token)).send({ reason: '未整改' }).expect(403);
      const blank = await t.http().post(url).set(auth(sup.token)).send({ reason: '   ' }).expect(400);
      expect(blank.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['reason']);
      await t.http().post(url).set(auth(sup.token)).send({}).expect(400);
      await t.http().post(`/api/v1/rectification-tasks/00000000-0000-4000-8000-000000000000/reopen`).set(auth(sup.token)).send({ reason: 'x' }).expect(404);
      await t.http().post(url).send({ reason: 'x' }).expect(401);

      const before = Date.now();
      const back = (await t.http().post(url).set(auth(sup.token)).send({ reason: '  照片显示西门仍开着  ' }).expect(200)).body;
      expect(back).toMatchObject({
        status: 'open',
        closedAt: null,
        closedBy: null,
        reopenReason: '照片显示西门仍开着',
        reopenedBy: sup.userId,
        reopenCount: 1,
        // What the school wrote last time stays for it to see.
        closeNote: '已关门',
        evidenceRef: 'photo:7',
        closePhotoIds: [firstPhoto],
      });
      expect(Date.parse(back.deadline)).toBeGreaterThanOrEqual(before + t.config.patrols.taskDeadlineHours * 3_600_000 - 1000);
      const audit = await t.db.query(`SELECT actor_id FROM audit_log WHERE entity = 'rectification_task' AND entity_id = $1 AND action = 'reopen'`, [taskId]);
      expect(audit.rows).toEqual([{ actor_id: sup.userId }]);
      // The school sees it among its open tasks, with the reason; it closes it again.
      const mine = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open' }).set(auth(secB.token)).expect(200)).body.items;
      expect(mine.find((x: { id: string }) => x.id === taskId)).toMatchObject({ reopenReason: '照片显示西门仍开着', reopenCount: 1 });
      const close = async (note: string) =>
        t
          .http()
          .post(`/api/v1/rectification-tasks/${taskId}/close`)
          .set(auth(secB.token))
          .send({ note, photoIds: [await fixPhoto(secB.token, taskId!)] })
          .expect(200);
      await close('已加装闭门器');
      expect((await t.http().post(url).set(auth(admin)).send({ reason: '仍未关闭' }).expect(200)).body.reopenCount).toBe(2);
      await close('门卫专人值守');

      // Found again since its closing: the problem has an open task already; that one is followed instead.
      const [again] = await db.transaction((m) => svc.record(m, [finding(new Date())], new Date()));
      expect(again.taskId).not.toBe(taskId);
      const taken = await t.http().post(url).set(auth(sup.token)).send({ reason: '仍未关闭' }).expect(409);
      expect(taken.body.error).toMatchObject({ code: 'RECTIFICATION_TASK.OPEN_TASK_EXISTS', details: { openTaskId: again.taskId } });
    });

    it('exports findings and rectification tasks as CSV or XLSX: zh-CN headers and labels, school names, the school staff their own (issue 13)', async () => {
      const auditor = (await t.userToken('auditor')).token;
      const csv = async (path: string, token: string, query: Record<string, string>) => {
        const res = await t
          .http()
          .get(path)
          .set(auth(token))
          .query({ format: 'csv', ...query })
          .buffer(true)
          .expect(200);
        expect(res.headers['content-type']).toContain('text/csv');
        expect(res.headers['content-disposition']).toContain(`filename*=UTF-8''`);
        const buf = Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.text, 'utf8');
        expect([...buf.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
        return readTable(buf);
      };
      // Tasks: as many lines as the list counts, each with its school's name, the check's label and its sending back.
      const listed = (await t.http().get('/api/v1/rectification-tasks').query({ schoolId: seed.schoolB.id }).set(auth(auditor)).expect(200)).body;
      const tasks = await csv('/api/v1/rectification-tasks/export', auditor, { schoolId: seed.schoolB.id });
      expect(tasks.header).toEqual([
        '编号',
        '学校',
        '检查项',
        '问题',
        '状态',
        '是否逾期',
        '发现次数',
        '下达时间',
        '整改期限',
        '完成时间',
        '整改情况',
        '整改凭证',
        '整改照片',
        '退回次数',
        '退回原因',
      ]);
      expect(tasks.rows).toHaveLength(listed.total);
      const col = (row: { cells: unknown[] }, name: string) => row.cells[tasks.header.indexOf(name)];
      expect(new Set(tasks.rows.map((r) => col(r, '学校')))).toEqual(new Set(['乙小学']));
      // An open task (one sent back included) shows no closing note or evidence: those of a rejected closing are not current.
      for (const r of tasks.rows.filter((x) => col(x, '状态') === '未完成'))
        expect([col(r, '整改情况'), col(r, '整改凭证'), col(r, '整改照片')]).toEqual(['', '', '']);
      const sentBack = tasks.rows.find((r) => String(col(r, '退回次数')) === '2')!;
      expect(sentBack.cells).toEqual(expect.arrayContaining(['上课期间校门未关闭', '已完成', '仍未关闭', '门卫专人值守']));
      expect(String(col(sentBack, '整改照片'))).toBe('1'); // the last closing's photos
      expect(String(col(sentBack, '整改期限'))).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      // Findings: newest first, the source and check in words.
      const findings = await csv('/api/v1/patrol-findings/export', auditor, { schoolId: seed.schoolB.id, check: 'gate_open' });
      const listedFindings = (
        await t.http().get('/api/v1/patrol-findings').query({ schoolId: seed.schoolB.id, check: 'gate_open' }).set(auth(auditor)).expect(200)
      ).body;
      expect(findings.header).toEqual(['时间', '来源', '检查项', '学校', '对象', '问题描述', '整改任务编号']);
      expect(findings.rows).toHaveLength(listedFindings.total);
      expect(findings.rows[0].cells.slice(1, 4)).toEqual(['定时巡查', '上课期间校门未关闭', '乙小学']);
      // School staff: their own school only, whatever they ask for.
      const mine = await csv('/api/v1/rectification-tasks/export', secA.token, {});
      expect(mine.rows.length).toBeGreaterThan(0);
      expect(new Set(mine.rows.map((r) => col(r, '学校')))).toEqual(new Set(['甲小学']));
      await t.http().get('/api/v1/rectification-tasks/export').query({ schoolId: seed.schoolB.id }).set(auth(secA.token)).expect(403);
      // XLSX by default; bad input and too many rows are field-level 400s; no token 401.
      const xlsx = await t.http().get('/api/v1/patrol-findings/export').set(auth(auditor)).buffer(true).expect(200);
      expect(xlsx.headers['content-type']).toContain('spreadsheetml');
      await t.http().get('/api/v1/patrol-findings/export').query({ format: 'pdf' }).set(auth(auditor)).expect(400);
      const max = t.config.patrols.exportMaxRows;
      t.config.patrols.exportMaxRows = 1;
      try {
        const many = await t.http().get('/api/v1/patrol-findings/export').set(auth(auditor)).expect(400);
        expect(many.body.error.details.fields[0]).toMatchObject({ field: 'from', reason: expect.stringContaining('patrols.exportMaxRows') });
        const manyTasks = await t.http().get('/api/v1/rectification-tasks/export').set(auth(auditor)).expect(400);
        expect(manyTasks.body.error.details.fields[0].field).toBe('status');
      } finally {
        t.config.patrols.exportMaxRows = max;
      }
      await t.http().get('/api/v1/rectification-tasks/export').expect(401);
    });
  });

  describe('protection posts', () => {
    it("the post's QR token is never sent; the bureau prints a signed code that rotates, and a check-in verifies it (attack F8b)", async () => {
      const [{ qr_token: secret }] = (await t.db.query(`SELECT qr_token FROM protection_posts WHERE id = $1`, [post.id])).rows;
      const seen = [
        (await t.http().get(`/api/v1/protection-posts/${post.id}`).set(auth(secA.token)).expect(200)).body,
        (await t.http().get('/api/v1/protection-posts').set(auth(secA.token)).expect(200)).body,
        (await t.http().get(`/api/v1/protection-posts/${post.id}`).set(auth(admin)).expect(200)).body,
      ];
      expect(JSON.stringify(seen)).not.toContain(secret);
      expect(seen[0].qrToken).toBeUndefined();
      // School security cannot print one (they would scan it from home); the bureau can.
      await t.http().get(`/api/v1/protection-posts/${post.id}/qr`).set(auth(secA.token)).expect(403);
      await t.http().get(`/api/v1/protection-posts/00000000-0000-4000-8000-000000000000/qr`).set(auth(operator.token)).expect(404);
      const qr = (await t.http().get(`/api/v1/protection-posts/${post.id}/qr`).set(auth(admin)).expect(200)).body;
      expect(qr).toMatchObject({ postId: post.id, postCode: 'SA-HXG1', gate: '南大门', windowMinutes: 1440, payload: expect.stringMatching(/^SHQR1\./) });
      expect(qr.payload).not.toContain(secret);
      // A Shanghai day: valid from Shanghai midnight, taken until the end of the next day (one grace window).
      expect(new Date(qr.validFrom).toLocaleTimeString('en-GB', { timeZone: 'Asia/Shanghai' })).toBe('00:00:00');
      expect(new Date(qr.validUntil).getTime() - new Date(qr.validFrom).getTime()).toBe(2 * 86_400_000);
      // The raw token, a forged or altered signature, another window: refused.
      const field = t.app.get(FieldService);
      const me = asUser(secA, 'school_security', seed.schoolA.id);
      const [pfx, id, win, sig] = (qr.payload as string).split('.');
      for (const forged of [secret, `${pfx}.${id}.${win}.${'A'.repeat(22)}`, `${pfx}.${id}.${Number(win) + 1}.${sig}`, `${pfx}.${id}.${win}.${sig}x`])
        await expect(field.checkIn(me, { qrToken: forged })).rejects.toMatchObject({ status: 404, code: 'PROTECTION_POST.NOT_FOUND' });
      // Two days on, the printed sheet has expired: a 400 that says so, field-level.
      const later = new Date(new Date(qr.validUntil).getTime() + 1000);
      await expect(field.checkIn(me, { qrToken: qr.payload }, later)).rejects.toMatchObject({
        status: 400,
        code: 'PROTECTION_POST.QR_EXPIRED',
        details: { fields: [expect.objectContaining({ field: 'qrToken' })] },
      });
      // Yesterday's sheet is still taken today (grace), tomorrow's is printed from tomorrow.
      const tomorrow = await field.postQr(post.id, new Date(new Date(qr.nextAt).getTime() + 1000));
      expect(tomorrow.payload).not.toBe(qr.payload);
      await expect(field.checkIn(me, { qrToken: tomorrow.payload })).rejects.toMatchObject({ status: 404 });
      // A lost or photographed sheet: the bureau rotates the post's secret; every code printed so far is refused.
      await t.http().post(`/api/v1/protection-posts/${post.id}/qr/rotate`).set(auth(secA.token)).expect(403);
      const fresh = (await t.http().post(`/api/v1/protection-posts/${post.id}/qr/rotate`).set(auth(operator.token)).expect(200)).body;
      expect(fresh.payload).not.toBe(qr.payload);
      await expect(field.checkIn(me, { qrToken: qr.payload })).rejects.toMatchObject({ status: 404, code: 'PROTECTION_POST.NOT_FOUND' });
      const [{ qr_token: rotated }] = (await t.db.query(`SELECT qr_token FROM protection_posts WHERE id = $1`, [post.id])).rows;
      expect(rotated).not.toBe(secret);
      post.qrToken = fresh.payload; // the code now posted at the gate, for the cases below
    });

    it('school security check in by the QR code of their own school only; the center on their behalf', async () => {
      const ok = await t.http().post('/api/v1/post-checkins').set(auth(secA.token)).send({ qrToken: post.qrToken }).expect(201);
      expect(ok.body).toMatchObject({ postId: post.id, schoolId: seed.schoolA.id, personName: secA.username, onBehalf: false, gate: '南大门' });
      await t.http().post('/api/v1/post-checkins').set(auth(secB.token)).send({ qrToken: post.qrToken }).expect(404); // as unknown as a wrong token
      await t.http().post('/api/v1/post-checkins').set(auth(secA.token)).send({ qrToken: 'no-such-token' }).expect(404);
      await t.http().post('/api/v1/post-checkins').set(auth(secA.token)).send({ postId: post.id }).expect(400);
      await t.http().post('/api/v1/post-checkins').set(auth(operator.token)).send({ postId: post.id }).expect(400);
      const behalf = await t
        .http()
        .post('/api/v1/post-checkins')
        .set(auth(operator.token))
        .send({ postId: post.id, personName: '李警官', personRole: 'police' })
        .expect(201);
      expect(behalf.body).toMatchObject({ onBehalf: true, personRole: 'police' });
      const out = await t.http().post(`/api/v1/post-checkins/${ok.body.id}/checkout`).set(auth(secA.token)).expect(200);
      expect(out.body.checkedOutAt).toBeTruthy();
      await t.http().post(`/api/v1/post-checkins/${behalf.body.id}/checkout`).set(auth(secB.token)).expect(404);
      await t.http().post('/api/v1/post-checkins').send({ qrToken: post.qrToken }).expect(401);
      const list = (await t.http().get('/api/v1/post-checkins').set(auth(secA.token)).expect(200)).body;
      expect(list.total).toBe(2);
    });

    it('a post short of its head count at window start + grace becomes a finding and a console event, once per window', async () => {
      const field = t.app.get(FieldService);
      const op = asUser(operator, 'operator');
      await field.checkIn(op, { postId: post.id, personName: '王建国', personRole: 'police' }, sh(MONDAY, '07:20'));
      await field.checkIn(op, { postId: post.id, personName: '保安0' }, sh(MONDAY, '16:25')); // guards on the roster
      await field.checkIn(op, { postId: post.id, personName: '保安1' }, sh(MONDAY, '16:35'));
      const early = await field.checkPosts(sh(MONDAY, '07:39'));
      expect(early).toEqual({ windows: 0, findings: 0 });
      const due = await field.checkPosts(sh(MONDAY, '07:41'));
      expect(due).toEqual({ windows: 1, findings: 1 });
      expect(await field.checkPosts(sh(MONDAY, '07:45'))).toEqual({ windows: 1, findings: 0 });
      const { rows } = await t.db.query(`SELECT message, detail, task_id FROM patrol_findings WHERE source = 'post'`);
      expect(rows).toHaveLength(1);
      expect(rows[0].message).toContain('在岗 1 人，应到 2 人');
      expect(rows[0].task_id).toBeTruthy();
      const ev = await t.db.query(`SELECT payload FROM console_events WHERE type = 'patrol.finding' AND payload->>'source' = 'post'`);
      expect(ev.rows).toHaveLength(1);
      expect(ev.rows[0].payload.findings[0].check).toBe('post_unstaffed');
      // Dismissal: two on post by 16:40 → staffed, no finding.
      expect(await field.checkPosts(sh(MONDAY, '16:45'))).toEqual({ windows: 1, findings: 0 });
      // A holiday has no windows.
      expect(await field.checkPosts(sh('2026-03-07', '07:45'))).toEqual({ windows: 0, findings: 0 });
    });

    it('check-ins name real people: school security themselves, the center a roster guard (attack F8a); one person fills one post at a time', async () => {
      const bad = async (token: string, body: object, field: string) => {
        const r = await t.http().post('/api/v1/post-checkins').set(auth(token)).send(body).expect(400);
        expect(r.body.error.details.fields).toEqual([expect.objectContaining({ field })]);
      };
      const own = await t.userToken('school_security', seed.schoolA.id);
      const qr = await t.http().get(`/api/v1/protection-posts/${post.id}/qr`).set(auth(operator.token)).expect(200);
      await bad(own.token, { qrToken: qr.body.payload, personName: '冒名顶替' }, 'personName');
      await bad(own.token, { qrToken: qr.body.payload, personRole: 'police' }, 'personRole');
      await bad(operator.token, { postId: post.id, personName: '凭空捏造' }, 'personName'); // as a guard: not on the roster
      await bad(operator.token, { postId: post.id, personName: '保安2' }, 'personName'); // another school's guard
      const first = (await t.http().post('/api/v1/post-checkins').set(auth(operator.token)).send({ postId: post.id, personName: '保安1' }).expect(201)).body;
      // The same guard checked in at another post of the school has left the first one.
      const p2 = (
        await t
          .http()
          .post('/api/v1/protection-posts')
          .set(auth(operator.token))
          .send({ code: 'SA-HXG2', schoolId: seed.schoolA.id, gate: '北门', windows: [{ kind: 'arrival' }], requiredHeadcount: 1 })
          .expect(201)
      ).body;
      const second = (await t.http().post('/api/v1/post-checkins').set(auth(operator.token)).send({ postId: p2.id, personName: '保安1' }).expect(201)).body;
      const moved = (await t.db.query(`SELECT checked_out_at FROM post_checkins WHERE id = $1`, [first.id])).rows[0];
      expect(moved.checked_out_at).toBeTruthy();
      await t.db.query(`DELETE FROM post_checkins WHERE id = ANY($1)`, [[first.id, second.id]]);
      await t.http().delete(`/api/v1/protection-posts/${p2.id}`).set(auth(operator.token)).expect(204);
    });

    it('a burst of check-ins or patrols is refused with 429 and a clear code (attack F8c)', async () => {
      const own = await t.userToken('school_security', seed.schoolA.id);
      const qr = (await t.http().get(`/api/v1/protection-posts/${post.id}/qr`).set(auth(operator.token)).expect(200)).body.payload;
      await t.http().post('/api/v1/post-checkins').set(auth(own.token)).send({ qrToken: qr }).expect(201);
      const again = await t.http().post('/api/v1/post-checkins').set(auth(own.token)).send({ qrToken: qr });
      expect([again.status, again.body.error.code, again.headers['retry-after']]).toEqual([429, 'POST_CHECKIN.TOO_FREQUENT', expect.stringMatching(/^\d+$/)]);
      // Five patrols of one guard at once: one is recorded, four refused (serialised, not racing each other).
      const burst = await Promise.all(
        Array.from({ length: 5 }, () =>
          t.http().post('/api/v1/guard-patrols').set(auth(operator.token)).send({ schoolId: seed.schoolA.id, guardName: '保安0' }),
        ),
      );
      expect(burst.map((r) => r.status).sort()).toEqual([201, 429, 429, 429, 429]);
      expect(burst.find((r) => r.status === 429)!.body.error.code).toBe('GUARD_PATROL.TOO_FREQUENT');
      // Who patrolled is a real guard: school security themselves, the center a guard on the roster.
      await t.http().post('/api/v1/guard-patrols').set(auth(operator.token)).send({ schoolId: seed.schoolA.id, guardName: '不存在' }).expect(400);
      await t.http().post('/api/v1/guard-patrols').set(auth(own.token)).send({ guardName: '别人' }).expect(400);
      // Spaced patrols are all counted.
      const field = t.app.get(FieldService);
      const me = asUser(own, 'school_security', seed.schoolA.id);
      for (const hhmm of ['08:00', '08:10', '09:00']) await field.recordGuardPatrol(me, {}, sh('2026-03-03', hhmm));
      await expect(field.recordGuardPatrol(me, {}, sh('2026-03-03', '08:05'))).rejects.toMatchObject({ code: 'GUARD_PATROL.TOO_FREQUENT' });
      expect((await field.guardPatrolCounts([seed.schoolA.id], '2026-03-03')).get(seed.schoolA.id)).toBe(3);
    });

    it('one person, one open check-in per post, on their behalf too: a burst takes one (429), a second is 409, the head count counts them once', async () => {
      // The attacker's burst: six parallel on-behalf check-ins of one volunteer.
      const burst = await Promise.all(
        Array.from({ length: 6 }, () =>
          t.http().post('/api/v1/post-checkins').set(auth(operator.token)).send({ postId: post.id, personName: '志愿者甲', personRole: 'volunteer' }),
        ),
      );
      expect(burst.map((r) => r.status).sort()).toEqual([201, 429, 429, 429, 429, 429]);
      expect(burst.find((r) => r.status === 429)!.body.error.code).toBe('POST_CHECKIN.TOO_FREQUENT');
      const taken = burst.find((r) => r.status === 201)!.body;
      // The same person however the name is typed (ideographic or inner space, zero-width space, full width): the same spacing rule.
      for (const personName of ['志愿者　甲', '志愿者 甲', '志愿者\u200b甲', ' 志愿者甲\u3000']) {
        const r = await t.http().post('/api/v1/post-checkins').set(auth(operator.token)).send({ postId: post.id, personName, personRole: 'volunteer' });
        expect([personName, r.status]).toEqual([personName, 429]);
      }
      // Latin names in another case are the same person too: the spacing rule, the open check-in and the head count; shown as first typed.
      const lat = asUser(operator, 'operator');
      const latDay = '2026-03-05';
      const li = await t.app.get(FieldService).checkIn(lat, { postId: post.id, personName: 'Li Lei', personRole: 'volunteer' }, sh(latDay, '07:20'));
      const at0 = sh(latDay, '07:20').getTime();
      for (const [personName, at, code] of [
        ['li lei', at0 + 32, 'POST_CHECKIN.TOO_FREQUENT'],
        ['LI  LEI', at0 + 1000, 'POST_CHECKIN.TOO_FREQUENT'],
        ['ｌｉ ｌｅｉ', sh(latDay, '07:30').getTime(), 'POST_CHECKIN.ALREADY_CHECKED_IN'],
      ] as const)
        await expect(t.app.get(FieldService).checkIn(lat, { postId: post.id, personName, personRole: 'volunteer' }, new Date(at))).rejects.toMatchObject({
          code,
        });
      expect((await t.db.query(`SELECT person_name FROM post_checkins WHERE id = $1`, [li.id])).rows[0].person_name).toBe('Li Lei');
      await t.db.query(`DELETE FROM post_checkins WHERE id = $1`, [li.id]);
      // A roster guard checked in by the center: 32 ms later 429, later in the same window 409 naming the open check-in.
      const field = t.app.get(FieldService);
      const op = asUser(operator, 'operator');
      const day = '2026-03-04';
      const first = await field.checkIn(op, { postId: post.id, personName: '保安0' }, sh(day, '07:20'));
      await expect(field.checkIn(op, { postId: post.id, personName: '保安0' }, new Date(sh(day, '07:20').getTime() + 32))).rejects.toMatchObject({
        status: 429,
        code: 'POST_CHECKIN.TOO_FREQUENT',
      });
      const again = await t
        .http()
        .post('/api/v1/post-checkins')
        .set(auth(operator.token))
        .send({ postId: post.id, personName: '志愿者甲', personRole: 'volunteer' });
      expect(again.status).toBe(429); // the volunteer's own spacing, whoever records it
      await expect(field.checkIn(op, { postId: post.id, personName: '保安0' }, sh(day, '07:25'))).rejects.toMatchObject({
        status: 409,
        code: 'POST_CHECKIN.ALREADY_CHECKED_IN',
        details: { checkinId: first.id },
      });
      // The head count of the arrival window counts the guard once.
      const [school] = await t.app.get(RegistryService).schoolsIn({ ids: [seed.schoolA.id] });
      const arrival = (await field.postWindowStatus([school], day, sh(day, '07:45'))).find((w) => w.postId === post.id && w.kind === 'arrival');
      expect(arrival).toMatchObject({ present: 1 });
      // Open since the morning (no check-out): the dismissal check-in is taken and ends the forgotten one.
      const later = await field.checkIn(op, { postId: post.id, personName: '保安0' }, sh(day, '16:25'));
      const rows = (await t.db.query(`SELECT id, checked_out_at FROM post_checkins WHERE id = ANY($1) ORDER BY checked_in_at`, [[first.id, later.id]])).rows;
      expect(rows.map((r: { checked_out_at: Date | null }) => r.checked_out_at !== null)).toEqual([true, false]);
      // The rule holds in the data itself: a second open check-in of the same person at the post cannot be written.
      await expect(
        t.db.query(
          `INSERT INTO post_checkins (post_id, school_id, person_name, person_role, recorded_by, on_behalf, checked_in_at)
           VALUES ($1, $2, '保安0', 'guard', $3, true, $4)`,
          [post.id, seed.schoolA.id, operator.userId, sh(day, '16:26')],
        ),
      ).rejects.toMatchObject({ code: '23505' });
      await t.db.query(`DELETE FROM post_checkins WHERE id = ANY($1)`, [[taken.id, first.id, later.id]]);
    });

    it("only the bureau edits a post's windows and head count; school security get 403 (attack F8d)", async () => {
      for (const [method, url, body] of [
        ['patch', `/api/v1/protection-posts/${post.id}`, { requiredHeadcount: 1 }],
        ['patch', `/api/v1/protection-posts/${post.id}`, { windows: [{ kind: 'dismissal' }] }],
        ['delete', `/api/v1/protection-posts/${post.id}`, {}],
        ['post', '/api/v1/protection-posts', { code: 'SA-HXG9', schoolId: seed.schoolA.id, gate: '西门', windows: [{ kind: 'arrival' }] }],
      ] as const) {
        const r = await t.http()[method](url).set(auth(secA.token)).send(body);
        expect([method, r.status, r.body.error?.code]).toEqual([method, 403, 'AUTH.ROLE_FORBIDDEN']);
      }
      const [row] = (await t.db.query(`SELECT required_headcount, windows FROM protection_posts WHERE id = $1`, [post.id])).rows;
      expect(row.required_headcount).toBe(2);
      for (const token of [operator.token, (await t.userToken('supervisor')).token]) {
        await t.http().patch(`/api/v1/protection-posts/${post.id}`).set(auth(token)).send({ requiredHeadcount: 3 }).expect(200);
        await t.http().patch(`/api/v1/protection-posts/${post.id}`).set(auth(token)).send({ requiredHeadcount: 2 }).expect(200);
      }
    });

    it('guard patrols and gate events: own school for school security, 400 on bad input', async () => {
      await t.http().post('/api/v1/guard-patrols').set(auth(secA.token)).send({ route: '教学楼-操场' }).expect(201);
      await t.http().post('/api/v1/guard-patrols').set(auth(secA.token)).send({ schoolId: seed.schoolB.id }).expect(403);
      await t.http().post('/api/v1/guard-patrols').set(auth(operator.token)).send({}).expect(400);
      await t.http().post('/api/v1/gate-events').set(auth(secA.token)).send({ gate: '南大门', state: 'ajar' }).expect(400);
      await t.http().post('/api/v1/gate-events').set(auth(secB.token)).send({ schoolId: seed.schoolA.id, gate: '南大门', state: 'open' }).expect(403);
      await t.http().post('/api/v1/gate-events').send({ gate: 'x', state: 'open' }).expect(401);
    });
  });

  describe('video patrol rounds', () => {
    it('picks never or least recently patrolled cameras first, records verdicts, and reports coverage', async () => {
      const r1 = (await t.http().post('/api/v1/patrol-rounds').set(auth(operator.token)).send({ size: 2 }).expect(201)).body;
      expect(r1.items).toHaveLength(2);
      const other = await t.userToken('operator');
      // While r1 is open its cameras are held back: another operator gets the remaining one.
      const r2 = (await t.http().post('/api/v1/patrol-rounds').set(auth(other.token)).send({ size: 2 }).expect(201)).body;
      expect(r2.items.map((i: { cameraId: string }) => i.cameraId)).toEqual(
        cams.map((c) => c.id).filter((id) => !r1.items.some((i: { cameraId: string }) => i.cameraId === id)),
      );
      await t
        .http()
        .post(`/api/v1/patrol-rounds/${r1.id}/cameras/${r1.items[0].cameraId}/verdict`)
        .set(auth(other.token))
        .send({ verdict: 'normal' })
        .expect(403);
      await t
        .http()
        .post(`/api/v1/patrol-rounds/${r1.id}/cameras/${r1.items[0].cameraId}/verdict`)
        .set(auth(operator.token))
        .send({ verdict: 'fine' })
        .expect(400);
      await t
        .http()
        .post(`/api/v1/patrol-rounds/${r1.id}/cameras/${r1.items[0].cameraId}/verdict`)
        .set(auth(operator.token))
        .send({ verdict: 'normal', snapshotRef: await picture(r1.id, r1.items[0].cameraId) })
        .expect(200);
      const snap = await picture(r1.id, r1.items[1].cameraId, 'round.verdict', 'snapshot_uri');
      const done = (
        await t
          .http()
          .post(`/api/v1/patrol-rounds/${r1.id}/cameras/${r1.items[1].cameraId}/verdict`)
          .set(auth(operator.token))
          .send({ verdict: 'obstructed', note: '镜头被树枝遮挡', snapshotRef: snap })
          .expect(200)
      ).body;
      expect(done.finishedAt).toBeTruthy();
      // The round says where each verdict's picture came from (the evidence record's source).
      expect(done.items[0]).toMatchObject({ verdict: 'normal', snapshotSource: 'stream' });
      expect(done.items[1]).toMatchObject({ verdict: 'obstructed', snapshotRef: snap, snapshotSource: 'snapshot_uri' });
      expect(done.items[1].findingId).toBeTruthy();
      const [f] = (await t.db.query(`SELECT school_id, check_name, task_id FROM patrol_findings WHERE id = $1`, [done.items[1].findingId])).rows;
      expect(f).toMatchObject({ check_name: 'round_obstructed', school_id: r1.items[1].schoolId });
      expect(f.task_id).toBeTruthy();
      await t
        .http()
        .post(`/api/v1/patrol-rounds/${r1.id}/cameras/${r1.items[1].cameraId}/verdict`)
        .set(auth(operator.token))
        .send({ verdict: 'normal' })
        .expect(409);

      await t
        .http()
        .post(`/api/v1/patrol-rounds/${r2.id}/cameras/${r2.items[0].cameraId}/verdict`)
        .set(auth(other.token))
        .send({ verdict: 'normal', snapshotRef: await picture(r2.id, r2.items[0].cameraId) })
        .expect(200);
      // All three patrolled now; the next round starts with the least recently patrolled.
      const r3 = (await t.http().post('/api/v1/patrol-rounds').set(auth(operator.token)).send({ size: 3 }).expect(201)).body;
      expect(r3.items.map((i: { cameraId: string }) => i.cameraId)).toEqual([r1.items[0].cameraId, r1.items[1].cameraId, r2.items[0].cameraId]);

      const cov = (await t.http().get('/api/v1/patrol-coverage').set(auth(admin)).expect(200)).body;
      expect(cov.total).toEqual({ cameras: 3, patrolled: 3, share: 1 });
      expect(cov.zones).toEqual([{ zoneId: seed.zone.id, cameras: 3, patrolled: 3, share: 1 }]);
      const perOp = cov.roundsPerOperatorPerDay.find((x: { operatorId: string }) => x.operatorId === operator.userId);
      expect(perOp).toMatchObject({ rounds: 2, cameras: 5 });
      await t.http().get('/api/v1/patrol-coverage').set(auth(secA.token)).expect(403);
      await t.http().post('/api/v1/patrol-rounds').set(auth(secA.token)).send({}).expect(403);
      await t.http().post('/api/v1/patrol-rounds').set(auth(admin)).send({ size: 0 }).expect(400);
    });

    it('an operator judges cameras no faster than patrols.roundVerdictMinSeconds apart: 429 PATROL_ROUND.TOO_FAST (attack F8c)', async () => {
      t.config.patrols.roundVerdictMinSeconds = 5;
      try {
        const op2 = await t.userToken('operator');
        // Started ten days on, clear of the rounds above that still hold their cameras (patrols.roundReservationMinutes).
        const r = await t.app.get(RoundsService).start(asUser(op2, 'operator'), { size: 2, schoolId: seed.schoolA.id }, new Date(Date.now() + 10 * 86_400_000));
        expect(r.items).toHaveLength(2);
        const judge = async (i: number) =>
          t
            .http()
            .post(`/api/v1/patrol-rounds/${r.id}/cameras/${r.items[i].cameraId}/verdict`)
            .set(auth(op2.token))
            .send({ verdict: 'normal', snapshotRef: await picture(r.id, r.items[i].cameraId) });
        expect((await judge(0)).status).toBe(200);
        const fast = await judge(1);
        expect([fast.status, fast.body.error.code, fast.headers['retry-after']]).toEqual([429, 'PATROL_ROUND.TOO_FAST', expect.stringMatching(/^[1-5]$/)]);
        const [item] = (await t.db.query(`SELECT verdict FROM patrol_round_items WHERE round_id = $1 AND camera_id = $2`, [r.id, r.items[1].cameraId])).rows;
        expect(item.verdict).toBeNull();
        // Once the picture has been looked at long enough, the verdict is taken.
        const later = new Date(Date.now() + 6000);
        const done = await t.app
          .get(RoundsService)
          .verdict(asUser(op2, 'operator'), r.id, r.items[1].cameraId, { verdict: 'normal', snapshotRef: await picture(r.id, r.items[1].cameraId) }, later);
        expect(done.finishedAt).toBeTruthy();
      } finally {
        t.config.patrols.roundVerdictMinSeconds = 0;
      }
    });

    it('a verdict is made on a picture of that camera taken for the round: no URL, no other record, no "normal" without one', async () => {
      const op3 = await t.userToken('operator');
      // Started twenty days on, clear of the rounds above that still hold their cameras.
      const rounds = t.app.get(RoundsService);
      const r = await rounds.start(asUser(op3, 'operator'), { size: 2, schoolId: seed.schoolA.id }, new Date(Date.now() + 20 * 86_400_000));
      const other = await rounds.start(asUser(op3, 'operator'), { size: 1, schoolId: seed.schoolB.id }, new Date(Date.now() + 20 * 86_400_000));
      const [a, b] = r.items.map((i: { cameraId: string }) => i.cameraId);
      const judge = (cameraId: string, body: Record<string, unknown>) =>
        t.http().post(`/api/v1/patrol-rounds/${r.id}/cameras/${cameraId}/verdict`).set(auth(op3.token)).send(body);
      const fields = (res: { body: { error: { details: { fields: { field: string }[] } } } }) => res.body.error.details.fields.map((f) => f.field);
      // The attacker's request: any URL as the picture.
      const url = await judge(a, { verdict: 'normal', snapshotRef: 'https://evil.example/fake.jpg' });
      expect([url.status, url.body.error.code, fields(url)]).toEqual([400, 'VALIDATION_FAILED', ['snapshotRef']]);
      // Evidence records that are not this camera's picture for this round.
      for (const ref of [
        await picture(r.id, b), // another camera
        await picture(other.id, a), // another round
        await picture(r.id, a, 'manual'), // not taken for a verdict
        '00000000-0000-4000-8000-000000000000', // no such record
      ]) {
        const res = await judge(a, { verdict: 'normal', snapshotRef: ref });
        expect([ref, res.status, fields(res)]).toEqual([ref, 400, ['snapshotRef']]);
      }
      // No picture (the camera gave none): "normal" is refused, a verdict saying what is wrong is not.
      const blind = await judge(a, { verdict: 'normal' });
      expect([blind.status, blind.body.error.code]).toEqual([400, 'PATROL_ROUND.NORMAL_NEEDS_PICTURE']);
      const [item] = (await t.db.query(`SELECT verdict FROM patrol_round_items WHERE round_id = $1 AND camera_id = $2`, [r.id, a])).rows;
      expect(item.verdict).toBeNull();
      const offline = await judge(a, { verdict: 'offline' }).expect(200);
      expect(offline.body.items.find((i: { cameraId: string }) => i.cameraId === a)).toMatchObject({
        verdict: 'offline',
        snapshotRef: null,
        snapshotSource: null,
      });
      const shot = await picture(r.id, b);
      const seen = await judge(b, { verdict: 'normal', snapshotRef: shot }).expect(200);
      expect(seen.body.items.find((i: { cameraId: string }) => i.cameraId === b)).toMatchObject({ verdict: 'normal', snapshotRef: shot });
      // The other round is closed so it no longer holds its camera for the tests below.
      await t
        .http()
        .post(`/api/v1/patrol-rounds/${other.id}/cameras/${other.items[0].cameraId}/verdict`)
        .set(auth(op3.token))
        .send({ verdict: 'other' })
        .expect(200);
    });

    it('favours gate cameras in their school’s arrival window', async () => {
      const rounds = t.app.get(RoundsService);
      // A school Monday at least two days ahead of the real clock: rounds started above (at the real now) hold
      // their cameras for patrols.roundReservationMinutes, so a fixed date near today would find none free.
      const [school] = await t.app.get(RegistryService).schoolsIn({ ids: [seed.schoolA.id] });
      let nextMonday = '';
      for (let d = new Date(Date.now() + 2 * 86_400_000); !nextMonday; d = new Date(d.getTime() + 86_400_000)) {
        const day = d.toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
        if (new Date(`${day}T12:00:00+08:00`).getUTCDay() === 1 && schoolHours(school.timetable, school.calendar, day)) nextMonday = day;
      }
      const r = await rounds.start(asUser(operator, 'operator'), { size: 1 }, sh(nextMonday, '07:35'));
      expect(r.items[0]).toMatchObject({ cameraId: cams[0].id, favoured: true });
      const outside = await rounds.start(asUser(operator, 'operator'), { size: 1 }, sh(nextMonday, '10:00'));
      expect(outside.items[0].favoured).toBe(false);
    });
  });

  describe('compliance: the four targets', () => {
    const date = MONDAY;
    it('per school with reasons, snapshot idempotent per day, district view, trend and exports', async () => {
      const field = t.app.get(FieldService);
      // School A: devices online since before the day, its police-linked button relayed to the police that morning
      // (issue 11 §3: networked is measured — test/e2e/button-tests.e2e.spec.ts drives the real relay), a gate left open at 10:00.
      await t.db.query(`UPDATE cameras SET status = 'online' WHERE school_id = $1`, [seed.schoolA.id]);
      await t.db.query(`UPDATE alarm_devices SET status = 'online', last_test_at = now(), last_police_relay_at = $2 WHERE school_id = $1`, [
        seed.schoolA.id,
        sh(date, '09:00'),
      ]);
      await field.recordGateEvent(
        asUser(secA, 'school_security', seed.schoolA.id),
        { gate: '北门', state: 'open', at: sh(date, '10:00').toISOString() },
        sh(date, '12:00'),
      );
      const compliance = t.app.get(ComplianceService);
      const now = sh(date, '20:00');
      const rows = await compliance.compute(date, {}, now);
      const a = rows.find((r) => r.schoolId === seed.schoolA.id)!;
      const b = rows.find((r) => r.schoolId === seed.schoolB.id)!;
      expect(a).toMatchObject({ schoolDay: true, closedCampus: false, guards: true, networked: true, posts: false, allMet: false, failedCount: 2 });
      expect(a.reasons.closedCampus).toMatchObject({ gates: [{ gate: '北门', source: 'gate_event' }] });
      expect(a.reasons.posts).toMatchObject({ windows: [{ post: 'SA-HXG1', gate: '南大门', window: 'arrival', required: 2, present: 1 }] });
      expect(b).toMatchObject({ closedCampus: true, guards: false, networked: false, posts: true, failedCount: 2 });
      expect(b.reasons.guards).toMatchObject({ required: 2, actual: 1, short: 1 });
      expect(b.reasons.networked).toMatchObject({ offlineCameras: [{ id: cams[2].id }], noAlarmButton: true });

      // A camera that went offline during school hours breaks A's networked target for that day.
      await t.db.query(
        `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at) VALUES ($1, 'camera', $2, 'online', 'offline', $3), ($1, 'camera', $2, 'offline', 'online', $4)`,
        [cams[1].id, seed.schoolA.id, sh(date, '11:00'), sh(date, '11:20')],
      );
      const a2 = (await compliance.compute(date, { schoolId: seed.schoolA.id }, now))[0];
      expect(a2.networked).toBe(false);
      expect(a2.reasons.networked).toMatchObject({ offlineCameras: [{ id: cams[1].id }], offlineCameraCount: 1 });
      // The audit's online rate: the bounced camera (online now) counts its 20 minutes off, the other its whole window.
      const [schoolA] = await t.app.get(RegistryService).schoolsIn({ ids: [seed.schoolA.id] });
      const hours = schoolHours(schoolA.timetable, schoolA.calendar, date)!;
      const windowMs = Math.min(now.getTime(), hours.end.getTime()) - hours.start.getTime();
      const { results } = await t.app.get(AuditsService).evaluate([schoolA], ['camera_online_rate'], now);
      expect(results.get(seed.schoolA.id)!.camera_online_rate).toMatchObject({
        cameras: 2,
        notAlwaysOnline: 1,
        rate: Math.round(((2 * windowMs - 20 * 60_000) / (2 * windowMs)) * 10_000) / 10_000,
        worst: [{ id: cams[1].id, onlineRate: Math.round(((windowMs - 20 * 60_000) / windowMs) * 10_000) / 10_000 }],
      });
      // Offline only inside a declared maintenance window of that camera (10:50–11:30): not held against the school,
      // said as 维护中 in the reasons, the export and the audit; its maintenance time is out of the rate.
      const mw = (
        await t.db.query(
          `INSERT INTO maintenance_windows (school_id, device_id, device_kind, starts_at, ends_at, reason) VALUES ($1, $2, 'camera', $3, $4, '更换摄像机') RETURNING id`,
          [seed.schoolA.id, cams[1].id, sh(date, '10:50'), sh(date, '11:30')],
        )
      ).rows[0].id as string;
      const a3 = (await compliance.compute(date, { schoolId: seed.schoolA.id }, now))[0];
      expect(a3.networked).toBe(true);
      expect(a3.reasons.networked).toBeUndefined();
      expect(a3.reasons.maintenance).toEqual({ cameras: 1, buttons: 0 });
      expect(exportRows([a3]).rows[0][9]).toContain('维护中（不计）：摄像机 1 路');
      const inMw = (await t.app.get(AuditsService).evaluate([schoolA], ['camera_online_rate'], now)).results.get(seed.schoolA.id)!.camera_online_rate;
      expect(inMw).toMatchObject({ cameras: 2, notAlwaysOnline: 0, inMaintenance: 1, rate: 1, worst: [] });
      // A window covering only part of the outage excuses nothing: the rest still counts.
      await t.db.query(`UPDATE maintenance_windows SET ends_at = $2 WHERE id = $1`, [mw, sh(date, '11:10')]);
      const a4 = (await compliance.compute(date, { schoolId: seed.schoolA.id }, now))[0];
      expect(a4.networked).toBe(false);
      expect(a4.reasons.maintenance).toBeUndefined();
      await t.db.query(`DELETE FROM maintenance_windows WHERE id = $1`, [mw]);

      await compliance.snapshot(date, now);
      await compliance.snapshot(date, now);
      const { rows: snap } = await t.db.query(`SELECT count(*)::int AS n FROM compliance_daily WHERE date = $1`, [date]);
      expect(snap[0].n).toBe(2);

      const auditor = (await t.userToken('auditor')).token;
      const district = (await t.http().get('/api/v1/compliance/district').query({ date }).set(auth(auditor)).expect(200)).body;
      expect(district.shares).toEqual({ closedCampus: 0.5, guards: 0.5, networked: 0, posts: 0.5, allMet: 0 });
      expect(district.worst.items[0].failedCount).toBeGreaterThanOrEqual(district.worst.items[1].failedCount);
      // Per zone too (issue 13: the four targets for the district, zones and schools): both schools are in the one zone.
      expect(district.zones).toEqual([{ zoneId: seed.zone.id, schools: 2, shares: district.shares }]);
      const perSchool = (await t.http().get('/api/v1/compliance/schools').query({ date, zoneId: seed.zone.id }).set(auth(auditor)).expect(200)).body;
      expect(perSchool.total).toBe(2);
      const trend = (await t.http().get('/api/v1/compliance/trend').query({ from: '2026-03-01', to: '2026-03-03' }).set(auth(auditor)).expect(200)).body;
      expect(trend.days).toEqual([{ date, schools: 2, shares: district.shares }]);

      const csv = await t
        .http()
        .get('/api/v1/compliance/export')
        .query({ format: 'csv', from: date, to: date, groupId: seed.group.id })
        .set(auth(auditor))
        .buffer(true)
        .parse(binary)
        .expect(200);
      expect(csv.headers['content-type']).toMatch(/text\/csv/);
      const csvTable = await readTable(csv.body);
      expect(csvTable.header).toEqual([
        '日期',
        '学校代码',
        '学校名称',
        '上课日',
        '校园封闭化管理',
        '专职保安员配备',
        '视频监控及一键报警联网',
        '护学岗',
        '四个100%',
        '未达标原因',
      ]);
      expect(csvTable.rows.map((r) => r.cells.slice(0, 9))).toEqual([
        [date, 'SA', '甲小学', '是', '未达标', '达标', '未达标', '未达标', '未达标'],
        [date, 'SB', '乙小学', '是', '达标', '未达标', '未达标', '达标', '未达标'],
      ]);
      expect(csvTable.rows[1].cells[9]).toContain('保安员 1/2，缺 1 人');
      const xlsx = await t
        .http()
        .get('/api/v1/compliance/export')
        .query({ format: 'xlsx', from: date, to: date })
        .set(auth(auditor))
        .buffer(true)
        .parse(binary)
        .expect(200);
      const xTable = await readTable(xlsx.body);
      expect(xTable.format).toBe('xlsx');
      expect(xTable.rows.map((r) => r.cells.slice(0, 9))).toEqual(csvTable.rows.map((r) => r.cells.slice(0, 9)));
      expect(xTable.rows[0].cells[9]).toContain('校门开启：北门');

      await t.http().get('/api/v1/compliance/export').query({ format: 'pdf' }).set(auth(auditor)).expect(400);
      await t.http().get('/api/v1/compliance/district').query({ date: '2026-13-01' }).set(auth(auditor)).expect(400);
      await t.http().get('/api/v1/compliance/district').set(auth(secA.token)).expect(403);
      // School security read their own school's day with its reasons (the guard phone), whatever filter they send; never another school's.
      const own = (await t.http().get('/api/v1/compliance/schools').query({ date, zoneId: seed.zone.id }).set(auth(secA.token)).expect(200)).body;
      expect(own.total).toBe(1);
      expect(own.items[0]).toMatchObject({ schoolId: seed.schoolA.id, closedCampus: false, guards: true, allMet: false });
      expect(own.items[0].reasons.closedCampus.gates[0].gate).toBe('北门');
      await t.http().get('/api/v1/compliance/schools').query({ date, schoolId: seed.schoolB.id }).set(auth(secA.token)).expect(403);
      await t.http().get('/api/v1/compliance/export').expect(401);
      await t.http().post('/api/v1/compliance/snapshots').set(auth(auditor)).send({}).expect(403);
      await t.http().post('/api/v1/compliance/snapshots').set(auth(admin)).send({ date: 'today' }).expect(400);
    });

    it("loads a school day's facts for audits and compliance in one batch: as many queries for two schools as for one", async () => {
      const facts = t.app.get(DayFactsService);
      const registry = t.app.get(RegistryService);
      const db = t.app.get(DataSource);
      const [schoolA, schoolB] = await registry.schoolsIn({ ids: [seed.schoolA.id, seed.schoolB.id] });
      const now = sh(MONDAY, '20:00');
      // Only the loader's own queries count: background work on the same DataSource (test-mode
      // refresh, outbox pollers, retention…) runs outside this async context.
      const mine = new AsyncLocalStorage<true>();
      const query = db.query.bind(db);
      let n = 0;
      const spy = jest.spyOn(db, 'query').mockImplementation(((...args: Parameters<DataSource['query']>) => {
        if (mine.getStore()) n++;
        return query(...args);
      }) as DataSource['query']);
      try {
        const one = await mine.run(true, () => facts.load([schoolA], MONDAY, now, DAY_FACTS, { now }));
        const queriesForOne = n;
        n = 0;
        const two = await mine.run(true, () => facts.load([schoolA, schoolB], MONDAY, now, DAY_FACTS, { now }));
        expect(queriesForOne).toBeGreaterThan(0);
        expect(n).toBe(queriesForOne);
        expect(two.get(seed.schoolA.id)).toEqual(one.get(seed.schoolA.id));
        // Every fact asked for is there, empty rather than missing for a school without any.
        expect(two.get(seed.schoolB.id)).toMatchObject({
          buttons: [],
          overdueFaults: [],
          guards: { required: 2, actual: 1 },
          posts: [],
          gates: [],
          guardPatrols: 0,
          online: { devices: { camera: 1, alarm_device: 0 } },
        });
        expect(two.get(seed.schoolA.id)).toMatchObject({
          guards: { required: 2, actual: 2 },
          posts: [{ postCode: 'SA-HXG1' }, { postCode: 'SA-HXG1' }],
          gates: [{ gate: '北门' }],
          online: { devices: { camera: 2, alarm_device: 1 } },
        });
        // Only what is asked for is loaded.
        n = 0;
        expect(await mine.run(true, () => facts.load([schoolA], MONDAY, now, ['guards'], { now }))).toEqual(
          new Map([[seed.schoolA.id, { guards: { required: 2, actual: 2, declared: 0, rule: 'gongzhi2015' } }]]),
        );
        expect(n).toBe(1);
      } finally {
        spy.mockRestore();
      }
    });

    it('guards school staff enter or import are declared, not counted, until the bureau verifies them (attack F8e)', async () => {
      const facts = t.app.get(DayFactsService);
      const [schoolB] = await t.app.get(RegistryService).schoolsIn({ ids: [seed.schoolB.id] });
      const now = sh(MONDAY, '20:00');
      const guardsOfB = async () => (await facts.load([schoolB], MONDAY, now, ['guards'], { now })).get(seed.schoolB.id)!.guards;
      expect(await guardsOfB()).toMatchObject({ required: 2, actual: 1, declared: 0 });
      // School security add a full-time guard (and import another): declared only, the target still short.
      const g = (
        await t.http().post('/api/v1/guards').set(auth(secB.token)).send({ schoolId: seed.schoolB.id, name: '钱七', licenceNo: 'CQ-T-2001' }).expect(201)
      ).body;
      expect(g).toMatchObject({ fullTime: true, verifiedAt: null, verifiedByName: null });
      const csv = Buffer.from('licenceNo,schoolCode,name,fullTime\nCQ-T-2002,' + seed.schoolB.code + ',孙八,是\n', 'utf8');
      const imported = await t.http().post('/api/v1/import/guards').set(auth(secB.token)).attach('file', csv, 'guards.csv');
      expect([imported.status, imported.body.created]).toEqual([200, 1]);
      expect(await guardsOfB()).toMatchObject({ actual: 1, declared: 2 });
      // A client cannot declare itself verified (field-level 400), school staff cannot verify (403).
      const selfVerified = await t.http().patch(`/api/v1/guards/${g.id}`).set(auth(secB.token)).send({ verifiedAt: new Date().toISOString() }).expect(400);
      expect(selfVerified.body.error.code).toBe('VALIDATION_FAILED');
      await t.http().post(`/api/v1/guards/${g.id}/verify`).set(auth(secB.token)).expect(403);
      await t.http().post('/api/v1/guards/00000000-0000-4000-8000-000000000000/verify').set(auth(operator.token)).expect(404);
      const verified = (await t.http().post(`/api/v1/guards/${g.id}/verify`).set(auth(operator.token)).expect(200)).body;
      expect(verified).toMatchObject({ id: g.id, verifiedAt: expect.any(String), verifiedByName: operator.username });
      expect(await guardsOfB()).toMatchObject({ actual: 2, declared: 1 });
      // Declared guards are listed for the bureau to review.
      const pending = (await t.http().get('/api/v1/guards').query({ schoolId: seed.schoolB.id, verified: false }).set(auth(operator.token)).expect(200)).body;
      expect(pending.items.map((x: { name: string }) => x.name)).toEqual(['孙八']);
      // A phone number is the school's own business; a new name makes the guard declared again.
      await t.http().patch(`/api/v1/guards/${g.id}`).set(auth(secB.token)).send({ phone: '13800000000' }).expect(200);
      expect(await guardsOfB()).toMatchObject({ actual: 2 });
      const renamed = (await t.http().patch(`/api/v1/guards/${g.id}`).set(auth(secB.token)).send({ name: '钱七七' }).expect(200)).body;
      expect(renamed.verifiedAt).toBeNull();
      expect(await guardsOfB()).toMatchObject({ actual: 1, declared: 2 });
      // What the bureau enters itself is verified by that entry.
      const byBureau = (
        await t.http().post('/api/v1/guards').set(auth(admin)).send({ schoolId: seed.schoolB.id, name: '周九', licenceNo: 'CQ-T-2003' }).expect(201)
      ).body;
      expect(byBureau.verifiedAt).toBeTruthy();
    });
  });
});

const binary = ((res: NodeJS.ReadableStream, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}) as never;

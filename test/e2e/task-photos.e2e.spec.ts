import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jpegJs from 'jpeg-js';
import { DataSource } from 'typeorm';
import { readTable } from '../../src/infra/tabular/tabular';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { EvidenceService } from '../../src/modules/video/evidence.service';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { jpeg, withExif } from '../support/photos';

/**
 * Rectification tasks closed with photo evidence (issue 13): the school photographs the fix on the
 * guard's phone (POST /rectification-tasks/:id/photos: the alarm photos' pipeline — JPEG only,
 * re-encoded without EXIF/GPS), then closes the task naming 1–6 of those photos; the district reads
 * them (GET /video/evidence/:id), another school never does; a task sent back keeps the photos of
 * the closing it did not accept.
 */
describe('rectification task photos', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let staffA: { token: string; userId: string };
  let staffB: string;
  let supervisor: string;
  let auditor: string;
  let taskA: string;
  let otherTaskA: string;
  let taskB: string;
  const evidenceDir = mkdtempSync(join(tmpdir(), 'task-photos-'));

  /** A problem found at a school: its open task's id. */
  const openTask = async (schoolId: string, label: string): Promise<string> => {
    const findings = t.app.get(FindingsService);
    const now = new Date();
    const [stored] = await t.app
      .get(DataSource)
      .transaction((m) =>
        findings.record(
          m,
          [{ source: 'audit', check: 'gate_open', schoolId, subjectKind: 'gate', subjectLabel: label, message: `${label} 上课时段开启`, at: now }],
          now,
        ),
      );
    return stored.taskId!;
  };
  const upload = (token: string, task: string, file: Buffer | null, key?: string) => {
    const req = t.http().post(`/api/v1/rectification-tasks/${task}/photos`).set(auth(token));
    if (key) req.set('Idempotency-Key', key);
    return file ? req.attach('file', file, { filename: 'fix.jpg', contentType: 'image/jpeg' }) : req.send({});
  };
  const close = (token: string, task: string, body: object) => t.http().post(`/api/v1/rectification-tasks/${task}/close`).set(auth(token)).send(body);
  const fields = (res: { body: { error: { details: { fields: { field: string }[] } } } }) => res.body.error.details.fields.map((f) => f.field);

  beforeAll(async () => {
    t = await startApp({
      video: { evidenceDir, photosPerTask: 3 },
      patrols: { postCheckEveryMs: 0 },
      compliance: { snapshotEnabled: false },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    staffA = await t.userToken('school_security', seed.schoolA.id);
    staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
    supervisor = (await t.userToken('supervisor')).token;
    auditor = (await t.userToken('auditor')).token;
    taskA = await openTask(seed.schoolA.id, '南门');
    otherTaskA = await openTask(seed.schoolA.id, '北门');
    taskB = await openTask(seed.schoolB.id, '东门');
  });
  afterAll(async () => {
    await t.close();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  it('the school uploads JPEG photos of the fix, stripped of EXIF; the district and auditors read them, other schools never', async () => {
    // Not a JPEG, no file: refused, nothing stored.
    expect((await upload(staffA.token, taskA, Buffer.from('GIF89a not a jpeg')).expect(415)).body.error.code).toBe('EVIDENCE.PHOTO_NOT_JPEG');
    expect((await upload(staffA.token, taskA, null).expect(400)).body.error.code).toBe('EVIDENCE.PHOTO_MISSING');
    // Another school's task answers exactly like one that does not exist; the auditor only reads.
    const theirs = await upload(staffB, taskA, jpeg(64, 48)).expect(404);
    const none = await upload(staffB, randomUUID(), jpeg(64, 48)).expect(404);
    expect([theirs.body.error.code, none.body.error.code]).toEqual(['RECTIFICATION_TASK.NOT_FOUND', 'RECTIFICATION_TASK.NOT_FOUND']);
    expect((await upload(auditor, taskA, jpeg(64, 48)).expect(403)).body.error.code).toBe('AUTH.ROLE_FORBIDDEN');
    await t.http().post(`/api/v1/rectification-tasks/${taskA}/photos`).attach('file', jpeg(64, 48), 'x.jpg').expect(401);
    // Not a task id at all: a 400 on `id` before the upload is read (not a 415 about JSON).
    for (const bad of ['not-a-uuid', '123']) expect(fields(await upload(staffA.token, bad, jpeg(64, 48)).expect(400))).toEqual(['id']);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM video_evidence`)).rows[0].n).toBe(0);

    // Stored re-encoded: its true size, no EXIF (GPS) and nothing after the picture's end.
    const sent = Buffer.concat([withExif(jpeg(640, 480)), Buffer.from('trailing')]);
    const first = await upload(staffA.token, taskA, sent, 'fix-1').expect(201);
    expect(first.body).toMatchObject({
      created: true,
      cameraId: null,
      schoolId: seed.schoolA.id,
      purpose: 'rectification.photo',
      refId: taskA,
      width: 640,
      height: 480,
      source: 'upload',
    });
    // A retry (same key, same bytes) answers the first; the same key with another photo is refused.
    expect((await upload(staffA.token, taskA, sent, 'fix-1').expect(200)).body).toMatchObject({ id: first.body.id, created: false });
    expect((await upload(staffA.token, taskA, jpeg(640, 480, 9), 'fix-1').expect(409)).body.error).toMatchObject({
      code: 'EVIDENCE.PHOTO_KEY_REUSED',
      details: { evidenceId: first.body.id },
    });
    const audit = await t.db.query(
      `SELECT actor_id, school_id FROM audit_log WHERE action = 'attach_photo' AND entity = 'rectification_task' AND entity_id = $1`,
      [taskA],
    );
    expect(audit.rows).toEqual([{ actor_id: staffA.userId, school_id: seed.schoolA.id }]);

    // Read back as image/jpeg by the school, the supervisor and the auditor; another school: as missing.
    for (const token of [staffA.token, supervisor, auditor]) {
      const pic = await t.http().get(`/api/v1/video/evidence/${first.body.id}`).set(auth(token)).buffer(true).expect(200);
      expect(pic.headers).toMatchObject({ 'content-type': 'image/jpeg', 'x-content-type-options': 'nosniff', 'x-evidence-source': 'upload' });
      const stored = pic.body as Buffer;
      expect([stored.includes('Exif'), stored.includes('GPSLatitude'), stored.includes('trailing')]).toEqual([false, false, false]);
      expect(jpegJs.decode(stored)).toMatchObject({ width: 640, height: 480 });
    }
    expect((await t.http().get(`/api/v1/video/evidence/${first.body.id}`).set(auth(staffB)).expect(404)).body.error.code).toBe('EVIDENCE.NOT_FOUND');
  });

  it('the task list takes one task by id (a link to it); another school sees nothing of it', async () => {
    const one = await t.http().get('/api/v1/rectification-tasks').query({ id: otherTaskA }).set(auth(supervisor)).expect(200);
    expect([one.body.total, one.body.items.map((x: { id: string }) => x.id)]).toEqual([1, [otherTaskA]]);
    expect((await t.http().get('/api/v1/rectification-tasks').query({ id: otherTaskA }).set(auth(staffB)).expect(200)).body.total).toBe(0);
    expect(fields(await t.http().get('/api/v1/rectification-tasks').query({ id: 'x' }).set(auth(supervisor)).expect(400))).toEqual(['id']);
  });

  it('a closing names 1–6 photos of this very task (400 otherwise); a task sent back keeps them, the next closing brings its own', async () => {
    const [mine] = (await t.db.query(`SELECT id FROM video_evidence WHERE ref_id = $1`, [taskA])).rows as { id: string }[];
    // No photo: a field-level 400, nothing closed.
    for (const body of [{ note: '已关门' }, { note: '已关门', photoIds: [] }, { note: '已关门', photoIds: ['photo:7'] }])
      expect(fields(await close(staffA.token, taskA, body).expect(400))).toEqual(['photoIds']);
    const seven = Array.from({ length: 7 }, () => randomUUID());
    expect(fields(await close(staffA.token, taskA, { note: '已关门', photoIds: seven }).expect(400))).toEqual(['photoIds']);
    // Photos that are not this task's: another task's of the same school, an alarm's, a camera's picture, an unknown id.
    const other = (await upload(staffA.token, otherTaskA, jpeg(320, 240)).expect(201)).body.id as string;
    const [{ id: cameraPicture }] = (
      await t.db.query(
        `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, source)
         VALUES (NULL, $1, to_char(now(), 'YYYY-MM-DD') || '/' || gen_random_uuid() || '.jpg', repeat('0', 64), 1, 640, 360, 'manual', $2, now(), 'stream') RETURNING id`,
        [seed.schoolA.id, taskA],
      )
    ).rows;
    for (const foreign of [other, cameraPicture, randomUUID()]) {
      const res = await close(staffA.token, taskA, { note: '已关门', photoIds: [mine.id, foreign] }).expect(400);
      expect(res.body.error.details.fields).toEqual([{ field: 'photoIds', reason: expect.stringContaining(foreign) }]);
    }
    // Another school's staff cannot close it with its photo either (as missing).
    await close(staffB, taskA, { note: '已关门', photoIds: [mine.id] }).expect(404);
    expect((await t.db.query(`SELECT status FROM rectification_tasks WHERE id = $1`, [taskA])).rows[0].status).toBe('open');

    const closed = (await close(staffA.token, taskA, { note: '已加装闭门器', photoIds: [mine.id.toUpperCase()] }).expect(200)).body;
    expect(closed).toMatchObject({ status: 'closed', closeNote: '已加装闭门器', closePhotoIds: [mine.id], closedBy: staffA.userId });
    expect((await t.http().get(`/api/v1/rectification-tasks/${taskA}`).set(auth(auditor)).expect(200)).body.closePhotoIds).toEqual([mine.id]);
    // A closed task takes no more photos.
    expect((await upload(staffA.token, taskA, jpeg(64, 48)).expect(409)).body.error.code).toBe('RECTIFICATION_TASK.ALREADY_CLOSED');

    // The export counts the closing's photos (an open task shows none).
    const csv = await t
      .http()
      .get('/api/v1/rectification-tasks/export')
      .query({ format: 'csv', schoolId: seed.schoolA.id })
      .set(auth(auditor))
      .buffer(true)
      .expect(200);
    const table = await readTable(Buffer.isBuffer(csv.body) ? csv.body : Buffer.from(csv.text, 'utf8'));
    const col = (id: string, name: string) => table.rows.find((r) => r.cells[0] === id)!.cells[table.header.indexOf(name)];
    expect([String(col(taskA, '整改照片')), col(otherTaskA, '整改照片')]).toEqual(['1', '']);

    // Sent back: open again, the photos of the closing not accepted stay with it for the school and the supervisor.
    const back = (await t.http().post(`/api/v1/rectification-tasks/${taskA}/reopen`).set(auth(supervisor)).send({ reason: '照片看不到闭门器' }).expect(200))
      .body;
    expect(back).toMatchObject({ status: 'open', closePhotoIds: [mine.id], closeNote: '已加装闭门器' });
    const listed = (await t.http().get('/api/v1/rectification-tasks').query({ status: 'open' }).set(auth(staffA.token)).expect(200)).body.items;
    expect(listed.find((x: { id: string }) => x.id === taskA).closePhotoIds).toEqual([mine.id]);
    await t.http().get(`/api/v1/video/evidence/${mine.id}`).set(auth(staffA.token)).expect(200);

    // The rejected closing's photo does not close it again: the new closing brings photos taken since.
    const stale = await close(staffA.token, taskA, { note: '已重新调整', photoIds: [mine.id] }).expect(400);
    expect(stale.body.error.details.fields).toEqual([{ field: 'photoIds', reason: expect.stringContaining('须上传退回后的新照片') }]);
    expect(stale.body.error.details.fields[0].reason).toContain(mine.id);
    const round = () => t.http().get(`/api/v1/rectification-tasks/${taskA}/photos`).set(auth(staffA.token)).expect(200);
    expect((await round()).body).toMatchObject({ items: [], limit: 3 }); // the earlier round's photo is not offered

    // video.photosPerTask (3 here) bounds this round's photos (the earlier round's one does not count); the supervisor
    // may take them too. A photo withdrawn by its sender no longer counts; another's, or an earlier round's, stays.
    const second = (await upload(staffA.token, taskA, jpeg(320, 240, 1)).expect(201)).body.id as string;
    const third = (await upload(supervisor, taskA, jpeg(320, 240, 2)).expect(201)).body.id as string;
    const wrong = (await upload(staffA.token, taskA, jpeg(320, 240, 3)).expect(201)).body.id as string;
    expect((await upload(staffA.token, taskA, jpeg(320, 240, 4)).expect(409)).body.error).toMatchObject({
      code: 'EVIDENCE.PHOTO_LIMIT',
      details: { limit: 3 },
    });
    expect((await round()).body.items.map((p: { id: string }) => p.id)).toEqual([second, third, wrong]);
    const removePhoto = (token: string, id: string) => t.http().delete(`/api/v1/rectification-tasks/${taskA}/photos/${id}`).set(auth(token));
    for (const id of [third, mine.id, other]) expect((await removePhoto(staffA.token, id).expect(404)).body.error.code).toBe('EVIDENCE.NOT_FOUND');
    await removePhoto(staffB, wrong).expect(404);
    await removePhoto(staffA.token, wrong).expect(204);
    expect((await round()).body.items.map((p: { id: string }) => p.id)).toEqual([second, third]);
    const removed = await t.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'remove_photo' AND entity_id = $1`, [taskA]);
    expect(removed.rows[0].n).toBe(1);
    const fourth = (await upload(staffA.token, taskA, jpeg(320, 240, 5)).expect(201)).body.id as string;
    expect(fields(await close(staffA.token, taskA, { note: '已重新调整', photoIds: [second, wrong] }).expect(400))).toEqual(['photoIds']);
    await removePhoto(staffA.token, fourth).expect(204);
    // A blank note is refused on its field (as the reopen reason is).
    for (const note of ['   ', '  \n ']) expect(fields(await close(staffA.token, taskA, { note, photoIds: [second, third] }).expect(400))).toEqual(['note']);
    const again = (await close(staffA.token, taskA, { note: '闭门器已调整，照片为关闭状态', photoIds: [second, third] }).expect(200)).body;
    expect(again.closePhotoIds.sort()).toEqual([second, third].sort());
    const closings = await t.db.query(
      `SELECT after->'closePhotoIds' AS ids FROM audit_log WHERE entity = 'rectification_task' AND entity_id = $1 AND action = 'close' ORDER BY at`,
      [taskA],
    );
    expect(closings.rows.map((r) => r.ids.length)).toEqual([1, 2]); // every closing's photos stay in the audit log
    // Closed: nothing is withdrawn any more.
    expect((await removePhoto(staffA.token, second).expect(409)).body.error.code).toBe('RECTIFICATION_TASK.ALREADY_CLOSED');

    // Kept as long as the task: a purge 100 days on (pictures without an owner go after 30) keeps every one of them.
    await t.app.get(EvidenceService).purge(new Date(Date.now() + 100 * 86_400_000));
    const kept = await t.db.query(`SELECT count(*)::int AS n FROM video_evidence WHERE purpose = 'rectification.photo' AND ref_id = $1`, [taskA]);
    expect(kept.rows[0].n).toBe(3); // mine, second, third (the withdrawn ones are gone)
    expect((await t.db.query(`SELECT count(*)::int AS n FROM video_evidence WHERE id = $1`, [cameraPicture])).rows[0].n).toBe(0);
    await t.http().get(`/api/v1/video/evidence/${mine.id}`).set(auth(supervisor)).expect(200);

    // School B's task is untouched by all of this, and its staff close it with their own photo.
    const theirs = (await upload(staffB, taskB, jpeg(320, 240)).expect(201)).body.id as string;
    expect(fields(await close(staffB, taskB, { note: '已关门', photoIds: [other] }).expect(400))).toEqual(['photoIds']);
    await close(staffB, taskB, { note: '已关门', photoIds: [theirs] }).expect(200);
  });
});

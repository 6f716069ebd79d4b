import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as iconv from 'iconv-lite';
import * as jpegJs from 'jpeg-js';
import { QueueService } from '../../src/infra/queue/queue.service';
import { JobName, JOBS } from '../../src/infra/queue/queue.catalogue';
import { AlarmsController } from '../../src/modules/alarms/alarms.controller';
import { RateLimiter } from '../../src/infra/http/rate-limit';
import { AlarmsJobs } from '../../src/modules/alarms/alarms.jobs';
import { IncidentLifecycleService } from '../../src/modules/alarms/incident-lifecycle.service';
import { EvidenceService } from '../../src/modules/video/evidence.service';
import { createButton, TestButton } from '../support/devices';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';

const SECRET = 'test-police-hmac-secret-0123456789';

describe('alarms over HTTP', () => {
  let t: TestApp;
  let police: PoliceReceiver;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let op1: { token: string; username: string; userId: string };
  let op2: { token: string; username: string };
  let staffA: string;
  let staffB: string;
  let auditor: string;
  let button: TestButton;
  let gateCam: { id: string };
  let sideCam: { id: string };
  const evidenceDir = mkdtempSync(join(tmpdir(), 'alarm-photos-'));

  beforeAll(async () => {
    police = await startPoliceReceiver(SECRET);
    t = await startApp({
      alarms: {
        // P1 (buttons) escalate slowly so ordinary tests never see it; P2 fast for the escalation test.
        escalationSeconds: { P1: [600, 1200], P2: [0.3, 0.6], P3: [600], P4: [600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 50, backoffMs: 50, lateAfterSeconds: 0.5 },
        outbox: { pollMs: 100, redispatchAfterMs: 2000, batchSize: 100 },
      },
      video: { evidenceDir, photoMaxBytes: 60000, photosPerIncident: 2 },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op1 = await t.userToken('operator');
    op2 = await t.userToken('operator');
    staffA = (await t.userToken('school_security', seed.schoolA.id)).token;
    staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
    auditor = (await t.userToken('auditor')).token;
    const cam = (deviceNo: string, name: string, areaKind: string) =>
      t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({
          schoolId: seed.schoolA.id,
          deviceId: `500113000013200000${deviceNo}`,
          channelId: `500113000013100000${deviceNo}`,
          name,
          areaKind,
          streamUrl: `rtsp://nvr/${deviceNo}`,
        })
        .expect(201)
        .then((r) => r.body);
    gateCam = await cam('01', '南大门', 'main_gate');
    sideCam = await cam('02', '门卫室', 'gatehouse');
    await cam('03', '操场', 'playground');
    button = await createButton(t, admin, {
      schoolId: seed.schoolA.id,
      code: 'BTN-A-1',
      location: '南门岗亭',
      policeLinked: true,
      linkedCameraIds: [sideCam.id],
    });
  });
  afterAll(async () => {
    await t.close();
    await police.close();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  const press = (eventId: string, extra: object = {}) =>
    t
      .http()
      .post('/api/v1/incidents/press')
      .set('Authorization', button.authorization)
      .send({ eventId, ...extra });

  it('commits a button press with its linked cameras and console event before answering', async () => {
    const res = await press('evt-1').expect(201);
    expect(res.body).toMatchObject({
      status: 'raised',
      priority: 'P1',
      source: 'device',
      schoolName: '甲小学',
      location: '南门岗亭',
      pressCount: 1,
      created: true,
    });
    // linked camera first, then the cameras in the same area kind; the playground camera is not there
    expect(res.body.cameras.map((c: { id: string }) => c.id)).toEqual([sideCam.id, gateCam.id]);
    expect(res.body.cameras[1]).toMatchObject({ name: '南大门', streamUrl: 'rtsp://nvr/01' });
    // Committed before the 2xx: the rows are visible to another connection right now.
    const { rows } = await t.db.query(`SELECT type, payload FROM console_events WHERE payload->>'incidentId' = $1`, [res.body.id]);
    expect(rows).toEqual([expect.objectContaining({ type: 'incident.raised' })]);
    expect(rows[0].payload).toMatchObject({ schoolName: '甲小学', cameras: expect.any(Array), status: 'raised' });
    // The console payload (built before the one-statement insert) says what the committed row says.
    const {
      id,
      created: _c,
      folded: _f,
      dispatchedAt: _d,
      onSceneAt: _o,
      resolvedAt: _r,
      resolvedBy: _rb,
      cancelledAt: _ca,
      cancelReason: _cr,
      shownAt: _s,
      createdAt: _cd,
      updatedAt: _u,
      ...summary
    } = res.body;
    expect(rows[0].payload).toEqual({ ...summary, incidentId: id });
    const tl = await t.db.query(`SELECT action FROM incident_timeline WHERE incident_id = $1`, [res.body.id]);
    expect(tl.rows.map((r) => r.action)).toEqual(['raised']);
    // Audit entry, press row and outbox jobs committed with it.
    const audit = await t.db.query(`SELECT action, actor_type, after FROM audit_log WHERE entity = 'incident' AND entity_id = $1`, [res.body.id]);
    expect(audit.rows).toEqual([{ action: 'raise', actor_type: 'device', after: { type: 'other', priority: 'P1', source: 'device', drill: false } }]);
    const presses = await t.db.query(`SELECT device_event_id FROM incident_presses WHERE incident_id = $1`, [res.body.id]);
    expect(presses.rows).toEqual([{ device_event_id: 'evt-1' }]);
    const outbox = await t.db.query(`SELECT job_name FROM alarm_outbox WHERE payload->>'incidentId' = $1 ORDER BY job_name`, [res.body.id]);
    expect(outbox.rows.map((r) => r.job_name)).toEqual(expect.arrayContaining(['alarms.escalate', 'alarms.police-relay']));
  });

  it('answers a retried event with the same incident, and folds new presses into the open one', async () => {
    const first = await press('evt-1').expect(200);
    expect(first.body).toMatchObject({ created: false, folded: false, pressCount: 1 });
    const again = await press('evt-2').expect(200);
    expect(again.body).toMatchObject({ id: first.body.id, folded: true, pressCount: 2 });
    await press('evt-2').expect(200);
    // Staff raising at the button's spot make an incident of their own (no fold, no conflict).
    const manual = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'other', location: '南门', alarmDeviceId: button.id })
      .expect(201);
    expect(manual.body.cameras.map((c: { id: string }) => c.id)).toEqual([sideCam.id, gateCam.id]);
    await t.http().post(`/api/v1/incidents/${manual.body.id}/cancel`).set(auth(staffA)).send({ reason: '重复' }).expect(200);
    const { rows } = await t.db.query(
      `SELECT count(*)::int AS n, max(press_count) AS presses FROM incidents WHERE alarm_device_id = $1 AND source = 'device'`,
      [button.id],
    );
    expect(rows[0]).toEqual({ n: 1, presses: 2 });
  });

  it('takes a staff or operator alarm once per client event id: a retry is 200 with the same incident, another body 409', async () => {
    const body = { schoolId: seed.schoolA.id, type: 'intrusion', location: '北门', note: '有人翻墙' };
    const raise = (token: string, extra: object = {}, key?: string) => {
      const req = t.http().post('/api/v1/incidents').set(auth(token));
      if (key !== undefined) req.set('Idempotency-Key', key);
      return req.send({ ...body, ...extra });
    };
    // Header form: the first answer is 201, each retry 200 with the same incident — also when they race.
    const first = await raise(staffA, {}, 'guard-phone-0001').expect(201);
    expect(first.body).toMatchObject({ created: true, priority: 'P1', source: 'staff' });
    const retries = await Promise.all([1, 2, 3, 4].map(() => raise(staffA, {}, 'guard-phone-0001')));
    expect(retries.map((r) => [r.status, r.body.id, r.body.created])).toEqual(Array(4).fill([200, first.body.id, false]));
    // Body form, racing from the first request on: exactly one incident.
    const racing = await Promise.all([1, 2, 3].map(() => raise(op1.token, { clientEventId: 'op-console:42' })));
    expect(racing.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(racing.map((r) => r.body.id)).size).toBe(1);
    // Header and body naming the same id agree; naming different ones is a field-level 400.
    await raise(op1.token, { clientEventId: 'op-console:42' }, 'op-console:42').expect(200);
    const differ = await raise(op1.token, { clientEventId: 'op-console:42' }, 'op-console:43').expect(400);
    expect(differ.body.error.details.fields).toEqual([{ field: 'clientEventId', reason: expect.any(String) }]);
    const badKey = await raise(op1.token, {}, 'has spaces').expect(400);
    expect(badKey.body.error.details.fields).toEqual([{ field: 'Idempotency-Key', reason: expect.any(String) }]);
    // The same id with another alarm is refused with a code of its own, naming the incident it belongs to.
    const reused = await raise(staffA, { location: '南门' }, 'guard-phone-0001').expect(409);
    expect(reused.body.error).toMatchObject({
      code: 'INCIDENT.CLIENT_EVENT_REUSED',
      details: { clientEventId: 'guard-phone-0001', incidentId: first.body.id },
    });
    // Unique per user: another user's same id is a new alarm of its own.
    const otherUser = await raise(op2.token, {}, 'guard-phone-0001').expect(201);
    expect(otherUser.body.id).not.toBe(first.body.id);
    // One incident, one set of jobs (two escalation levels of P1, police relay and its watch) per client event.
    const outbox = await t.db.query(
      `SELECT job_name, count(*)::int AS n FROM alarm_outbox WHERE payload->>'incidentId' = $1 GROUP BY job_name ORDER BY job_name`,
      [first.body.id],
    );
    expect(outbox.rows).toEqual([
      { job_name: 'alarms.escalate', n: 2 },
      { job_name: 'alarms.police-relay', n: 1 },
      { job_name: 'alarms.relay-watch', n: 1 },
    ]);
    const timeline = await t.db.query(`SELECT count(*)::int AS n FROM incident_timeline WHERE incident_id = $1 AND action = 'raised'`, [first.body.id]);
    expect(timeline.rows[0].n).toBe(1);
    for (const id of [first.body.id, racing[0].body.id, otherUser.body.id])
      await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(op1.token)).send({ reason: '测试' }).expect(200);
  });

  it("keeps a guard's phone position with the alarm and its photos as the incident's evidence", async () => {
    /** A JPEG header as far as the size check reads it (SOF0 w×h), padded to `bytes`: no picture in it. */
    const header = (w: number, h: number, bytes = 64) => {
      const head = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, h >> 8, h & 255, w >> 8, w & 255, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
      return Buffer.concat([head, Buffer.alloc(Math.max(0, bytes - head.length - 2)), Buffer.from([0xff, 0xd9])]);
    };
    /** A real w×h JPEG (a gradient, `shade` telling pictures apart). */
    const jpeg = (w: number, h: number, shade = 0) => {
      const data = Buffer.alloc(w * h * 4);
      for (let i = 0; i < w * h; i++) data.set([(i % w) & 255, (i / w + shade) & 255, 96, 255], i * 4);
      return jpegJs.encode({ data, width: w, height: h }, 80).data;
    };
    /** The same JPEG with an APP1 EXIF segment (a GPS tag's text in it) after SOI. */
    const withExif = (j: Buffer) => {
      const payload = Buffer.concat([Buffer.from('Exif\0\0'), Buffer.from('GPSLatitude 29.382756 GPSLongitude 106.540184')]);
      const seg = Buffer.concat([Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 255]), payload]);
      return Buffer.concat([j.subarray(0, 2), seg, j.subarray(2)]);
    };
    const body = { schoolId: seed.schoolA.id, type: 'medical', location: '操场' };
    // Out of range or partial positions are field-level 400s.
    const bad = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ ...body, position: { latitude: 91, longitude: 106.5, accuracyM: -1 } })
      .expect(400);
    expect(bad.body.error.details.fields.map((f: { field: string }) => f.field).sort()).toEqual(['position.accuracyM', 'position.latitude']);
    const partial = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ ...body, position: { latitude: 29.5 } })
      .expect(400);
    // One clear reason per field: a missing one is "required" (not "must be a number", "≥ 0" and "≤ 100000" at once).
    expect(partial.body.error.details.fields).toEqual([
      { field: 'position.longitude', reason: 'longitude is required' },
      { field: 'position.accuracyM', reason: 'accuracyM is required' },
    ]);
    // The position is sent as `position` (the web console's name); `reporterPosition` is what the incident returns, and says so.
    const misnamed = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ ...body, reporterPosition: { latitude: 29.5, longitude: 106.5, accuracyM: 5 } })
      .expect(400);
    expect(misnamed.body.error.details.fields).toEqual([{ field: 'reporterPosition', reason: expect.stringContaining('as `position`') }]);
    const position = { latitude: 29.382756, longitude: 106.540184, accuracyM: 12.5 };
    const raised = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .set('Idempotency-Key', 'guard-photo-1')
      .send({ ...body, position })
      .expect(201);
    expect(raised.body.reporterPosition).toEqual(position);
    // The same client event with another position is another alarm's body: 409.
    await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .set('Idempotency-Key', 'guard-photo-1')
      .send({ ...body, position: { ...position, latitude: 29.4 } })
      .expect(409);
    const id = raised.body.id as string;
    // The guard presses again (folds into this alarm): each press's position is on its timeline entry; a better fix
    // (smaller accuracyM) becomes the incident's, said on the entry; a worse one does not.
    const pressAgain = (p: object) =>
      t
        .http()
        .post('/api/v1/incidents')
        .set(auth(staffA))
        .send({ ...body, position: p })
        .expect(200);
    const sharper = { latitude: 29.382801, longitude: 106.540201, accuracyM: 5 };
    expect((await pressAgain(sharper)).body).toMatchObject({ id, folded: true, reporterPosition: sharper });
    const vaguer = { latitude: 29.39, longitude: 106.55, accuracyM: 50 };
    expect((await pressAgain(vaguer)).body).toMatchObject({ id, folded: true, reporterPosition: sharper });
    const tl = (await t.http().get(`/api/v1/incidents/${id}`).set(auth(op1.token)).expect(200)).body.timeline as {
      action: string;
      note: string;
      data: Record<string, unknown>;
    }[];
    expect(tl.find((e) => e.action === 'raised')!.data.position).toEqual(position);
    expect(tl.filter((e) => e.action === 'press').map((e) => [e.data.position, e.data.positionUpdated])).toEqual([
      [sharper, true],
      [vaguer, false],
    ]);
    expect(tl.find((e) => e.action === 'press')!.note).toContain('位置更新');
    const upload = (token: string, file: Buffer | null, key?: string, incident = id) => {
      const req = t.http().post(`/api/v1/incidents/${incident}/photos`).set(auth(token));
      if (key) req.set('Idempotency-Key', key);
      return file ? req.attach('file', file, { filename: 'photo.jpg', contentType: 'image/jpeg' }) : req.send({});
    };
    // Not a JPEG, too large (bytes, pixels), no file: refused, nothing stored.
    expect((await upload(staffA, Buffer.from('GIF89a not a jpeg')).expect(415)).body.error.code).toBe('EVIDENCE.PHOTO_NOT_JPEG');
    expect((await upload(staffA, header(64, 64, 70000)).expect(413)).body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: '照片超过 58 KB 的上限' });
    await upload(staffA, header(60000, 60000)).expect(413);
    // Decoded for real: a header without a picture, a size the scan does not fill, a cut scan are not photos (415).
    expect((await upload(staffA, header(320, 240)).expect(415)).body.error.code).toBe('EVIDENCE.PHOTO_NOT_JPEG');
    const real = jpeg(160, 120);
    const sof = real.indexOf(Buffer.from([0xff, 0xc0]));
    const madeUp = Buffer.from(real);
    madeUp.writeUInt16BE(1200, sof + 5);
    madeUp.writeUInt16BE(1600, sof + 7);
    await upload(staffA, madeUp).expect(415);
    await upload(staffA, real.subarray(0, real.length >> 1)).expect(415);
    expect((await upload(staffA, null).expect(400)).body.error.code).toBe('EVIDENCE.PHOTO_MISSING');
    // Another school's staff and the auditor cannot attach (404 as if missing; 403 role).
    await upload(staffB, jpeg(640, 480)).expect(404);
    await upload(auditor, jpeg(640, 480)).expect(403);
    // Stored once per client key; the retry answers the first (200).
    // The stored picture is the decoded one encoded anew: its true size, no EXIF (GPS) and nothing after its end —
    // here a second frame claiming 65500×65500 after the first picture's end-of-image.
    const trailer = Buffer.concat([header(65500, 65500), Buffer.from('trailing')]);
    const first = await upload(staffA, Buffer.concat([withExif(jpeg(640, 480)), trailer]), 'photo-a').expect(201);
    expect(first.body).toMatchObject({
      cameraId: null,
      schoolId: seed.schoolA.id,
      purpose: 'alarm.photo',
      refId: id,
      width: 640,
      height: 480,
      source: 'upload',
    });
    const again = await upload(staffA, Buffer.concat([withExif(jpeg(640, 480)), trailer]), 'photo-a').expect(200);
    expect(again.body).toMatchObject({ id: first.body.id, source: 'upload' }); // a retry reads the record back: its source is kept with it
    // The same key with another picture is not a retry: 409 naming the first, the second not lost silently.
    const reused = await upload(staffA, jpeg(640, 480, 1), 'photo-a').expect(409);
    expect(reused.body.error).toMatchObject({ code: 'EVIDENCE.PHOTO_KEY_REUSED', details: { evidenceId: first.body.id } });
    await upload(op1.token, jpeg(800, 600)).expect(201);
    expect((await upload(staffA, jpeg(640, 480), 'photo-c').expect(409)).body.error).toMatchObject({ code: 'EVIDENCE.PHOTO_LIMIT', details: { limit: 2 } });
    // Readable by whoever sees the incident (checksum checked); not by another school.
    const pic = await t.http().get(`/api/v1/video/evidence/${first.body.id}`).set(auth(op1.token)).buffer(true).expect(200);
    expect(pic.headers).toMatchObject({
      'content-type': 'image/jpeg',
      'x-content-type-options': 'nosniff',
      'content-disposition': `inline; filename="evidence-${first.body.id}.jpg"`,
    });
    expect(pic.headers['x-evidence-source']).toBe('upload');
    const stored = pic.body as Buffer;
    expect(stored.includes('Exif')).toBe(false);
    expect(stored.includes('GPSLatitude')).toBe(false);
    expect(stored.includes('trailing')).toBe(false);
    expect(jpegJs.decode(stored)).toMatchObject({ width: 640, height: 480 });
    await t.http().get(`/api/v1/video/evidence/${first.body.id}`).set(auth(staffB)).expect(404);
    // On the timeline by its sender, audited, and the position in the detail.
    const detail = await t.http().get(`/api/v1/incidents/${id}`).set(auth(op1.token)).expect(200);
    expect(detail.body.reporterPosition).toEqual(sharper);
    const photos = detail.body.timeline.filter((e: { action: string }) => e.action === 'photo');
    expect(photos.map((e: { actorType: string; data: { evidenceId: string; source: string } }) => [e.actorType, e.data.evidenceId, e.data.source])).toEqual([
      ['user', first.body.id, 'upload'],
      ['user', expect.any(String), 'upload'],
    ]);
    expect((await t.db.query(`SELECT DISTINCT source FROM video_evidence WHERE ref_id = $1`, [id])).rows).toEqual([{ source: 'upload' }]);
    const audit = await t.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'attach_photo' AND entity_id = $1`, [id]);
    expect(audit.rows[0].n).toBe(2);
    // Kept as long as the incident: a purge 100 days on keeps them (other pictures go after 30 days).
    await t.app.get(EvidenceService).purge(new Date(Date.now() + 100 * 86_400_000));
    const kept = await t.db.query(`SELECT count(*)::int AS n FROM video_evidence WHERE ref_id = $1`, [id]);
    expect(kept.rows[0].n).toBe(2);
    await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(staffA)).send({ reason: '测试' }).expect(200);
    // A closed incident is part of the record: no photo is added to it (409), the limit aside.
    const raised2 = await t.http().post('/api/v1/incidents').set(auth(staffA)).send(body).expect(201);
    await t.http().post(`/api/v1/incidents/${raised2.body.id}/cancel`).set(auth(staffA)).send({ reason: '测试' }).expect(200);
    expect((await upload(staffA, jpeg(64, 48), undefined, raised2.body.id).expect(409)).body.error).toMatchObject({
      code: 'EVIDENCE.INCIDENT_CLOSED',
      details: { status: 'cancelled' },
    });
  });

  it('relays to the police endpoint with a valid signature, once, after the endpoint recovers, and warns when late', async () => {
    const [incident] = (await t.http().get('/api/v1/incidents').query({ schoolId: seed.schoolA.id }).set(auth(op1.token)).expect(200)).body.items;
    await waitFor(async () => police.accepted.has(incident.id), 10000, 'first relay');
    // Now the endpoint fails: a new alarm is late, flagged for operators, then delivered once.
    police.failing = true;
    const r = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'violence', location: '教学楼三楼', note: '有人持械' })
      .expect(201);
    await waitFor(async () => (await t.db.query(`SELECT relay_late FROM incidents WHERE id = $1`, [r.body.id])).rows[0].relay_late, 10000, 'relay_late');
    const late = await t.db.query(`SELECT payload FROM console_events WHERE type = 'incident.relay_late' AND payload->>'incidentId' = $1`, [r.body.id]);
    expect(late.rows).toHaveLength(1);
    expect((police.requests.get(r.body.id) ?? 0) >= 1).toBe(true);
    police.failing = false;
    await waitFor(
      async () => (await t.db.query(`SELECT relay_delivered_at FROM incidents WHERE id = $1`, [r.body.id])).rows[0].relay_delivered_at,
      15000,
      'delivery',
    );
    expect(police.delivered.get(r.body.id)).toBe(1);
    expect(police.delivered.get(incident.id)).toBe(1);
    expect(police.badSignatures).toBe(0);
    expect(police.bodies.get(r.body.id)).toMatchObject({ incidentId: r.body.id, drill: false, type: 'violence', school: { name: '甲小学' } });
  });

  it('lets exactly one of two concurrent operators acknowledge (the other gets 409 with who)', async () => {
    const r = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(op1.token))
      .send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '围墙' })
      .expect(201);
    const [a, b] = await Promise.all([
      t.http().post(`/api/v1/incidents/${r.body.id}/acknowledge`).set(auth(op1.token)).send({}),
      t.http().post(`/api/v1/incidents/${r.body.id}/acknowledge`).set(auth(op2.token)).send({}),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const winner = a.status === 200 ? a : b;
    const loser = a.status === 200 ? b : a;
    expect(loser.body.error.code).toBe('ALARM.ALREADY_ACKNOWLEDGED');
    expect(loser.body.error.details.acknowledgedBy.name).toBe(winner.body.acknowledgedBy.name);
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incident_timeline WHERE incident_id = $1 AND action = 'acknowledge'`, [r.body.id]);
    expect(rows[0].n).toBe(1);
  });

  it('walks the lifecycle to resolution with a timeline entry per step', async () => {
    const r = await t.http().post('/api/v1/incidents').set(auth(op1.token)).send({ schoolId: seed.schoolA.id, type: 'medical', location: '食堂' }).expect(201);
    const id = r.body.id;
    await t.http().post(`/api/v1/incidents/${id}/dispatch`).set(auth(op1.token)).send({}).expect(409);
    await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op1.token)).send({ note: '已联系门卫' }).expect(200);
    await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(staffA)).send({ reason: '误按' }).expect(403); // not theirs (and acknowledged)
    await t.http().post(`/api/v1/incidents/${id}/dispatch`).set(auth(op1.token)).send({}).expect(200);
    await t.http().post(`/api/v1/incidents/${id}/on-scene`).set(auth(op1.token)).send({}).expect(200);
    await t.http().post(`/api/v1/incidents/${id}/notes`).set(auth(op2.token)).send({ note: '120 已到' }).expect(200);
    await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome: 'maybe' }).expect(400);
    const done = await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome: 'genuine' }).expect(200);
    expect(done.body).toMatchObject({ status: 'resolved', outcome: 'genuine' });
    const got = await t.http().get(`/api/v1/incidents/${id}`).set(auth(auditor)).expect(200);
    const people = got.body.timeline.filter((e: { actorType: string }) => e.actorType === 'user');
    expect(people.map((e: { action: string }) => e.action)).toEqual(['raised', 'acknowledge', 'dispatch', 'on_scene', 'note', 'resolve']);
    expect(people[1]).toMatchObject({ actorName: op1.username, note: '已联系门卫' });
  });

  it("lets a school's staff cancel only an alarm they raised: a button's, an operator's or a colleague's latches (adversarial pass F1)", async () => {
    const colleague = (await t.userToken('school_security', seed.schoolA.id)).token;
    const byOperator = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(op1.token))
      .send({ schoolId: seed.schoolA.id, type: 'violence', location: '操场' })
      .expect(201);
    const byColleague = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(colleague))
      .send({ schoolId: seed.schoolA.id, type: 'other', location: '北门' })
      .expect(201);
    const pressed = await press(`f1-${Date.now()}`); // a new incident, or folded into the button's open one
    expect([200, 201]).toContain(pressed.status);
    for (const id of [byOperator.body.id, byColleague.body.id, pressed.body.id]) {
      const refused = await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(staffA)).send({ reason: '没事' }).expect(403);
      expect(refused.body.error.code).toBe('ALARM.CANCEL_NOT_OWN');
    }
    for (const id of [byOperator.body.id, byColleague.body.id])
      expect((await t.http().get(`/api/v1/incidents/${id}`).set(auth(op1.token)).expect(200)).body.status).toBe('raised');
    // Its escalation is untouched.
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM alarm_outbox WHERE payload->>'incidentId' = $1 AND done_at IS NULL`, [
      byOperator.body.id,
    ]);
    expect(rows[0].n).toBeGreaterThan(0);
    // The colleague withdraws their own; the control center cancels any.
    await t.http().post(`/api/v1/incidents/${byColleague.body.id}/cancel`).set(auth(colleague)).send({ reason: '误按' }).expect(200);
    await t.http().post(`/api/v1/incidents/${byOperator.body.id}/cancel`).set(auth(op1.token)).send({ reason: '演练' }).expect(200);
    expect(byOperator.body.raisedById).toBe(op1.userId);
    expect(pressed.body.raisedById).toBeNull();
  });

  it('lets the school cancel before acknowledgement, with a reason', async () => {
    const r = await t.http().post('/api/v1/incidents').set(auth(staffA)).send({ schoolId: seed.schoolA.id, type: 'other', location: '门卫室' }).expect(201);
    await t.http().post(`/api/v1/incidents/${r.body.id}/cancel`).set(auth(staffA)).send({}).expect(400);
    const c = await t.http().post(`/api/v1/incidents/${r.body.id}/cancel`).set(auth(staffA)).send({ reason: '误按' }).expect(200);
    expect(c.body).toMatchObject({ status: 'cancelled', cancelReason: '误按' });
  });

  it('withdraws at the police an alarm cancelled by the school or resolved as false, after the alarm itself; never a genuine one (A17)', async () => {
    const timeline = async (id: string) =>
      ((await t.http().get(`/api/v1/incidents/${id}`).set(auth(op1.token)).expect(200)).body.timeline as { action: string; note: string }[]).map(
        (e) => e.action,
      );
    // Cancelled by the guard who raised it (mis-press): the alarm went out, then its withdrawal, signed, under its own key.
    const misPress = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '北门' })
      .expect(201);
    await t.http().post(`/api/v1/incidents/${misPress.body.id}/cancel`).set(auth(staffA)).send({ reason: '误按' }).expect(200);
    await waitFor(async () => police.accepted.has(`${misPress.body.id}-withdraw`), 20_000, 'withdrawal of the cancelled alarm');
    expect(police.accepted.get(misPress.body.id)).toBe(1);
    expect(police.bodies.get(`${misPress.body.id}-withdraw`)).toMatchObject({
      incidentId: misPress.body.id,
      withdrawn: true,
      status: 'cancelled',
      reason: '误按',
    });
    await waitFor(async () => (await timeline(misPress.body.id)).includes('relay_withdrawn'), 20_000, 'withdrawal on the timeline');
    // Resolved as a false alarm by an operator: withdrawn; resolved as genuine: not.
    const falseAlarm = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'fire', location: '实验楼' })
      .expect(201);
    const genuine = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'violence', location: '操场' })
      .expect(201);
    // A real alarm found to be a drill afterwards went out as live: the police must not keep holding it (attack note, outage round 2).
    const drillAfter = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '南门' })
      .expect(201);
    for (const [id, outcome] of [
      [falseAlarm.body.id, 'false_alarm'],
      [genuine.body.id, 'genuine'],
      [drillAfter.body.id, 'drill'],
    ]) {
      await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op1.token)).send({}).expect(200);
      await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome }).expect(200);
    }
    await waitFor(async () => police.accepted.has(`${falseAlarm.body.id}-withdraw`), 20_000, 'withdrawal of the false alarm');
    expect(police.bodies.get(`${falseAlarm.body.id}-withdraw`)).toMatchObject({ withdrawn: true, status: 'resolved', outcome: 'false_alarm' });
    await waitFor(async () => police.accepted.has(`${drillAfter.body.id}-withdraw`), 20_000, 'withdrawal of the alarm resolved as a drill');
    expect(police.bodies.get(`${drillAfter.body.id}-withdraw`)).toMatchObject({ withdrawn: true, status: 'resolved', outcome: 'drill' });
    await waitFor(async () => (await timeline(drillAfter.body.id)).includes('relay_withdrawn'), 20_000, 'the drill withdrawal on the timeline');
    await waitFor(async () => police.accepted.has(genuine.body.id), 20_000, 'the genuine alarm relayed');
    const jobs = await t.db.query(`SELECT job_id FROM alarm_outbox WHERE job_name = 'alarms.police-withdraw' AND payload->>'incidentId' = $1`, [
      genuine.body.id,
    ]);
    expect(jobs.rows).toEqual([]);
    expect(police.accepted.has(`${genuine.body.id}-withdraw`)).toBe(false);
    expect(police.badSignatures).toBe(0);
  });

  it("counts the withdrawal's own requests, not the runs that waited for the alarm's delivery (attack note, outage round 2)", async () => {
    police.failing = true; // the alarm itself cannot be delivered yet: the withdrawal waits for it, run after run
    let id = '';
    try {
      id = (await t.http().post('/api/v1/incidents').set(auth(staffA)).send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '东门' }).expect(201))
        .body.id;
      await t.http().post(`/api/v1/incidents/${id}/cancel`).set(auth(staffA)).send({ reason: '误按' }).expect(200);
      const q = t.app.get(QueueService).queue(JOBS[JobName.AlarmPoliceWithdraw].queue);
      await waitFor(async () => ((await q.getJob(`withdraw-${id}`))?.attemptsMade ?? 0) >= 2, 10000, 'the withdrawal ran twice while the alarm was pending');
    } finally {
      police.failing = false;
    }
    await waitFor(async () => police.accepted.has(`${id}-withdraw`), 10000, 'the withdrawal once the alarm is delivered');
    const entry = await waitFor(
      async () =>
        (await t.db.query(`SELECT note, data FROM incident_timeline WHERE incident_id = $1 AND action = 'relay_withdrawn'`, [id])).rows[0] as
          { note: string; data: { attempt: number } } | undefined,
      10000,
      'the withdrawal on the timeline',
    );
    expect(police.requests.get(`${id}-withdraw`)).toBe(1);
    expect(entry.note).toContain('（第 1 次尝试）');
    expect(entry.data.attempt).toBe(1);
  });

  it('escalates an unacknowledged incident at the configured delays, and acknowledgement cancels it', async () => {
    const r = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(op1.token))
      .send({ schoolId: seed.schoolA.id, type: 'other', location: '车库', priority: 'P2' })
      .expect(201);
    await waitFor(
      async () => (await t.db.query(`SELECT escalation_level FROM incidents WHERE id = $1`, [r.body.id])).rows[0].escalation_level === 2,
      15000,
      'level 2',
    );
    const ev = await t.db.query(
      `SELECT payload->>'level' AS level FROM console_events WHERE type = 'incident.escalated' AND payload->>'incidentId' = $1 ORDER BY seq`,
      [r.body.id],
    );
    expect(ev.rows.map((x) => x.level)).toEqual(['1', '2']);

    // P2 with long delays this time (per-priority config), then acknowledged: the timers go.
    const cfg = t.config.alarms;
    cfg.escalationSeconds.P2 = [600, 1200];
    const r2 = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(op1.token))
      .send({ schoolId: seed.schoolA.id, type: 'other', location: '车库', priority: 'P2' })
      .expect(201);
    const queue = t.app.get(QueueService).queue(JOBS[JobName.AlarmEscalate].queue);
    await waitFor(async () => (await queue.getJob(`esc-${r2.body.id}-1`)) !== undefined, 10000, 'escalation job queued');
    await t.http().post(`/api/v1/incidents/${r2.body.id}/acknowledge`).set(auth(op1.token)).send({}).expect(200);
    expect(await queue.getJob(`esc-${r2.body.id}-1`)).toBeUndefined();
    expect(await queue.getJob(`esc-${r2.body.id}-2`)).toBeUndefined();
    const ob = await t.db.query(`SELECT count(*)::int AS n FROM alarm_outbox WHERE job_id LIKE $1 AND done_at IS NULL`, [`esc-${r2.body.id}-%`]);
    expect(ob.rows[0].n).toBe(0);
    // Even a timer that slipped through re-checks the state and does nothing.
    expect(await t.app.get(AlarmsJobs).escalate(r2.body.id, 1)).toBe('skipped');
    cfg.escalationSeconds.P2 = [0.3, 0.6];
  });

  it('marks alarms in a drill window as drills end to end and keeps them out of the statistics', async () => {
    const now = Date.now();
    // The school requests it, an operator approves it (test/e2e/drill-windows.e2e.spec.ts has the rules).
    const w = await t
      .http()
      .post('/api/v1/incidents/drill-windows')
      .set(auth(staffB))
      .send({ schoolId: seed.schoolB.id, startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 600_000).toISOString(), note: '消防演练' })
      .expect(201);
    await t.http().post(`/api/v1/incidents/drill-windows/${w.body.id}/approve`).set(auth(op1.token)).expect(200);
    const r = await t.http().post('/api/v1/incidents').set(auth(staffB)).send({ schoolId: seed.schoolB.id, type: 'fire', location: '实验楼' }).expect(201);
    expect(r.body.drill).toBe(true);
    // The drill window is decided inside the insert: the console event and the audit entry say so too.
    const ev = await t.db.query(`SELECT payload->'drill' AS drill FROM console_events WHERE type = 'incident.raised' AND payload->>'incidentId' = $1`, [
      r.body.id,
    ]);
    expect(ev.rows).toEqual([{ drill: true }]);
    const audit = await t.db.query(`SELECT after->'drill' AS drill FROM audit_log WHERE entity = 'incident' AND entity_id = $1`, [r.body.id]);
    expect(audit.rows).toEqual([{ drill: true }]);
    await waitFor(async () => police.bodies.get(r.body.id), 10000, 'drill relayed');
    expect(police.bodies.get(r.body.id)).toMatchObject({ drill: true });
    const stats = await t.http().get('/api/v1/incidents/stats').set(auth(op1.token)).expect(200);
    expect(stats.body.bySchool.map((s: { schoolId: string }) => s.schoolId)).not.toContain(seed.schoolB.id);
    const a = stats.body.bySchool.find((s: { schoolId: string }) => s.schoolId === seed.schoolA.id);
    expect(a.count).toBeGreaterThan(0);
    expect(typeof a.toConsoleP50).toBe('number');
    expect(typeof a.toAcknowledgedP90).toBe('number');
    expect(stats.body.byZone[0].zoneId).toBe(seed.zone.id);
    expect(stats.body.byDay.length).toBeGreaterThan(0);
  });

  it('confines school staff to their own school', async () => {
    await t.http().post('/api/v1/incidents').set(auth(staffA)).send({ schoolId: seed.schoolB.id, type: 'intrusion', location: 'x' }).expect(403);
    const own = await t.http().get('/api/v1/incidents').set(auth(staffA)).expect(200);
    expect(own.body.items.length).toBeGreaterThan(0);
    expect(own.body.items.every((i: { schoolId: string }) => i.schoolId === seed.schoolA.id)).toBe(true);
    await t.http().get('/api/v1/incidents').query({ schoolId: seed.schoolB.id }).set(auth(staffA)).expect(403);
    const bIncident = (await t.http().get('/api/v1/incidents').set(auth(staffB)).expect(200)).body.items[0];
    // Another school's incident is answered like a missing one (no existence oracle).
    await t.http().get(`/api/v1/incidents/${bIncident.id}`).set(auth(staffA)).expect(404);
    await t.http().post(`/api/v1/incidents/${bIncident.id}/notes`).set(auth(staffA)).send({ note: 'x' }).expect(404);
    // Naming another school's button answers like an unknown one (A10).
    for (const alarmDeviceId of [button.id, '00000000-0000-4000-8000-000000000000']) {
      const r = await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(staffB))
        .send({ schoolId: seed.schoolB.id, type: 'intrusion', location: 'x', alarmDeviceId })
        .expect(404);
      expect(r.body.error.code).toBe('ALARM_DEVICE.NOT_FOUND');
    }
    // The service enforces the same rules for the socket gateway.
    const svc = t.app.get(IncidentLifecycleService);
    await expect(svc.acknowledge({ id: 'x', username: 's', role: 'school_security', schoolId: seed.schoolA.id, jti: 'j' }, bIncident.id)).rejects.toMatchObject(
      { status: 403 },
    );
  });

  it('answers 401, 403 and 400 per route', async () => {
    const some = (await t.http().get('/api/v1/incidents').set(auth(op1.token)).expect(200)).body.items[0].id;
    for (const [method, path] of [
      ['get', '/api/v1/incidents'],
      ['get', `/api/v1/incidents/${some}`],
      ['get', '/api/v1/incidents/stats'],
      ['post', '/api/v1/incidents'],
      ['post', `/api/v1/incidents/${some}/acknowledge`],
      ['post', `/api/v1/incidents/${some}/cancel`],
      ['post', '/api/v1/incidents/press'],
      ['post', '/api/v1/incidents/device-reports'],
    ] as const)
      await t.http()[method](path).send({}).expect(401);
    await t.http().post(`/api/v1/incidents/${some}/acknowledge`).set(auth(auditor)).send({}).expect(403);
    await t.http().post(`/api/v1/incidents/${some}/acknowledge`).set(auth(staffA)).send({}).expect(403);
    await t.http().post('/api/v1/incidents').set(auth(auditor)).send({}).expect(403);
    await t.http().post('/api/v1/incidents/press').set(auth(op1.token)).send({ eventId: 'x' }).expect(401);
    const bad = await t.http().post('/api/v1/incidents').set(auth(op1.token)).send({ schoolId: 'nope', type: 'tamper', location: '' }).expect(400);
    expect(bad.body.error.details.fields.map((f: { field: string }) => f.field).sort()).toEqual(['location', 'schoolId', 'type']);
    await t.http().get('/api/v1/incidents/not-a-uuid').set(auth(op1.token)).expect(400);
    await t.http().get('/api/v1/incidents/00000000-0000-4000-8000-000000000000').set(auth(op1.token)).expect(404);
    // A button credential cannot post camera reports.
    await t.http().post('/api/v1/incidents/device-reports').set('Authorization', button.authorization).send({ eventId: 'v1', type: 'video_alarm' }).expect(403);
  });

  it('a more urgent report folded into an open incident raises its priority, its escalation and its police relay (adversarial pass F3)', async () => {
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: sideCam.id }).expect(201)).body;
    // tamper: P3 by type (not relayed); a device may say more urgent, never less (A6).
    const report = (eventId: string, priority: string, note: string) =>
      t.http().post('/api/v1/incidents/device-reports').set('Authorization', cred.authorization).send({ eventId, type: 'tamper', priority, note });
    const low = await report('f3-1', 'P3', '画面异常').expect(201);
    expect(low.body).toMatchObject({ priority: 'P3', relay: { required: false } });
    const high = await report('f3-2', 'P1', '持刀人员翻越围墙').expect(200);
    expect(high.body).toMatchObject({ id: low.body.id, folded: true, priority: 'P1', relay: { required: true } });
    const got = await t.http().get(`/api/v1/incidents/${low.body.id}`).set(auth(op1.token)).expect(200);
    expect(got.body.timeline.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['press', 'priority_raised']));
    // P1's timers from the report that raised it, and the police are told.
    const { rows } = await t.db.query(`SELECT job_id FROM alarm_outbox WHERE payload->>'incidentId' = $1 ORDER BY job_id`, [low.body.id]);
    expect(rows.map((r: { job_id: string }) => r.job_id)).toEqual(
      expect.arrayContaining([`esc-${low.body.id}-1-P1`, `esc-${low.body.id}-2-P1`, `relay-${low.body.id}`]),
    );
    await waitFor(async () => police.accepted.has(low.body.id), 10000, 'relayed once P1');
    // A less urgent report later does not lower it.
    expect((await report('f3-3', 'P3', '再次触发').expect(200)).body.priority).toBe('P1');
  });

  it("takes a gateway's report without a usable camera at the gateway's school, and never lets a device lower an alarm below its type (A1, A6)", async () => {
    const gateway = async (schoolId?: string) =>
      (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'gateway', schoolId }).expect(201)).body.authorization as string;
    const gwA = await gateway(seed.schoolA.id);
    const gwB = await gateway(seed.schoolB.id);
    const report = (authorization: string, body: object) => t.http().post('/api/v1/incidents/device-reports').set('Authorization', authorization).send(body);
    // The rate-limit buckets the reports take (per camera; per gateway when the camera is not one of its school).
    const buckets = jest.spyOn((t.app.get(AlarmsController) as unknown as { presses: RateLimiter }).presses, 'take');
    const timelineNote = async (id: string, eventId: string) =>
      (await t.db.query(`SELECT note FROM incident_timeline WHERE incident_id = $1 AND action = 'press' AND data->>'eventId' = $2`, [id, eventId])).rows[0]
        ?.note as string | undefined;
    // No cameraId: raised at the gateway's school, no camera, said in the note.
    const none = (await report(gwA, { eventId: 'gw-1', type: 'intrusion', note: '周界告警' }).expect(201)).body;
    expect(none).toMatchObject({ schoolId: seed.schoolA.id, cameraId: null, type: 'intrusion', priority: 'P1', status: 'raised' });
    expect(none.location).toContain('设备网关');
    expect(none.note).toMatch(/^周界告警（设备报文异常：缺少摄像机编号 cameraId，按网关所属学校报警）$/);
    // Not a UUID, an unknown camera: the same alarm (folded), each said.
    expect((await report(gwA, { eventId: 'gw-2', type: 'intrusion', cameraId: 'not-a-uuid' }).expect(200)).body).toMatchObject({ id: none.id, folded: true });
    expect(await timelineNote(none.id, 'gw-2')).toMatch(/cameraId 格式不符，按网关所属学校报警/);
    const unknown = '00000000-0000-4000-8000-00000000abcd';
    expect((await report(gwA, { eventId: 'gw-3', type: 'intrusion', cameraId: unknown }).expect(200)).body).toMatchObject({ id: none.id, folded: true });
    expect(await timelineNote(none.id, `${unknown}/gw-3`)).toMatch(/摄像机编号未登记于网关所属学校/);
    // Another unknown camera behind the same gateway counting its events from the same number: its own press, not the first one's retry.
    const other = '00000000-0000-4000-8000-00000000abce';
    expect((await report(gwA, { eventId: 'gw-3', type: 'intrusion', cameraId: other }).expect(200)).body).toMatchObject({ id: none.id, folded: true });
    expect(await timelineNote(none.id, `${other}/gw-3`)).toMatch(/摄像机编号未登记于网关所属学校/);
    // Four reports of gateway A without a usable camera, made-up ids included: one bucket, the gateway's — never one per made-up id.
    const keys = buckets.mock.calls.map(([key]) => key);
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(1);
    expect(keys.some((k) => k.includes(unknown) || k.includes(other))).toBe(false);
    buckets.mockClear();
    // Another school's camera named by B's gateway: an alarm at B (never at A, and the note does not say A's camera exists).
    const atB = (await report(gwB, { eventId: 'gw-4', type: 'intrusion', cameraId: gateCam.id }).expect(201)).body;
    expect(atB).toMatchObject({ schoolId: seed.schoolB.id, cameraId: null });
    expect(atB.note).toMatch(/摄像机编号未登记于网关所属学校/);
    await t.http().get(`/api/v1/incidents/${atB.id}`).set(auth(staffB)).expect(200);
    // The gateway's retry is the same press.
    expect((await report(gwB, { eventId: 'gw-4', type: 'intrusion', cameraId: gateCam.id }).expect(200)).body).toMatchObject({ id: atB.id, folded: false });
    // A fire reported as P4 (through a gateway with its camera, or by a camera itself): P1, relayed, said in the note.
    const fire = (await report(gwA, { eventId: 'gw-5', type: 'fire', priority: 'P4', cameraId: gateCam.id }).expect(201)).body;
    expect(fire).toMatchObject({ cameraId: gateCam.id, priority: 'P1', relay: { required: true } });
    expect(fire.note).toMatch(/priority P4 低于该类型默认的 P1，按 P1 处理/);
    expect(buckets.mock.calls.map(([key]) => key)).toEqual([expect.any(String), expect.any(String), `camera:${gateCam.id}`]); // B's gateway twice, then a known camera: its own
    buckets.mockRestore();
    // A district gateway (no school): its alarm is placed nowhere and its note says so, never "at the gateway's school".
    const gwDistrict = await gateway();
    const lost = (await report(gwDistrict, { eventId: 'gw-d1', type: 'intrusion', cameraId: unknown }).expect(201)).body;
    expect(lost).toMatchObject({ schoolId: null, cameraId: null });
    expect(lost.note).toMatch(/摄像机编号未登记，网关不属于任何学校：报警未定位到学校/);
    expect(lost.note).not.toMatch(/网关所属学校/);
    expect((await report(gwDistrict, { eventId: 'gw-d2', type: 'intrusion' }).expect(200)).body).toMatchObject({ id: lost.id, folded: true });
    expect(await timelineNote(lost.id, 'gw-d2')).toMatch(/缺少摄像机编号 cameraId，网关不属于任何学校/);
    await t.http().post(`/api/v1/incidents/${lost.id}/cancel`).set(auth(op1.token)).send({ reason: '测试' }).expect(200);
    const camCred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: sideCam.id }).expect(201)).body;
    // A camera naming another camera reports for itself (the other id ignored, said).
    const own = (await report(camCred.authorization, { eventId: 'gw-6', type: 'intrusion', priority: 'P3', cameraId: gateCam.id }).expect(201)).body;
    expect(own).toMatchObject({ cameraId: sideCam.id, priority: 'P1' });
    expect(own.note).toMatch(/cameraId 与设备凭证的摄像机不符，已忽略.*priority P3 低于该类型默认的 P1/);
    // More urgent than the type stays.
    const urgent = (await report(camCred.authorization, { eventId: 'gw-7', type: 'device_fault', priority: 'P2' }).expect(201)).body;
    expect(urgent.priority).toBe('P2');
    // Closed again: later tests raise at these cameras.
    for (const id of [none.id, atB.id, fire.id, own.id, urgent.id]) {
      await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op1.token)).send({}).expect(200);
      await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome: 'test' }).expect(200);
    }
  });

  it("never refuses an authenticated device's alarm for its body: odd fields, types and event ids go into the note (adversarial pass F12)", async () => {
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: gateCam.id }).expect(201)).body;
    const report = (body: unknown) =>
      t
        .http()
        .post('/api/v1/incidents/device-reports')
        .set('Authorization', cred.authorization)
        .send(body as object);
    // Firmware with a timestamp field and a type code of its own, and an event id with a space: the alarm is raised.
    const odd = await report({ eventId: 'f12 1', type: 'smoke_v2', priority: 'P9', at: '2020-01-01T00:00:00Z', battery: 80 });
    expect([200, 201]).toContain(odd.status);
    expect(odd.body).toMatchObject({ type: 'video_alarm', cameraId: gateCam.id });
    const got = await t.http().get(`/api/v1/incidents/${odd.body.id}`).set(auth(op1.token)).expect(200);
    const said = JSON.stringify(got.body.timeline) + got.body.note;
    for (const word of ['设备报文异常', 'smoke_v2', 'P9', 'at', 'battery', 'f12 1']) expect(said).toContain(word);
    // The device's retry of the same malformed event id finds the same event (no second press).
    const retry = await report({ eventId: 'f12 1', type: 'smoke_v2' }).expect(200);
    expect(retry.body).toMatchObject({ id: odd.body.id, folded: false });
    // No body at all: still an alarm.
    const empty = await t.http().post('/api/v1/incidents/device-reports').set('Authorization', cred.authorization);
    expect([200, 201]).toContain(empty.status);
    // Without a credential nothing is taken.
    await t.http().post('/api/v1/incidents/device-reports').send({ eventId: 'x', type: 'video_alarm' }).expect(401);
  });

  describe('an authenticated device body is never refused for its bytes (attack A1)', () => {
    let dev: { id: string; authorization: string };
    let cam: { authorization: string };
    const POSTGRES_WORDS = /invalid byte sequence|Unicode (low|high) surrogate|0x00|cannot be converted|invalid input syntax/i;
    beforeAll(async () => {
      const d = (
        await t
          .http()
          .post('/api/v1/alarm-devices')
          .set(auth(admin))
          .send({ code: 'BTN-A1', schoolId: seed.schoolA.id, location: '北门', areaKind: 'playground', policeLinked: false })
          .expect(201)
      ).body;
      const c = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'alarm_device', subjectId: d.id }).expect(201)).body;
      dev = { id: d.id, authorization: c.authorization };
      cam = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: gateCam.id }).expect(201)).body;
    });
    const send = (path: string, authorization: string | null, body: string | Buffer, contentType: string | null) =>
      fetch(`${t.baseUrl}/api/v1/incidents/${path}`, {
        method: 'POST',
        headers: { ...(authorization ? { Authorization: authorization } : {}), ...(contentType !== null ? { 'Content-Type': contentType } : {}) },
        body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
      });
    /** The note recorded for a device event (the incident's own for its first press, else the press's timeline entry). */
    const noteOf = async (deviceId: string, eventId: string): Promise<string | null> => {
      const { rows } = await t.db.query(
        `SELECT CASE WHEN tl.id IS NULL THEN i.note ELSE coalesce(tl.note, '') END AS note
         FROM incident_presses p JOIN incidents i ON i.id = p.incident_id
         LEFT JOIN incident_timeline tl ON tl.incident_id = p.incident_id AND tl.action = 'press' AND tl.data->>'eventId' = $2
         WHERE p.device_id = $1 AND p.device_event_id = $2`,
        [deviceId, eventId],
      );
      return rows.length ? rows[0].note : null;
    };
    const digest = (b: string | Buffer) => `b-${createHash('sha256').update(b).digest('hex').slice(0, 40)}`;
    const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;

    it('takes the press for NUL, lone surrogates, cut or non-object JSON, deep bodies, GBK, any Content-Type and oversized bodies', async () => {
      const gbk = iconv.encode('{"eventId":"gbk-1","note":"有人翻墙进入校园"}', 'gbk');
      const big = `{"eventId":"big-1","firmwareDump":"${'A'.repeat(3_000_000)}"}`;
      // UTF-8 cut by the size cap inside a character (3 bytes each), no charset declared.
      const u8head = '{"eventId":"u8cut-1","note":"';
      let u8cut = u8head + '报'.repeat(30_000);
      if ((t.config.alarms.deviceBodyMaxKb * 1024 - Buffer.byteLength(u8head)) % 3 === 0) u8cut = ` ${u8cut}`;
      const u16 = (eventId: string, codec: string, bom: boolean) => iconv.encode(`{"eventId":"${eventId}","note":"有人翻墙"}`, codec, { addBOM: bom });
      const cases: [string, string | Buffer, string | null, string, RegExp][] = [
        // [what, body, Content-Type, event id recorded, what the note must say]
        ['NUL in an unknown field', '{"eventId":"nul-3","vendor":"a\\u0000b"}', 'application/json', 'nul-3', /设备报文异常.*(NUL|vendor)/],
        ['NUL in the note', '{"eventId":"nul-2","note":"a\\u0000b"}', 'application/json', 'nul-2', /^ab/],
        ['lone surrogate as type', '{"eventId":"nul-4","type":"\\ud800"}', 'application/json', 'nul-4', /type 取值未知/],
        ['NUL in a key', '{"eventId":"nul-5","ven\\u0000dor":1}', 'application/json', 'nul-5', /vendor/],
        ['cut JSON', '{"eventId":"trunc-1","ty', 'application/json', 'trunc-1', /JSON 无法解析/],
        ['a JSON string', '"press"', 'application/json', digest('"press"'), /事件编号取自报文摘要/],
        ['40-deep unknown field', `{"eventId":"deep-1","vendor":${deep(40)}}`, 'application/json', 'deep-1', /嵌套超过 32 层/],
        ['20,000-deep body', deep(20_000), 'application/json', digest(deep(20_000)), /嵌套超过 32 层/],
        ['charset=GBK', gbk, 'application/json; charset=GBK', 'gbk-1', /^有人翻墙进入校园$/],
        ['GBK undeclared', iconv.encode('{"eventId":"gbk-2","note":"报警"}', 'gbk'), 'application/json', 'gbk-2', /报警.*按 GB18030 解码/],
        ['unknown charset', '{"eventId":"cs-1"}', 'application/json; charset=klingon', 'cs-1', /字符集 klingon 不支持，按 UTF-8 解码/],
        ['BOM', '\ufeff{"eventId":"bom-1","note":"ok"}', 'application/json', 'bom-1', /^ok$/],
        ['no Content-Type', '{"eventId":"noct-2"}', null, 'noct-2', /^$/],
        ['text/plain', '{"eventId":"txt-1"}', 'text/plain', 'txt-1', /^$/],
        ['octet-stream', '{"eventId":"oct-1"}', 'application/octet-stream', 'oct-1', /^$/],
        ['a form', 'eventId=form-1&note=%E6%8A%A5%E8%AD%A6', 'application/x-www-form-urlencoded', 'form-1', /^报警（设备报文异常：表单格式报文）$/],
        ['3 MB', big, 'application/json', 'big-1', /报文过长（2930 KB），已截断/],
        [
          'UTF-8 cut inside a character',
          u8cut,
          'application/json',
          'u8cut-1',
          /^报+（设备报文异常：报文过长（88 KB），已截断；截断后 JSON 不完整，已尽量读取）$/,
        ],
        [
          // Cut by the device itself (not our cap) inside 门: still UTF-8, the incomplete character left out and said.
          'UTF-8 cut inside a character by the device',
          Buffer.concat([Buffer.from('{"eventId":"u8cut-2","note":"南'), Buffer.from('门').subarray(0, 2)]),
          'application/json',
          'u8cut-2',
          /^南（设备报文异常：报文末尾字符不完整，已略去；JSON 无法解析，已尽量读取）$/,
        ],
        ['charset=utf-16, LE without BOM', u16('u16-1', 'utf-16le', false), 'application/json; charset=utf-16', 'u16-1', /^有人翻墙$/],
        ['charset=UTF-16, BE with BOM', u16('u16-2', 'utf-16be', true), 'application/json; charset=UTF-16', 'u16-2', /^有人翻墙$/],
        ['charset=utf-16le with BOM', u16('u16-3', 'utf-16le', true), 'text/plain; charset=utf-16le', 'u16-3', /^有人翻墙$/],
        ['charset=utf-16be', u16('u16-4', 'utf-16be', false), 'application/json; charset="utf-16be"', 'u16-4', /^有人翻墙$/],
        ['UTF-16 BOM, no charset', u16('u16-5', 'utf-16le', true), 'application/json', 'u16-5', /^有人翻墙（设备报文异常：未声明字符集，按 UTF-16 解码/],
      ];
      const wrong: string[] = [];
      for (const [what, body, type, eventId, said] of cases) {
        const res = await send('press', dev.authorization, body, type);
        const text = await res.text();
        const note = await noteOf(dev.id, eventId);
        if (![200, 201].includes(res.status) || POSTGRES_WORDS.test(text) || note === null || !said.test(note))
          wrong.push(`${what}: ${res.status} ${text.slice(0, 120)} note=${JSON.stringify(note)}`);
        // The device's retry of the same bytes is the same press.
        if (eventId.startsWith('b-') || what === 'cut JSON') {
          const again = await send('press', dev.authorization, body, type);
          if (again.status !== 200) wrong.push(`${what} retry: ${again.status}`);
        }
      }
      expect(wrong).toEqual([]);
      const { rows } = await t.db.query(`SELECT count(*)::int AS n, count(DISTINCT incident_id)::int AS i FROM incident_presses WHERE device_id = $1`, [
        dev.id,
      ]);
      expect(rows[0]).toEqual({ n: cases.length, i: 1 }); // every case one press, all folded into the button's one open alarm
      const [inc] = (await t.db.query(`SELECT type, note FROM incidents WHERE alarm_device_id = $1`, [dev.id])).rows;
      expect(inc.note).toMatch(/设备报文异常/);
      // The camera route too: GB2312, NUL in the note, a lone surrogate in an unknown field.
      const report = await send(
        'device-reports',
        cam.authorization,
        iconv.encode('{"eventId":"gb-1","type":"intrusion","note":"围墙\\u0000入侵","x":"\\udc00"}', 'gb2312'),
        'application/json; charset=GB2312',
      );
      expect([200, 201]).toContain(report.status);
      expect(await noteOf(gateCam.id, 'gb-1')).toMatch(/^围墙入侵（设备报文异常：含 NUL 或无效字符，已清理；未知字段 x）$/);
    });

    /**
     * A press sent by hand over TCP: the headers and `sent` of a body announced as `length` bytes, then
     * nothing more (a slow device) or, with `abort`, the connection closed by us. Resolves with the status
     * answered once the connection is closed (fails after `ms` when the server holds it open).
     */
    const rawPress = (authorization: string, sent: string, length: number, o: { abort?: boolean; ms?: number } = {}) =>
      new Promise<number>((resolve, reject) => {
        const { hostname, port } = new URL(t.baseUrl);
        const sock = connect(Number(port), hostname);
        let got = '';
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error(`no answer within ${o.ms ?? 20000} ms: ${JSON.stringify(got.slice(0, 80))}`));
        }, o.ms ?? 20000);
        sock.on('data', (c) => (got += c.toString('latin1')));
        sock.on('error', () => undefined);
        sock.on('close', () => {
          clearTimeout(timer);
          resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0));
        });
        sock.write(
          `POST /api/v1/incidents/press HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: ${authorization}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
        );
        sock.write(Buffer.from(sent, 'utf8'), () => {
          if (o.abort) setTimeout(() => sock.destroy(), 50).unref();
        });
      });

    it('takes the press with what arrived when the body is slower than alarms.deviceBodyTimeoutMs, answers and closes the connection', async () => {
      const was = t.config.alarms.deviceBodyTimeoutMs;
      t.config.alarms.deviceBodyTimeoutMs = 300;
      try {
        // Headers and half of the body, then nothing: answered (not held for the server's ~300 s request timeout) and closed.
        expect([200, 201]).toContain(await rawPress(dev.authorization, '{"eventId":"slow-1","note":"有人翻墙', 400));
        expect(await noteOf(dev.id, 'slow-1')).toMatch(/^有人翻墙（设备报文异常：报文接收超时（0\.3 秒），已截断；截断后 JSON 不完整/);
        // The device's retry of the whole body is the same press.
        expect((await send('press', dev.authorization, '{"eventId":"slow-1","note":"有人翻墙进入"}', 'application/json')).status).toBe(200);
        // Cut inside the event id: "slow-2" of "slow-23" is not taken as the id (it could be another press's); the bytes' digest is.
        const cut = '{"note":"x","eventId":"slow-2';
        expect([200, 201]).toContain(await rawPress(dev.authorization, cut, 400));
        expect(await noteOf(dev.id, 'slow-2')).toBeNull();
        expect(await noteOf(dev.id, digest(cut))).toMatch(/报文接收超时.*事件编号不完整.*事件编号取自报文摘要/);
      } finally {
        t.config.alarms.deviceBodyTimeoutMs = was;
      }
    });

    it('dates the press when the request arrived, not when a slowly sent body ended', async () => {
      // Expect: 100-continue: the server answers "100 Continue" once it has read the headers; the body goes only later.
      const { hostname, port } = new URL(t.baseUrl);
      const body = Buffer.from('{"eventId":"late-body-1","note":"慢速报文"}', 'utf8');
      const sock = connect(Number(port), hostname);
      let got = '';
      let bodySentAfter = 0;
      const answered = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(got.slice(0, 80))}`)), 20000);
        sock.on('error', () => undefined);
        sock.on('data', (c) => {
          got += c.toString('utf8');
          if (bodySentAfter === 0 && got.includes('100 Continue')) {
            bodySentAfter = Date.now(); // the headers arrived before this instant
            setTimeout(() => sock.write(body), 50); // the body comes strictly later
          }
          if (/\r\n\r\n\{.*\}$/s.test(got.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''))) {
            clearTimeout(timer);
            sock.destroy();
            resolve(got);
          }
        });
      });
      sock.write(
        `POST /api/v1/incidents/press HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: ${dev.authorization}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      );
      expect(await answered).toMatch(/HTTP\/1\.1 20[01]/);
      const { rows } = await t.db.query(`SELECT at FROM incident_presses WHERE device_id = $1 AND device_event_id = 'late-body-1'`, [dev.id]);
      expect(rows).toHaveLength(1);
      expect(new Date(rows[0].at).getTime()).toBeLessThanOrEqual(bodySentAfter);
    });

    it('takes the press with what arrived when the device closes its connection mid-body; its retry is the same press', async () => {
      await rawPress(dev.authorization, '{"eventId":"gone-1","note":"报警', 400, { abort: true });
      const note = await waitFor(() => noteOf(dev.id, 'gone-1'), 20000, 'the press of the aborted request');
      expect(note).toMatch(/^报警（设备报文异常：报文未收完连接已断开，按已收到部分处理；截断后 JSON 不完整/);
      expect((await send('press', dev.authorization, '{"eventId":"gone-1","note":"报警"}', 'application/json')).status).toBe(200);
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incident_presses WHERE device_id = $1 AND device_event_id = 'gone-1'`, [dev.id]);
      expect(rows[0].n).toBe(1);
    });

    it('takes the Device scheme in any case (RFC 9110 §11.1): firmware sending "device" or "DEVICE" is not refused — devices never retry a 401', async () => {
      const [, cred] = /^Device (.+)$/.exec(dev.authorization)!;
      const answers = [];
      for (const [i, scheme] of ['device', 'DEVICE', 'dEvIcE'].entries()) {
        const res = await send('press', `${scheme} ${cred}`, `{"eventId":"scheme-${i}"}`, 'application/json');
        answers.push([scheme, res.status]);
      }
      expect(answers.map(([, status]) => [200, 201].includes(status as number))).toEqual([true, true, true]);
      // The secret stays exact: the scheme's case is all that is forgiven.
      const [keyId, secret] = cred.split(':');
      expect(
        (
          await send(
            'press',
            `device ${keyId}:${secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase()}`,
            '{"eventId":"scheme-x"}',
            'application/json',
          )
        ).status,
      ).toBe(401);
    });

    it('reads nothing before the credential: no credential or a wrong one is 401, whatever the body', async () => {
      for (const authorization of [null, 'Device nope:nope', auth(admin).Authorization]) {
        const res = await send('press', authorization, `{"eventId":"big-x","d":"${'A'.repeat(3_000_000)}"}`, 'application/json');
        expect(res.status).toBe(401);
      }
      // An unknown key id and a known one with a wrong secret get the same answer (no existence oracle; both compared in constant time).
      const keyId = /^Device ([^:]+):/.exec(dev.authorization)![1];
      const answers = [];
      for (const authorization of [`Device ${keyId}:wrong-secret`, 'Device dk_doesnotexist1:wrong-secret']) {
        const res = await send('press', authorization, '{"eventId":"cred-x"}', 'application/json');
        const { error } = (await res.json()) as { error: { code: string; message: string } };
        answers.push([res.status, error.code, error.message]);
      }
      expect(answers[0]).toEqual([401, 'AUTH.DEVICE_CREDENTIALS_INVALID', expect.any(String)]);
      expect(answers[1]).toEqual(answers[0]);
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incident_presses WHERE device_event_id = 'big-x'`);
      expect(rows[0].n).toBe(0);
      // Other routes keep their strict edge (hostile-input.e2e.spec.ts, "edge input", has the rest).
      const strict = await fetch(`${t.baseUrl}/api/v1/incidents`, {
        method: 'POST',
        headers: { ...auth(op1.token), 'Content-Type': 'application/json' },
        body: '{"type":"fi',
      });
      expect([strict.status, ((await strict.json()) as { error: { code: string } }).error.code]).toEqual([400, 'MALFORMED_BODY']);
    });
    it("floors a button press at its type's default through the same rule as device reports (alarms.devicePressPriority below it)", async () => {
      const cfg = t.config.alarms;
      const saved = cfg.devicePressPriority;
      cfg.devicePressPriority = 'P4';
      try {
        const res = await send('press', dev.authorization, '{"eventId":"prio-1","type":"fire"}', 'application/json');
        const body = (await res.json()) as { id: string; priority: string };
        expect(body.priority).toBe('P1');
        const other = (await (await send('press', dev.authorization, '{"eventId":"prio-2","type":"device_fault"}', 'application/json')).json()) as {
          id: string;
          priority: string;
        };
        expect(other.priority).toBe('P4'); // device_fault's own default is P4
        for (const id of [body.id, other.id]) {
          await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op1.token)).send({}).expect(200);
          await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome: 'test' }).expect(200);
        }
      } finally {
        cfg.devicePressPriority = saved;
      }
    });

    it('never answers a new press with a closed incident: the same bytes again after the incident closed raise a new alarm', async () => {
      const d = (
        await t
          .http()
          .post('/api/v1/alarm-devices')
          .set(auth(admin))
          .send({ code: 'BTN-SAME', schoolId: seed.schoolA.id, location: '后门', areaKind: 'playground', policeLinked: false })
          .expect(201)
      ).body;
      const c = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'alarm_device', subjectId: d.id }).expect(201)).body;
      const close = async (id: string) => {
        await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op1.token)).send({}).expect(200);
        await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome: 'genuine' }).expect(200);
      };
      const pressesOf = async (eventId: string) =>
        (await t.db.query(`SELECT count(*)::int AS n FROM incident_presses WHERE device_id = $1 AND device_event_id = $2`, [d.id, eventId])).rows[0].n;
      // Firmware that sends the same bytes every time: plain text, a form without an eventId, JSON whose eventId is past the cut.
      const cutJson = `{"note":"${'A'.repeat(t.config.alarms.deviceBodyMaxKb * 1024)}","eventId":"far-1"}`;
      const bodies: [string, string, string][] = [
        ['text', 'ALARM', 'text/plain'],
        ['form', 'note=%E6%8A%A5%E8%AD%A6', 'application/x-www-form-urlencoded'],
        ['cut JSON', cutJson, 'application/json'],
      ];
      for (const [what, body, type] of bodies) {
        const first = await send('press', c.authorization, body, type);
        expect([what, first.status]).toEqual([what, 201]);
        const x = (await first.json()) as { id: string };
        // A retry while the alarm is open is the same press.
        const retry = await send('press', c.authorization, body, type);
        expect([what, retry.status, ((await retry.json()) as { id: string }).id]).toEqual([what, 200, x.id]);
        await close(x.id);
        const next = await send('press', c.authorization, body, type);
        const got = (await next.json()) as { id: string; status: string; created: boolean; pressCount: number };
        expect([what, next.status, got.status, got.created, got.pressCount]).toEqual([what, 201, 'raised', true, 1]);
        expect(got.id).not.toBe(x.id);
        const key = what === 'cut JSON' ? digest(Buffer.from(cutJson).subarray(0, t.config.alarms.deviceBodyMaxKb * 1024)) : digest(body);
        expect([what, await pressesOf(key)]).toEqual([what, 2]); // the first and the new press (the retry was not one)
        await close(got.id);
      }
      // While its alarm is open, the same bytes past the retry window are a press of it (counted), not a silent retry.
      const open = (await (await send('press', c.authorization, 'ALARM', 'text/plain')).json()) as { id: string; pressCount: number };
      await t.db.query(`UPDATE incident_presses SET at = at - make_interval(secs => $2) WHERE device_id = $1`, [
        d.id,
        t.config.alarms.deviceRetryWindowSeconds + 1,
      ]);
      const pressed = await send('press', c.authorization, 'ALARM', 'text/plain');
      expect([pressed.status, await pressed.json()]).toEqual([200, expect.objectContaining({ id: open.id, folded: true, pressCount: open.pressCount + 1 })]);
    });
  });

  it('takes a re-used device event id as the same press only within alarms.deviceEventRepeatWindowSeconds, then as a new alarm (attack A8)', async () => {
    const window = t.config.alarms.deviceEventRepeatWindowSeconds;
    const d = (
      await t
        .http()
        .post('/api/v1/alarm-devices')
        .set(auth(admin))
        .send({ code: 'BTN-A8', schoolId: seed.schoolA.id, location: '西门', areaKind: 'playground' })
        .expect(201)
    ).body;
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'alarm_device', subjectId: d.id }).expect(201)).body;
    const push = (body: object) => t.http().post('/api/v1/incidents/press').set('Authorization', cred.authorization).send(body);
    const close = async (id: string) => {
      await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op1.token)).send({}).expect(200);
      await t.http().post(`/api/v1/incidents/${id}/resolve`).set(auth(op1.token)).send({ outcome: 'genuine' }).expect(200);
    };
    /** Moves the event's presses back past the window (instead of waiting for it). */
    const age = (deviceId: string, eventId: string) =>
      t.db.query(`UPDATE incident_presses SET at = at - make_interval(secs => $3) WHERE device_id = $1 AND device_event_id = $2`, [
        deviceId,
        eventId,
        window + 1,
      ]);
    const first = (await push({ eventId: '1' }).expect(201)).body;
    // Within the window a retry is the same press — even once the incident is resolved (the answer may have been lost).
    expect((await push({ eventId: '1' }).expect(200)).body).toMatchObject({ id: first.id, created: false, folded: false });
    await close(first.id);
    expect((await push({ eventId: '1' }).expect(200)).body).toMatchObject({ id: first.id, status: 'resolved' });
    // Past alarms.deviceRetryWindowSeconds (still inside the repeat window) a closed incident no longer answers it: a new alarm.
    const sameId = (await push({ eventId: 'r1' }).expect(201)).body;
    await close(sameId.id);
    await t.db.query(`UPDATE incident_presses SET at = at - make_interval(secs => $2) WHERE device_id = $1 AND device_event_id = 'r1'`, [
      d.id,
      t.config.alarms.deviceRetryWindowSeconds + 1,
    ]);
    expect(t.config.alarms.deviceRetryWindowSeconds + 1).toBeLessThan(window);
    const fresh = (await push({ eventId: 'r1' }).expect(201)).body;
    expect(fresh).toMatchObject({ status: 'raised', created: true, pressCount: 1 });
    expect(fresh.id).not.toBe(sameId.id);
    await close(fresh.id);
    // The button rebooted and its counter restarted: past the window the same id is a new alarm.
    await age(d.id, '1');
    const again = (await push({ eventId: '1', type: 'violence', note: 'device rebooted, counter reset' }).expect(201)).body;
    expect(again).toMatchObject({ status: 'raised', type: 'violence', created: true });
    expect(again.id).not.toBe(first.id);
    expect((await push({ eventId: '1', type: 'violence' }).expect(200)).body).toMatchObject({ id: again.id, created: false });
    // Exactly once under concurrent retries of a stale id: one new alarm, every other answer the same incident.
    await close(again.id);
    await age(d.id, '1');
    const burst = await Promise.all(Array.from({ length: 20 }, () => push({ eventId: '1', type: 'fire' })));
    expect(burst.map((r) => r.status).sort((a, b) => a - b)).toEqual([...Array(19).fill(200), 201]);
    expect(new Set(burst.map((r) => r.body.id)).size).toBe(1);
    const { rows } = await t.db.query(`SELECT repeat_no, incident_id FROM incident_presses WHERE device_id = $1 AND device_event_id = '1' ORDER BY repeat_no`, [
      d.id,
    ]);
    expect(rows).toEqual([
      { repeat_no: 0, incident_id: first.id },
      { repeat_no: 1, incident_id: again.id },
      { repeat_no: 2, incident_id: burst[0].body.id },
    ]);
    // A stale id while the button's alarm is open is a new press of it (counted), not a silent retry.
    const pressCount = burst[0].body.pressCount;
    await age(d.id, '1');
    expect((await push({ eventId: '1', type: 'fire' }).expect(200)).body).toMatchObject({ id: burst[0].body.id, folded: true, pressCount: pressCount + 1 });
    // Cameras alike (device-reports).
    const camCred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: sideCam.id }).expect(201)).body;
    const report = (body: object) => t.http().post('/api/v1/incidents/device-reports').set('Authorization', camCred.authorization).send(body);
    const fault = (await report({ eventId: 'old-1', type: 'device_fault' }).expect(201)).body;
    await close(fault.id);
    await age(sideCam.id, 'old-1');
    const intrusion = (await report({ eventId: 'old-1', type: 'intrusion', priority: 'P1' }).expect(201)).body;
    expect(intrusion).toMatchObject({ status: 'raised', type: 'intrusion', priority: 'P1' });
  });

  it("folds a button's presses only into an open alarm at its current school and spot: a moved button raises at its new place (attack A13)", async () => {
    const d = (
      await t
        .http()
        .post('/api/v1/alarm-devices')
        .set(auth(admin))
        .send({ code: 'BTN-A13', schoolId: seed.schoolA.id, location: '东门', areaKind: 'playground' })
        .expect(201)
    ).body;
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'alarm_device', subjectId: d.id }).expect(201)).body;
    const push = (eventId: string) => t.http().post('/api/v1/incidents/press').set('Authorization', cred.authorization).send({ eventId });
    const atA = (await push('m1').expect(201)).body;
    expect(atA.schoolId).toBe(seed.schoolA.id);
    expect((await push('m2').expect(200)).body).toMatchObject({ id: atA.id, folded: true });
    // Moved to school B: the next press is an alarm at B, which B's staff see; A's stays A's.
    await t.http().patch(`/api/v1/alarm-devices/${d.id}`).set(auth(admin)).send({ schoolId: seed.schoolB.id }).expect(200);
    const atB = (await push('m3').expect(201)).body;
    expect(atB).toMatchObject({ schoolId: seed.schoolB.id, created: true, status: 'raised' });
    expect(atB.id).not.toBe(atA.id);
    await t.http().get(`/api/v1/incidents/${atB.id}`).set(auth(staffB)).expect(200);
    expect((await push('m4').expect(200)).body).toMatchObject({ id: atB.id, folded: true });
    // Moved within B to another spot: its own alarm there too.
    await t.http().patch(`/api/v1/alarm-devices/${d.id}`).set(auth(admin)).send({ location: '体育馆' }).expect(200);
    const spot = (await push('m5').expect(201)).body;
    expect(spot).toMatchObject({ schoolId: seed.schoolB.id, location: '体育馆' });
    const { rows } = await t.db.query(`SELECT id, press_count FROM incidents WHERE alarm_device_id = $1 ORDER BY first_press_at`, [d.id]);
    expect(rows).toEqual([
      { id: atA.id, press_count: 2 },
      { id: atB.id, press_count: 2 },
      { id: spot.id, press_count: 1 },
    ]);
  });

  it("lets school staff raise an alarm's priority above its type's but not lower it; the control center may, audited (attack A6)", async () => {
    const raise = (token: string, body: object) =>
      t
        .http()
        .post('/api/v1/incidents')
        .set(auth(token))
        .send({ schoolId: seed.schoolA.id, ...body });
    const low = await raise(staffA, { type: 'fire', location: 'A6 实验楼', priority: 'P4' }).expect(400);
    expect(low.body.error).toMatchObject({ code: 'INCIDENT.PRIORITY_BELOW_TYPE', details: { fields: [{ field: 'priority' }], typePriority: 'P1' } });
    const { rows: none } = await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE location = 'A6 实验楼'`);
    expect(none[0].n).toBe(0);
    expect((await raise(staffA, { type: 'fire', location: 'A6 实验楼', priority: 'P1' }).expect(201)).body).toMatchObject({
      priority: 'P1',
      relay: { required: true },
    });
    expect((await raise(staffA, { type: 'other', location: 'A6 机房', priority: 'P1' }).expect(201)).body.priority).toBe('P1'); // more urgent: fine
    const op = (await raise(op1.token, { type: 'fire', location: 'A6 操场', priority: 'P4' }).expect(201)).body;
    expect(op.priority).toBe('P4');
    const { rows } = await t.db.query(`SELECT after FROM audit_log WHERE entity = 'incident' AND entity_id = $1 AND action = 'raise'`, [op.id]);
    expect(rows[0].after).toMatchObject({ type: 'fire', priority: 'P4', typePriority: 'P1' });
  });

  it('takes typed, prioritised reports from cameras (tamper is P3, not relayed)', async () => {
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: gateCam.id }).expect(201)).body;
    const r = await t
      .http()
      .post('/api/v1/incidents/device-reports')
      .set('Authorization', cred.authorization)
      .send({ eventId: 'tmp-1', type: 'tamper' })
      .expect(201);
    expect(r.body).toMatchObject({ type: 'tamper', priority: 'P3', cameraId: gateCam.id, relay: { required: false } });
    await t.http().post('/api/v1/incidents/device-reports').set('Authorization', cred.authorization).send({ eventId: 'tmp-1', type: 'tamper' }).expect(200);
  });
});

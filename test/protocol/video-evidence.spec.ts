import { jpegSize } from '../../src/modules/video/media/jpeg';
import { CheckinEvidenceService } from '../../src/modules/video/checkin-evidence.service';
import { IncidentEvidenceService } from '../../src/modules/video/incident-evidence.service';
import { APP_CONFIG, type AppConfig } from '../../src/config/config';
import { IntakePressure } from '../../src/modules/alarms';
import { createButton, press } from '../support/devices';
import { auth, TestApp } from '../support/harness';
import { until } from '../support/processes';
import { GbCameraOptions } from '../support/video/gb-camera';
import { gbCameraId, GbVideoSite, startGbVideoSite } from '../support/video/gb-video-site';

/**
 * Evidence at an alarm (issue 15 phase 2) with simulated GB/T 28181 cameras: the raise commits
 * VideoIncidentEvidence jobs in the alarms outbox (offsets alarms.evidenceSnapshotSeconds, here
 * 0 and 2 s); each grabs a JPEG of every linked camera and writes one timeline entry per camera —
 * the picture's evidence id (a valid JPEG of the camera's size, SHA-256 checked on read) or, for a
 * camera that is offline or never answers, the reason — within the snapshot bound, never a hang.
 * A job run again writes nothing twice (pictures keyed per incident, round and camera; the outbox
 * row is locked and marked done with the entries). A protection-post check-in at a post with a
 * gate camera stores that camera's picture (or the reason there is none) with the check-in.
 */
const PASSWORD = 'cam-pass-evidence';

interface Entry {
  action: string;
  data: { round: number; afterSeconds: number; cameraId: string; cameraName: string; evidenceId?: string; code?: string; sha256?: string; source?: string };
}

describe('evidence at an alarm (simulated GB/T 28181 cameras)', () => {
  let site: GbVideoSite;
  let t: TestApp;
  let admin: string;
  let operator: string;
  let seed: GbVideoSite['seed'];

  beforeAll(async () => {
    site = await startGbVideoSite({
      password: PASSWORD,
      gb28181: { queryTimeoutMs: 1000 },
      video: { lingerMs: 800, inviteTimeoutMs: 1500, firstMediaTimeoutMs: 3000 },
      // Rounds yield to intake past 5 presses/s here (default 50), so that one button pressed 16 times a second (3× the threshold: a loaded machine that bunches the presses does not dip below it) is a burst.
      overrides: { alarms: { evidenceSnapshotSeconds: [0, 2], yieldToIntakeAtPerSecond: 5, yieldToIntakeMaxSeconds: 60 } },
    });
    ({ t, admin, seed } = site);
    operator = (await t.userToken('operator')).token;
  });

  afterAll(() => site?.close());

  /** A registry camera at the area; `device`: a simulated device that registers (else it never does: offline). */
  const camera = async (areaKind: string, device?: Partial<GbCameraOptions>) => (await site.camera({ areaKind, device })).id;

  const raise = async (areaKind: string) =>
    (await t.http().post('/api/v1/incidents').set(auth(operator)).send({ schoolId: seed.schoolA.id, type: 'other', location: '大门', areaKind }).expect(201))
      .body as { id: string; cameras: { id: string }[] };
  const entries = async (incidentId: string): Promise<Entry[]> =>
    ((await t.http().get(`/api/v1/incidents/${incidentId}`).set(auth(operator)).expect(200)).body.timeline as Entry[]).filter((e) =>
      e.action.startsWith('evidence'),
    );

  /** Until the registry has the camera online (its registration and first keepalive came in). */
  const onlineInRegistry = (id: string) =>
    until(async () => (await t.db.query(`SELECT status FROM cameras WHERE id = $1`, [id])).rows[0]?.status === 'online', 15000, `camera ${id} online`);

  it('takes a picture of each online linked camera at the raise and 2 s later; offline ones only when none is online, said so on the timeline', async () => {
    const online = await camera('main_gate', {});
    const offline = await camera('main_gate');
    await onlineInRegistry(online);
    const inc = await raise('main_gate');
    expect(inc.cameras.map((c) => c.id).sort()).toEqual([online, offline].sort());

    let list: Entry[] = [];
    await until(async () => (list = await entries(inc.id)).length === 2, 20000, 'two evidence entries');
    // Rounds run concurrently (round 0 may wait for the stream that round 1 also uses): order by round.
    list.sort((a, b) => a.data.round - b.data.round);
    const taken = list.filter((e) => e.action === 'evidence');
    // A GB/T 28181 camera has no snapshot URI: its pictures are frames of the stream its INVITE brought, and say so.
    expect(taken.map((e) => [e.data.cameraId, e.data.round, e.data.afterSeconds, e.data.source])).toEqual([
      [online, 0, 0, 'stream'],
      [online, 1, 2, 'stream'],
    ]);
    // A spot whose cameras are all offline: they are tried, and the timeline says why there is no picture.
    const down = await camera('stairwell');
    const dark = await raise('stairwell');
    let failed: Entry[] = [];
    await until(async () => (failed = await entries(dark.id)).length === 2, 20000, 'two failed entries');
    expect(failed.map((e) => [e.action, e.data.cameraId, e.data.code])).toEqual([
      ['evidence_failed', down, 'VIDEO.DEVICE_OFFLINE'],
      ['evidence_failed', down, 'VIDEO.DEVICE_OFFLINE'],
    ]);
    for (const e of taken) {
      const pic = await t
        .http()
        .get(`/api/v1/video/evidence/${e.data.evidenceId}`)
        .set(auth(operator))
        .buffer(true)
        .parse((res, cb) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => cb(null, Buffer.concat(chunks)));
        })
        .expect(200);
      expect(pic.headers['content-type']).toBe('image/jpeg');
      expect(pic.headers['x-content-sha256']).toBe(e.data.sha256);
      expect(pic.headers['x-evidence-source']).toBe('stream');
      expect(jpegSize(pic.body as Buffer)).toEqual({ width: 320, height: 240 });
    }
    const rows = await t.db.query(`SELECT purpose, ref_id, source FROM video_evidence WHERE ref_id = $1 ORDER BY captured_at`, [inc.id]);
    // Sorted: round 0 may wait for a stream start that outlasts round 1's 2 s offset on a loaded machine.
    expect(rows.rows.map((r) => r.purpose).sort()).toEqual(['alarm.raise', 'alarm.raise+2s']);
    expect(rows.rows.map((r) => r.source)).toEqual(['stream', 'stream']);
    const outbox = await t.db.query(
      `SELECT job_id, done_at IS NOT NULL AS done FROM alarm_outbox WHERE job_id LIKE 'evidence-%' AND payload->>'incidentId' = $1`,
      [inc.id],
    );
    expect(outbox.rows.map((r) => [r.job_id, r.done]).sort()).toEqual([
      [`evidence-${inc.id}-0`, true],
      [`evidence-${inc.id}-1`, true],
    ]);
    const events = await t.db.query(`SELECT count(*)::int AS n FROM console_events WHERE type = 'incident.updated' AND payload->>'change' = 'evidence'`);
    expect(events.rows[0].n).toBeGreaterThanOrEqual(2);

    // Run again (a retried or duplicated job): no second picture, no second entry.
    await t.app.get(IncidentEvidenceService).run({ incidentId: inc.id, round: 0, afterSeconds: 0 }, `evidence-${inc.id}-0`);
    expect(await entries(inc.id)).toHaveLength(2);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM video_evidence WHERE ref_id = $1`, [inc.id])).rows[0].n).toBe(2);
  });

  it('a round run later than its scheduled time (held up by a Redis outage) says by how much on every entry', async () => {
    const inc = await raise('main_gate');
    await until(async () => (await entries(inc.id)).length === 2, 20000, 'the rounds on time (one online camera at the gate)');
    // Round 1 as it would run after a two-minute outage: due 120 s ago, not run yet.
    const jobId = `evidence-${inc.id}-1`;
    await t.db.query(`UPDATE alarm_outbox SET done_at = NULL, available_at = available_at - interval '120 seconds' WHERE job_id = $1`, [jobId]);
    await t.db.query(`DELETE FROM incident_timeline WHERE incident_id = $1 AND action LIKE 'evidence%' AND (data->>'round')::int = 1`, [inc.id]);
    await t.app.get(IncidentEvidenceService).run({ incidentId: inc.id, round: 1, afterSeconds: 2 }, jobId);
    const rows = (
      await t.db.query(`SELECT note, data FROM incident_timeline WHERE incident_id = $1 AND action LIKE 'evidence%' AND (data->>'round')::int = 1`, [inc.id])
    ).rows as { note: string; data: { lateBySeconds?: number; scheduledAt?: string } }[];
    expect(rows).toHaveLength(1);
    for (const r of rows) {
      expect(r.data.lateBySeconds).toBeGreaterThanOrEqual(120);
      expect(r.data.scheduledAt).toEqual(expect.any(String));
      expect(r.note).toContain(`晚 ${r.data.lateBySeconds} 秒`);
    }
  });

  it('pictures at most alarms.evidenceMaxCameras cameras per round (each picture of an idle camera is an INVITE and an ffmpeg), online ones first', async () => {
    const cfg = t.app.get<AppConfig>(APP_CONFIG).alarms;
    cfg.evidenceMaxCameras = 1;
    try {
      // Listed first (by name) but offline; the online camera of the spot is the one pictured.
      const offline = (await site.camera({ areaKind: 'canteen', name: 'A 离线' })).id;
      const online = (await site.camera({ areaKind: 'canteen', name: 'B 在线', device: {} })).id;
      await onlineInRegistry(online);
      const inc = await raise('canteen');
      expect(inc.cameras.map((c) => c.id)).toEqual([offline, online]);
      await until(async () => (await entries(inc.id)).length === 2, 20000, 'one entry per round');
      expect((await entries(inc.id)).map((e) => [e.action, e.data.cameraId])).toEqual([
        ['evidence', online],
        ['evidence', online],
      ]);
    } finally {
      cfg.evidenceMaxCameras = 4;
    }
  });

  it('a camera that never answers the INVITE is on the timeline with its reason, bounded by the snapshot timeout', async () => {
    const silent = await camera('playground', { invite: 'silent' });
    const inc = await raise('playground');
    expect(inc.cameras.map((c) => c.id)).toEqual([silent]);
    let list: Entry[] = [];
    await until(async () => (list = await entries(inc.id)).length === 2, 30000, 'two evidence entries');
    expect(list.map((e) => [e.action, e.data.code])).toEqual([
      ['evidence_failed', 'VIDEO.INVITE_TIMEOUT'],
      ['evidence_failed', 'VIDEO.INVITE_TIMEOUT'],
    ]);
  });

  it("a post check-in stores the gate camera's picture of the moment; an offline gate camera is recorded as such", async () => {
    const post = async (code: string, gateCameraId?: string) =>
      (
        await t
          .http()
          .post('/api/v1/protection-posts')
          .set(auth(admin))
          .send({ code, schoolId: seed.schoolA.id, gate: '南大门', windows: [{ kind: 'arrival' }], gateCameraId })
          .expect(201)
      ).body as { id: string; gateCameraId: string | null };
    const gateCam = await camera('side_gate', {});
    const offlineCam = await camera('side_gate');
    const withCam = await post('PP-EV-1', gateCam);
    expect(withCam.gateCameraId).toBe(gateCam);
    const withOffline = await post('PP-EV-2', offlineCam);
    const without = await post('PP-EV-3');

    // A guard of the school each (one person checks in at one post at a time), scanning the post's printed code.
    const guard = (await t.userToken('school_security', seed.schoolA.id)).token;
    const checkIn = async (postId: string, by?: string) => {
      const qrToken = (await t.http().get(`/api/v1/protection-posts/${postId}/qr`).set(auth(admin)).expect(200)).body.payload as string;
      const token = by ?? (await t.userToken('school_security', seed.schoolA.id)).token;
      return (await t.http().post('/api/v1/post-checkins').set(auth(token)).send({ qrToken }).expect(201)).body as { id: string; evidenceStatus: string };
    };
    const a = await checkIn(withCam.id, guard); // the guard who then looks at their picture
    expect(a.evidenceStatus).toBe('pending');
    const b = await checkIn(withOffline.id);
    const c = await checkIn(without.id);
    expect(c.evidenceStatus).toBe('none');

    type Row = {
      id: string;
      evidenceStatus: string;
      evidenceId: string | null;
      evidenceError: string | null;
      evidenceSource: string | null;
      cameraId: string | null;
    };
    let rows: Row[] = [];
    await until(
      async () => {
        rows = (await t.http().get('/api/v1/post-checkins').query({ schoolId: seed.schoolA.id }).set(auth(guard)).expect(200)).body.items as Row[];
        return rows.filter((r) => r.evidenceStatus === 'pending').length === 0;
      },
      20000,
      'check-in pictures taken',
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    // The gate picture says where it came from (a frame of the GB/T 28181 stream); no picture, no source.
    expect(byId.get(a.id)).toMatchObject({ evidenceStatus: 'taken', cameraId: gateCam, evidenceError: null, evidenceSource: 'stream' });
    expect(byId.get(b.id)).toMatchObject({
      evidenceStatus: 'failed',
      cameraId: offlineCam,
      evidenceId: null,
      evidenceError: 'VIDEO.DEVICE_OFFLINE',
      evidenceSource: null,
    });
    expect(byId.get(c.id)).toMatchObject({ evidenceStatus: 'none', cameraId: null, evidenceId: null, evidenceSource: null });
    // The guard sees the picture of their own check-in: a JPEG of the gate camera's size.
    const pic = await t
      .http()
      .get(`/api/v1/video/evidence/${byId.get(a.id)!.evidenceId}`)
      .set(auth(guard))
      .buffer(true)
      .parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (x: Buffer) => chunks.push(x));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(jpegSize(pic.body as Buffer)).toEqual({ width: 320, height: 240 });
    const ev = await t.db.query(`SELECT purpose, ref_id, camera_id, source FROM video_evidence WHERE ref_id = $1`, [a.id]);
    expect(ev.rows).toEqual([{ purpose: 'post.checkin', ref_id: a.id, camera_id: gateCam, source: 'stream' }]);

    // Run again: nothing changes (only a pending check-in is written; the picture is keyed).
    expect(await t.app.get(CheckinEvidenceService).run({ checkinId: a.id })).toEqual({ status: 'skipped' });

    // A gate camera of another school is refused, naming the field.
    const otherDevice = gbCameraId();
    const otherCam = (
      await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: seed.schoolB.id, deviceId: otherDevice, channelId: otherDevice, name: '乙校门', areaKind: 'main_gate' })
        .expect(201)
    ).body.id as string;
    const bad = await t.http().patch(`/api/v1/protection-posts/${withCam.id}`).set(auth(admin)).send({ gateCameraId: otherCam }).expect(400);
    expect(JSON.stringify(bad.body)).toContain('gateCameraId');
  });

  it('during a burst of presses the rounds wait for intake (alarms.yieldToIntakeAtPerSecond), then run and say how late they are', async () => {
    const pressure = t.app.get(IntakePressure);
    // A button at a spot without cameras (its presses open one incident and fold into it: no evidence of their own).
    const button = await createButton(t, admin, { schoolId: seed.schoolA.id, code: 'YIELD-1', areaKind: 'dormitory', location: '宿舍' });
    const cam = await camera('parking', {});
    await onlineInRegistry(cam);
    let pressing = true;
    let n = 0;
    const presses: Promise<void>[] = [];
    const presser = setInterval(() => {
      if (pressing) presses.push(press(t.baseUrl, button, `yield-${++n}`).then((r) => expect(r.status).toBeLessThan(300)));
    }, 62);
    try {
      await until(() => pressure.pressed(), 10000, 'intake pressed (16 presses/s)');
      const inc = await raise('parking'); // one online camera there: two rounds due at 0 and 2 s
      await new Promise((r) => setTimeout(r, 7000));
      expect(pressure.pressed()).toBe(true);
      expect(await entries(inc.id)).toEqual([]); // both rounds are due, and wait while the presses go on
      pressing = false;
      await until(() => !pressure.pressed(), 5000, 'the burst over');
      await until(async () => (await entries(inc.id)).length === 2, 20000, 'both rounds once the burst is over');
      const rows = (
        await t.db.query(`SELECT note, data FROM incident_timeline WHERE incident_id = $1 AND action LIKE 'evidence%' AND (data->>'round')::int = 0`, [inc.id])
      ).rows as { note: string; data: { lateBySeconds?: number } }[];
      expect(rows).toHaveLength(1);
      expect(rows[0].data.lateBySeconds).toBeGreaterThanOrEqual(6);
      expect(rows[0].note).toContain(`晚 ${rows[0].data.lateBySeconds} 秒`);
    } finally {
      pressing = false;
      clearInterval(presser);
      await Promise.all(presses);
    }
    expect(n).toBeGreaterThan(60);
  }, 60_000);

  it('an incident without cameras gets no evidence jobs', async () => {
    const inc = await raise('dormitory');
    expect(inc.cameras).toEqual([]);
    const outbox = await t.db.query(`SELECT count(*)::int AS n FROM alarm_outbox WHERE job_id LIKE $1`, [`evidence-${inc.id}-%`]);
    expect(outbox.rows[0].n).toBe(0);
  });
});

import { VideoService } from '../../src/modules/video/video.service';
import { EvidenceService } from '../../src/modules/video/evidence.service';
import { snapshotHostAllowed } from '../../src/modules/video/snapshot-uri';
import { metrics } from '../../src/infra/observability/metrics';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { until } from '../support/processes';
import { startOnvifDevice } from '../support/video/onvif-device';
import { RtspSource, startRtspSource } from '../support/video/rtsp-source';
import { SnapshotCamera, startSnapshotCamera } from '../support/video/snapshot-camera';

/**
 * ONVIF snapshot URIs in use (issue 15): a camera whose probe found a snapshot URI gives its
 * pictures — snapshots, evidence at an alarm — by an HTTP GET of the JPEG it encodes itself, with its
 * kept ONVIF account by HTTP Digest (checked by our fake camera as a real one checks it), and no
 * stream pull (no ffmpeg). A GET that fails (wrong account, hung, HTML, too large, another host)
 * falls back to the RTSP pull and says so; without a stream to fall back to, the snapshot fails
 * with the GET's own code. Hosts other than the camera's ONVIF host are never asked (SSRF).
 */
const ACCOUNT = { username: 'admin', password: 'Snap-Pass-41c9' };
const URI_TIMEOUT_MS = 800;

describe('ONVIF snapshot URI', () => {
  let t: TestApp;
  let admin: string;
  let operator: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let rtsp: RtspSource;
  let cam: SnapshotCamera;
  const closers: (() => Promise<void>)[] = [];
  let n = 0;

  beforeAll(async () => {
    t = await startApp({
      video: {
        lingerMs: 300,
        firstMediaTimeoutMs: 6000,
        rtspTimeoutMs: 3000,
        onvifTimeoutMs: 800,
        onvifAllowedNetworks: ['127.0.0.0/8'], // the fake cameras run on loopback (refused by default)
        snapshotCacheMs: 0,
        snapshotFailureMemoMs: 0,
        snapshotTimeoutMs: 8000,
        snapshotUriTimeoutMs: URI_TIMEOUT_MS,
        snapshotUriMaxBytes: 65536,
      },
      alarms: { evidenceSnapshotSeconds: [0] },
    });
    admin = (await t.userToken('admin')).token;
    operator = (await t.userToken('operator')).token;
    seed = await seedMinimal(t, admin);
    rtsp = await startRtspSource({ auth: ACCOUNT });
    closers.push(() => rtsp.stop());
    cam = await startSnapshotCamera(ACCOUNT);
    closers.push(() => cam.stop());
  });

  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await t?.close();
  });

  /** A camera with the ONVIF account kept, its stream address (or none) and a snapshot URI as a probe would have kept it. */
  async function camera(opts: { streamUrl?: string; snapshotPath?: string; snapshotUrl?: string; password?: string; areaKind?: string }): Promise<string> {
    const id = `3402000000132${String(40000000 + ++n).slice(1)}`;
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({
        schoolId: seed.schoolA.id,
        deviceId: id,
        channelId: id,
        name: `Snap ${n}`,
        areaKind: opts.areaKind ?? 'main_gate',
        streamUrl: opts.streamUrl ?? '',
      })
      .expect(201);
    const cameraId = res.body.id as string;
    await t
      .http()
      .patch(`/api/v1/cameras/${cameraId}/media`)
      .set(auth(admin))
      .send({ onvifHost: cam.host, onvifPort: 80, onvifUsername: ACCOUNT.username, onvifPassword: opts.password ?? ACCOUNT.password })
      .expect(200);
    const url = opts.snapshotUrl ?? (opts.snapshotPath ? cam.url(opts.snapshotPath) : '');
    await t.db.query(`UPDATE camera_media_settings SET snapshot_url = $2 WHERE camera_id = $1`, [cameraId, url]);
    return cameraId;
  }

  const snapshot = (id: string) =>
    t
      .http()
      .get(`/api/v1/cameras/${id}/snapshot`)
      .set(auth(operator))
      .buffer(true)
      .parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      });
  const evidence = (id: string) => t.http().post(`/api/v1/cameras/${id}/evidence`).set(auth(operator)).send({ purpose: 'manual' });
  const counter = async (name: string, labels: Record<string, string>) => {
    const m = (await metrics.getSingleMetric(name)?.get())?.values ?? [];
    return m.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
  };
  const pulls = () => counter('shouhu_video_events_total', { event: 'started' });

  it("probe → snapshot URI → the camera's own JPEG over HTTP Digest, no stream pulled", async () => {
    // The full chain: the probe keeps the snapshot URI the device answers (GetSnapshotUri)…
    const device = await startOnvifDevice({ ...ACCOUNT, streamUri: rtsp.url, snapshotUri: cam.url('/snap') });
    closers.push(() => device.stop());
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({
        schoolId: seed.schoolA.id,
        deviceId: '34020000001320000901',
        channelId: '34020000001320000901',
        name: 'Probed',
        areaKind: 'main_gate',
      })
      .expect(201);
    const id = res.body.id as string;
    const probed = await t
      .http()
      .post(`/api/v1/cameras/${id}/onvif-probe`)
      .set(auth(admin))
      .send({ onvifHost: device.host, onvifPort: device.port, onvifUsername: ACCOUNT.username, onvifPassword: ACCOUNT.password })
      .expect(200);
    expect(probed.body.settings.snapshotUrl).toBe(cam.url('/snap'));

    // …and a snapshot is that URI's JPEG: asked without an account, challenged, asked again with a Digest the camera accepts.
    const before = cam.requests.length;
    const rtspBefore = rtsp.requests.length;
    const pullsBefore = await pulls();
    const shot = await snapshot(id).expect(200);
    expect(shot.headers['x-snapshot-source']).toBe('snapshot_uri');
    expect(Buffer.compare(shot.body as Buffer, cam.jpeg)).toBe(0);
    expect(cam.requests.slice(before)).toEqual([
      { path: '/snap', auth: 'none' },
      { path: '/snap', auth: 'ok', scheme: 'Digest', nc: '00000001' },
    ]);
    // No stream: the RTSP camera was not asked, no upstream started, none runs.
    expect(rtsp.requests.length).toBe(rtspBefore);
    expect(await pulls()).toBe(pullsBefore);
    expect(t.app.get(VideoService).stream(id)).toBeUndefined();
    // The password stays out of what the API shows.
    expect(JSON.stringify((await t.http().get(`/api/v1/cameras/${id}/media`).set(auth(admin)).expect(200)).body)).not.toContain(ACCOUNT.password);
  });

  it('Basic when that is what the camera asks; a wrong password is 401 → the RTSP pull stands in, and the evidence says so', async () => {
    const basic = await camera({ snapshotPath: '/basic/snap' });
    const ok = await evidence(basic).expect(201);
    expect(ok.body).toMatchObject({ source: 'snapshot_uri', width: 64, height: 48 });
    // Kept with the record, not only said in the answer: read back, the picture still says where it came from.
    expect((await t.db.query(`SELECT source FROM video_evidence WHERE id = $1`, [ok.body.id])).rows).toEqual([{ source: 'snapshot_uri' }]);
    expect(cam.requests.filter((r) => r.path === '/basic/snap').map((r) => [r.auth, r.scheme])).toEqual([
      ['none', undefined],
      ['ok', 'Basic'],
    ]);

    // The stream pull uses the same kept account: an RTSP source that asks for none stands in here.
    const open = await startRtspSource();
    closers.push(() => open.stop());
    const fallback = await camera({ streamUrl: open.url, snapshotPath: '/snap', password: 'not-the-password' });
    const before = cam.requests.length;
    const rec = await evidence(fallback).expect(201);
    expect(rec.body).toMatchObject({ source: 'stream', snapshotUriError: 'VIDEO.SNAPSHOT_URI_AUTH_FAILED', width: 320, height: 240 });
    expect(cam.requests.slice(before).map((r) => r.auth)).toEqual(['none', 'refused']);
    expect(open.requests.length).toBeGreaterThan(0);
    const rows = await t.db.query(`SELECT source FROM video_evidence WHERE camera_id = $1`, [fallback]);
    expect(rows.rows).toEqual([{ source: 'stream' }]);
  });

  it("HTTP Digest: the next picture answers the camera's last nonce with the next count (one request); a rotated nonce costs one more, a wrong account is still refused", async () => {
    const id = await camera({ snapshotPath: '/snap' }); // no stream address: every picture is the snapshot URI's
    const asked = (from: number) => cam.requests.slice(from).map((r) => [r.auth, r.nc ?? null]);
    let n = cam.requests.length;
    await evidence(id).expect(201);
    expect(asked(n)).toEqual([
      ['none', null],
      ['ok', '00000001'],
    ]);
    // The second picture and on: one request each, the same nonce, the count in 8 hex digits (RFC 7616 §3.4).
    n = cam.requests.length;
    expect((await evidence(id).expect(201)).body.source).toBe('snapshot_uri');
    for (let i = 3; i <= 11; i++) expect((await snapshot(id).expect(200)).headers['x-snapshot-source']).toBe('snapshot_uri');
    expect(asked(n)).toEqual(['02', '03', '04', '05', '06', '07', '08', '09', '0a', '0b'].map((c) => ['ok', `000000${c}`]));

    // A camera that takes each nonce once: the remembered one is answered 401 stale, the new challenge answered — still a picture, one request more.
    const rotating = await camera({ snapshotPath: '/rotate/snap' });
    n = cam.requests.length;
    await evidence(rotating).expect(201);
    await evidence(rotating).expect(201);
    expect(asked(n).map(([a]) => a)).toEqual(['none', 'ok', 'stale', 'ok']);
    // Cameras that answer a reused nonce 400 or 403 (not 401): asked afresh (attack pass 6 F1: they lost the URI after the first picture).
    for (const strict of ['/strict400/snap', '/strict403/snap']) {
      const s = await camera({ snapshotPath: strict });
      n = cam.requests.length;
      for (let i = 0; i < 3; i++) expect({ strict, source: (await evidence(s).expect(201)).body.source }).toEqual({ strict, source: 'snapshot_uri' });
      // The second picture: the remembered answer refused, asked afresh; from then on afresh at once (two requests, as before memory).
      expect(asked(n).map(([a]) => a)).toEqual(['none', 'ok', 'stale', 'none', 'ok', 'none', 'ok']);
    }

    // A wrong account: the remembered nonce's answer is refused, so is a fresh one — AUTH_FAILED, no third try —
    // and nothing is kept: with the right account back, the camera is asked afresh.
    const setPassword = (password: string) => t.http().patch(`/api/v1/cameras/${id}/media`).set(auth(admin)).send({ onvifPassword: password }).expect(200);
    await setPassword('not-the-password');
    n = cam.requests.length;
    expect((await evidence(id).expect(502)).body.error.code).toBe('VIDEO.SNAPSHOT_URI_AUTH_FAILED');
    expect(asked(n).map(([a]) => a)).toEqual(['refused', 'refused']);
    await setPassword(ACCOUNT.password);
    n = cam.requests.length;
    await evidence(id).expect(201);
    expect(asked(n)).toEqual([
      ['none', null],
      ['ok', '00000001'],
    ]);
  });

  it('a hung snapshot URI is given up after video.snapshotUriTimeoutMs: the stream stands in, or with no stream the snapshot fails VIDEO.SNAPSHOT_URI_TIMEOUT', async () => {
    const open = await startRtspSource();
    closers.push(() => open.stop());
    const withStream = await camera({ streamUrl: open.url, snapshotPath: '/hang' });
    const shot = await snapshot(withStream).expect(200);
    expect(shot.headers['x-snapshot-source']).toBe('stream');

    const bare = await camera({ snapshotPath: '/hang' });
    const started = Date.now();
    const res = await snapshot(bare).expect(504);
    const took = Date.now() - started;
    expect(JSON.parse((res.body as Buffer).toString()).error).toMatchObject({ code: 'VIDEO.SNAPSHOT_URI_TIMEOUT', details: { timeoutMs: URI_TIMEOUT_MS } });
    expect(took).toBeGreaterThanOrEqual(URI_TIMEOUT_MS - 50);
    expect(took).toBeLessThan(URI_TIMEOUT_MS + 3000);
  });

  it('an HTML page or an oversized answer is refused (VIDEO.SNAPSHOT_URI_NOT_JPEG), and nothing is stored', async () => {
    const html = await camera({ snapshotPath: '/html' });
    const a = await evidence(html).expect(502);
    expect(a.body.error).toMatchObject({ code: 'VIDEO.SNAPSHOT_URI_NOT_JPEG', details: { reason: 'not_jpeg' } });
    expect(a.body.error.message).toMatch(/text\/html/);
    // What the device chose — its snapshot path (GetSnapshotUri), its Content-Type's words — is not quoted back.
    const worded = await camera({ snapshotPath: '/html/DEVICE-WORDS-call-400-000-0000' });
    const w = await evidence(worded).expect(502);
    expect([w.body.error.code, w.body.error.message]).toEqual(['VIDEO.SNAPSHOT_URI_NOT_JPEG', expect.stringMatching(/text\/html/)]);
    expect(JSON.stringify(w.body)).not.toMatch(/DEVICE-WORDS|400-000/);
    const big = await camera({ snapshotPath: '/big' });
    const b = await evidence(big).expect(502);
    expect(b.body.error).toMatchObject({ code: 'VIDEO.SNAPSHOT_URI_NOT_JPEG', details: { reason: 'too_large' } });
    const rows = await t.db.query(`SELECT count(*)::int AS n FROM video_evidence WHERE camera_id = ANY($1::uuid[])`, [[html, big, worded]]);
    expect(rows.rows[0].n).toBe(0);
  });

  it("only the camera's ONVIF host is asked: another host, or a redirect to one, is refused (VIDEO.SNAPSHOT_URI_REFUSED)", async () => {
    const before = cam.requests.length;
    // 'localhost' is this machine, but not the camera's ONVIF host (127.0.0.1): the metadata service or Redis would be refused alike.
    const other = await camera({ snapshotUrl: `http://localhost:${cam.port}/snap` });
    const a = await snapshot(other).expect(502);
    expect(JSON.parse((a.body as Buffer).toString()).error.code).toBe('VIDEO.SNAPSHOT_URI_REFUSED');
    expect(cam.requests.length).toBe(before);
    const redirect = await camera({ snapshotPath: `/redirect?to=${encodeURIComponent(`http://localhost:${cam.port}/snap`)}` });
    const b = await snapshot(redirect).expect(502);
    expect(JSON.parse((b.body as Buffer).toString()).error.code).toBe('VIDEO.SNAPSHOT_URI_REFUSED');
    expect(cam.requests.slice(before).map((r) => r.path)).toEqual(['/redirect']);
    // A redirect on the same host is followed (and the camera's challenge answered there).
    const same = await camera({ snapshotPath: `/redirect?to=${encodeURIComponent('/snap')}` });
    expect((await snapshot(same).expect(200)).headers['x-snapshot-source']).toBe('snapshot_uri');
    // video.snapshotUriAllowHosts: names and subnets.
    expect(snapshotHostAllowed('10.20.3.4', '192.168.1.9', ['10.20.0.0/16'])).toBe(true);
    expect(snapshotHostAllowed('169.254.169.254', '192.168.1.9', ['10.20.0.0/16'])).toBe(false);
    expect(snapshotHostAllowed('NVR.school.local', 'cam1', ['nvr.school.local'])).toBe(true);
    expect(snapshotHostAllowed('[::1]', '::1', [])).toBe(true);
    expect(snapshotHostAllowed('127.0.0.1', null, [])).toBe(false);
  });

  it('live-source: a snapshot-only camera is not live (the console shows its snapshots instead of asking for a stream: no 409)', async () => {
    const liveSource = (id: string) => t.http().get(`/api/v1/cameras/${id}/live-source`).set(auth(operator));
    const snapOnly = await camera({ snapshotPath: '/snap' });
    expect((await liveSource(snapOnly).expect(200)).body).toEqual({ cameraId: snapOnly, live: false, snapshotUri: true });
    // …and its snapshot is there (what the player then shows), while a stream is refused as before.
    expect((await snapshot(snapOnly).expect(200)).headers['x-snapshot-taken-at']).toEqual(expect.any(String));
    expect((await t.http().post(`/api/v1/cameras/${snapOnly}/stream`).set(auth(operator)).expect(409)).body.error.code).toBe('VIDEO.NO_STREAM_ADDRESS');
    const both = await camera({ streamUrl: rtsp.url, snapshotPath: '/snap' });
    expect((await liveSource(both).expect(200)).body).toEqual({ cameraId: both, live: true, snapshotUri: true });
    const neither = await camera({});
    expect((await liveSource(neither).expect(200)).body).toEqual({ cameraId: neither, live: false, snapshotUri: false });
    const streamOnly = await camera({ streamUrl: rtsp.url });
    expect((await liveSource(streamOnly).expect(200)).body).toEqual({ cameraId: streamOnly, live: true, snapshotUri: false });
    // 401 without a session, 400 on a malformed id, 404 for an unknown camera.
    await t.http().get(`/api/v1/cameras/${snapOnly}/live-source`).expect(401);
    expect((await t.http().get('/api/v1/cameras/not-a-uuid/live-source').set(auth(operator)).expect(400)).body.error.details.fields).toBeDefined();
    await t.http().get('/api/v1/cameras/00000000-0000-4000-8000-000000000000/live-source').set(auth(operator)).expect(404);
  });

  it('an evidence round at an alarm takes the picture through the snapshot URI, without pulling the stream', async () => {
    const id = await camera({ streamUrl: rtsp.url, snapshotPath: '/snap', areaKind: 'stairwell' });
    const rtspBefore = rtsp.requests.length;
    const pullsBefore = await pulls();
    const inc = (
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(operator))
        .send({ schoolId: seed.schoolA.id, type: 'other', location: '楼梯', areaKind: 'stairwell' })
        .expect(201)
    ).body as { id: string; cameras: { id: string }[] };
    expect(inc.cameras.map((c) => c.id)).toEqual([id]);
    type Entry = { action: string; data: { cameraId: string; evidenceId?: string; source?: string; code?: string } };
    let list: Entry[] = [];
    await until(
      async () =>
        (list = ((await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(operator)).expect(200)).body.timeline as Entry[]).filter((e) =>
          e.action.startsWith('evidence'),
        )).length === 1,
      20000,
      'the evidence entry',
    );
    expect(list[0]).toMatchObject({ action: 'evidence', data: { cameraId: id, source: 'snapshot_uri', evidenceId: expect.any(String) } });
    const pic = await t
      .http()
      .get(`/api/v1/video/evidence/${list[0].data.evidenceId}`)
      .set(auth(operator))
      .buffer(true)
      .parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(Buffer.compare(pic.body as Buffer, cam.jpeg)).toBe(0);
    expect(pic.headers['x-evidence-source']).toBe('snapshot_uri');
    // A retried job finds the picture it took (by its key) and reads its source back from the record: no second GET.
    const asked = cam.requests.length;
    const again = await t.app.get(EvidenceService).captureBounded(id, 'alarm.raise', inc.id, `alarm.raise:${inc.id}:${id}`);
    expect(again.record).toMatchObject({ id: list[0].data.evidenceId, source: 'snapshot_uri' });
    expect(cam.requests.length).toBe(asked);
    // No RTSP request, no upstream started: no ffmpeg for this picture.
    expect(rtsp.requests.length).toBe(rtspBefore);
    expect(await pulls()).toBe(pullsBefore);
    expect(await counter('shouhu_video_snapshot_sources_total', { source: 'snapshot_uri', result: 'ok' })).toBeGreaterThanOrEqual(1);
  });
});

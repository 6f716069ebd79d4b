import { createSocket } from 'node:dgram';
import { VideoService } from '../../src/modules/video/video.service';
import { jpegSize } from '../../src/modules/video/media/jpeg';
import { auth, TestApp } from '../support/harness';
import { until } from '../support/processes';
import { makeClip } from '../support/video/elementary';
import { GbCamera, GbCameraOptions } from '../support/video/gb-camera';
import { GB_PLATFORM_ID, gbCameraId, GbVideoSite, startGbVideoSite } from '../support/video/gb-video-site';
import { openViewer, probe } from '../support/video/player-client';
import { moofStartsWithKeyframe } from '../../src/modules/video/media/fmp4';
import { StreamTokens } from '../../src/modules/video/stream-token';

/**
 * GB/T 28181 live play end to end with our simulated camera (test/support/video/gb-camera.ts):
 * the camera registers with digest, the platform INVITEs it (SDP offer with y= SSRC, PS/90000),
 * ACKs, receives real-camera PS over RTP (UDP; TCP passive and active with RFC 4571 framing),
 * remuxes it with ffmpeg (-c copy) and fans fMP4 out to WebSocket players; BYE after the linger.
 * Every check decodes what a player received with ffprobe.
 */
const PASSWORD = 'cam-pass-0001';

describe('GB/T 28181 live video (simulated camera)', () => {
  let site: GbVideoSite;
  let t: TestApp;
  let admin: string;
  let seed: GbVideoSite['seed'];

  beforeAll(async () => {
    site = await startGbVideoSite({
      password: PASSWORD,
      gb28181: { queryTimeoutMs: 1000 },
      video: { lingerMs: 800, inviteTimeoutMs: 1500, firstMediaTimeoutMs: 3000, stallTimeoutMs: 2500, maxPlaybacksPerCamera: 2, playbackOverrunSeconds: 30 },
    });
    ({ t, admin, seed } = site);
  });

  afterAll(() => site?.close());

  /** A registry camera and a registered simulated device for it. */
  async function camera(o: Partial<GbCameraOptions> = {}) {
    const c = await site.camera({ device: o });
    return { id: c.id, cam: c.cam! };
  }

  const play = (id: string, token = admin) => t.http().post(`/api/v1/cameras/${id}/stream`).set(auth(token));

  it('plays over UDP: INVITE with the GB offer, ACK, PS over RTP remuxed to fMP4 that decodes; BYE after the last viewer and the linger', async () => {
    const { id, cam } = await camera();
    const res = await play(id).expect(200);
    expect(res.body).toMatchObject({ cameraId: id, width: 320, height: 240, transcoded: false });
    expect(res.body.codec).toMatch(/^avc1\.4d40/);
    expect(res.body.url).toMatch(/^\/api\/v1\/video\/ws\?camera=/);
    const offer = cam.log.find((l) => l.method === 'INVITE')!.body;
    expect(offer).toMatch(/^m=video \d+ RTP\/AVP 96\r$/m);
    expect(offer).toMatch(/^a=rtpmap:96 PS\/90000\r$/m);
    expect(offer).toMatch(/^a=recvonly\r$/m);
    expect(offer).toMatch(/^y=0\d{9}\r$/m);
    expect(cam.dialogs('ACK')).toBe(1);

    const v = await openViewer(t.baseUrl, res.body.url);
    await v.frames(40);
    v.close();
    await v.closed;
    expect(v.watched.meta[0]).toMatchObject({ codec: res.body.codec, width: 320, height: 240 });
    const p = await probe(Buffer.concat(v.watched.binary));
    expect(p).toMatchObject({ codec: 'h264', width: 320, height: 240 });
    expect(p.frames).toBeGreaterThanOrEqual(30);

    await until(() => cam.dialogs('BYE') === 1, 5000, 'BYE after the linger');
    expect(t.app.get(VideoService).stream(id)).toBeUndefined();
    expect(cam.plays.size).toBe(0);
  });
  it('plays over TCP, platform passive (the camera connects) and active (we connect), RFC 4571 framed', async () => {
    const video = t.app.get(VideoService);
    for (const mode of ['tcp-passive', 'tcp-active'] as const) {
      video.cfg.gbTransport = mode;
      try {
        const { id, cam } = await camera({ transport: 'TCP' });
        const res = await play(id).expect(200);
        const offer = cam.log.find((l) => l.method === 'INVITE')!.body;
        expect(offer).toMatch(/^m=video \d+ TCP\/RTP\/AVP 96\r$/m);
        expect(offer).toContain(`a=setup:${mode === 'tcp-passive' ? 'passive' : 'active'}`);
        const v = await openViewer(t.baseUrl, res.body.url);
        await v.frames(30);
        v.close();
        const p = await probe(Buffer.concat(v.watched.binary));
        expect(p.frames).toBeGreaterThanOrEqual(20);
        expect(video.stream(id)?.rtpStats?.badSsrc ?? 0).toBe(0);
        await until(() => cam.dialogs('BYE') === 1, 5000, `BYE (${mode})`);
      } finally {
        video.cfg.gbTransport = 'udp';
      }
    }
  });

  it('shares one INVITE between viewers; a late viewer starts at once with the init segment and a keyframe', async () => {
    const { id, cam } = await camera({ reorder: true });
    const first = await play(id).expect(200);
    const a = await openViewer(t.baseUrl, first.body.url);
    await a.frames(20);
    const second = await play(id).expect(200);
    const b = await openViewer(t.baseUrl, second.body.url);
    await b.frames(10);
    expect(cam.dialogs('INVITE')).toBe(1);
    expect(b.watched.meta).toHaveLength(1);
    // binary[0] is the init segment; the first fragment a late viewer gets is a keyframe.
    expect(moofStartsWithKeyframe(b.watched.binary[1])).toBe(true);
    expect((await probe(Buffer.concat(b.watched.binary))).frames).toBeGreaterThanOrEqual(8);
    expect(t.app.get(VideoService).stream(id)?.rtpStats?.reordered).toBeGreaterThan(0);
    a.close();
    await a.closed;
    await new Promise((r) => setTimeout(r, 1200)); // past the linger: b still watches, so no BYE
    expect(cam.dialogs('BYE')).toBe(0);
    b.close();
    await until(() => cam.dialogs('BYE') === 1, 5000, 'BYE after the last viewer');
    expect(cam.dialogs('INVITE')).toBe(1);
  });

  it('does not remember "offline" against a camera: one that registers a moment after a failed snapshot is pictured at once', async () => {
    const { id, deviceId } = await site.camera();
    const first = await t.http().get(`/api/v1/cameras/${id}/snapshot`).set(auth(admin)).expect(503);
    expect(first.body.error.code).toBe('VIDEO.DEVICE_OFFLINE');
    const cam = new GbCamera({ deviceId, password: PASSWORD, platform: { host: '127.0.0.1', port: site.sipPort, id: GB_PLATFORM_ID }, clip: site.clip });
    try {
      await cam.start();
      await t.http().get(`/api/v1/cameras/${id}/snapshot`).set(auth(admin)).expect(200);
    } finally {
      await cam.stop();
    }
  });

  it('answers clear errors and never hangs: unknown camera 404, no address 409, device offline 503, busy 503, no answer 504, no media 504 (and BYE)', async () => {
    const missing = await play('00000000-0000-4000-8000-000000000000').expect(404);
    expect(missing.body.error.code).toBe('CAMERA.NOT_FOUND');
    const deviceId = gbCameraId();
    const webrtc = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId, channelId: deviceId, name: 'x', areaKind: 'other', streamUrl: 'webrtc://nvr/1' })
      .expect(201);
    expect((await play(webrtc.body.id).expect(409)).body.error.code).toBe('VIDEO.NO_STREAM_ADDRESS');
    const offlineId = gbCameraId();
    const offline = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: offlineId, channelId: offlineId, name: 'y', areaKind: 'other' })
      .expect(201);
    expect((await play(offline.body.id).expect(503)).body.error.code).toBe('VIDEO.DEVICE_OFFLINE');
    expect((await t.http().get(`/api/v1/cameras/${offline.body.id}/snapshot`).set(auth(admin)).expect(503)).body.error.code).toBe('VIDEO.DEVICE_OFFLINE');

    const busy = await camera({ invite: 'busy' });
    expect((await play(busy.id).expect(503)).body.error.code).toBe('VIDEO.DEVICE_BUSY');
    expect(busy.cam.dialogs('ACK')).toBe(1); // the 486 is ACKed in its transaction

    const silent = await camera({ invite: 'silent' });
    const timedOut = await play(silent.id).expect(504);
    expect(timedOut.body.error.code).toBe('VIDEO.INVITE_TIMEOUT');
    expect(silent.cam.count('INVITE')).toBeGreaterThan(1); // retransmitted over UDP (Timer A)

    const mute = await camera({ invite: 'no-media' });
    expect((await play(mute.id).expect(504)).body.error.code).toBe('VIDEO.NO_MEDIA');
    await until(() => mute.cam.dialogs('BYE') === 1, 3000, 'BYE of the stream that sent nothing');
    expect(t.app.get(VideoService).stream(mute.id)).toBeUndefined();
  });

  it('keeps playing through hostile RTP on its port: garbage, a wrong SSRC or the right one from another sender are all dropped', async () => {
    const { id, cam } = await camera();
    const v = await openViewer(t.baseUrl, (await play(id).expect(200)).body.url);
    await v.frames(5);
    const offer = cam.log.find((l) => l.method === 'INVITE')!.body;
    const port = Number(/^m=video (\d+) /m.exec(offer)![1]);
    const ssrc = Number(/^y=(\d+)/m.exec(offer)![1]);
    const rtp = (s: number, seq: number) => {
      const h = Buffer.alloc(12 + 200, 0xab);
      h[0] = 0x80;
      h[1] = 96;
      h.writeUInt16BE(seq, 2);
      h.writeUInt32BE(s >>> 0, 8);
      return h;
    };
    const attacker = createSocket('udp4');
    await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
    for (let i = 0; i < 50; i++) {
      attacker.send(Buffer.from('definitely not RTP'), port, '127.0.0.1');
      attacker.send(rtp(ssrc + 1, i), port, '127.0.0.1');
      attacker.send(rtp(ssrc, i), port, '127.0.0.1');
    }
    const stats = t.app.get(VideoService).stream(id)!.rtpStats!;
    // The camera's first packet fixed the source: everything else is refused before it is parsed.
    await until(() => stats.foreignSource >= 150, 3000, 'the hostile packets counted');
    attacker.close();
    const n = v.watched.binary.length;
    await v.frames(n + 15);
    expect(v.watched.errors).toEqual([]);
    expect((await probe(Buffer.concat(v.watched.binary))).frames).toBeGreaterThanOrEqual(n + 10);
    v.close();
  });

  it('follows a device that answers with an SSRC of its own (y= in its answer), as real devices do', async () => {
    const { id, cam } = await camera({ ownSsrc: '0100009999' });
    const v = await openViewer(t.baseUrl, (await play(id).expect(200)).body.url);
    await v.frames(10);
    v.close();
    expect(cam.log.find((l) => l.method === 'INVITE')!.body).not.toContain('y=0100009999');
    expect(t.app.get(VideoService).stream(id)?.rtpStats?.badSsrc ?? 0).toBe(0);
  });

  it('tells viewers why a stream ends: the camera hangs up (its BYE), or stalls (no media: stopped, BYE sent)', async () => {
    const a = await camera();
    const v1 = await openViewer(t.baseUrl, (await play(a.id).expect(200)).body.url);
    await v1.frames(5);
    a.cam.hangUp();
    await v1.closed;
    expect(v1.watched.errors[0]?.code).toBe('VIDEO.UPSTREAM_ENDED');
    expect(v1.watched.closeCode).toBe(4000);

    const b = await camera();
    const v2 = await openViewer(t.baseUrl, (await play(b.id).expect(200)).body.url);
    await v2.frames(5);
    b.cam.freeze();
    await v2.closed;
    expect(v2.watched.errors[0]?.code).toBe('VIDEO.STALLED');
    await until(() => b.cam.dialogs('BYE') === 1, 3000, 'BYE of the stalled stream');
  });

  it('plays back a recording (§9.8): INVITE Playback with the range and a history SSRC, apart from live; MediaStatus 121 ends it (viewers told, BYE); audited; bad ranges 400, RTSP 409', async () => {
    const { id, cam } = await camera();
    const now = Math.floor(Date.now() / 1000) * 1000;
    const start = new Date(now - 120_000);
    const end = new Date(start.getTime() + 4_000);
    const pb = (body: object, camId = id) => t.http().post(`/api/v1/cameras/${camId}/playback`).set(auth(admin)).send(body);
    const res = await pb({ start: start.toISOString(), end: end.toISOString() }).expect(200);
    expect(res.body).toMatchObject({ cameraId: id, playbackId: expect.any(String), start: start.toISOString(), end: end.toISOString(), width: 320 });
    const offer = cam.log.find((l) => l.method === 'INVITE')!.body;
    expect(offer).toMatch(/^s=Playback\r$/m);
    expect(offer).toContain(`\r\nu=${cam.o.deviceId}:0\r\n`);
    expect(offer).toContain(`\r\nt=${start.getTime() / 1000} ${end.getTime() / 1000}\r\n`);
    expect(offer).toMatch(/^y=1\d{9}\r$/m);
    const v = await openViewer(t.baseUrl, res.body.url);
    await v.frames(5);
    // A second, long playback of the same camera (video.maxPlaybacksPerCamera is 2 here): not due, so the device's end of the short one leaves it playing.
    const long = await pb({ start: new Date(now - 3_000_000).toISOString(), end: new Date(now - 2_400_000).toISOString() }).expect(200);
    const vLong = await openViewer(t.baseUrl, long.body.url);
    await vLong.frames(3);
    // Live play of the same camera is an INVITE of its own: a recording is never shown as the live picture.
    const live = await play(id).expect(200);
    expect(cam.dialogs('INVITE')).toBe(3);
    expect(cam.log.filter((l) => l.method === 'INVITE')[2].body).toMatch(/^s=Play\r$/m);
    // The device has played the short recording to its end (an out-of-dialog MESSAGE, as many devices send it).
    const status = await cam.message(
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>MediaStatus</CmdType>\r\n<SN>77</SN>\r\n<DeviceID>${cam.o.deviceId}</DeviceID>\r\n<NotifyType>121</NotifyType>\r\n</Notify>\r\n`,
    );
    expect(status).toBe(200);
    await v.closed;
    expect(v.watched).toMatchObject({ closeCode: 4001, closeReason: 'ended', errors: [] });
    await until(() => cam.dialogs('BYE') === 1, 5000, 'BYE of the ended playback');
    const before = vLong.watched.binary.length;
    await vLong.frames(before + 10);
    expect(vLong.watched.closeCode).toBeNull(); // the long playback plays on
    vLong.close();
    expect(t.app.get(VideoService).stream(id)).toBeDefined(); // and so does live
    // Its ticket opens nothing any more.
    const again = await openViewer(t.baseUrl, res.body.url);
    await again.closed;
    expect(again.watched.errors[0]?.code).toBe('VIDEO.PLAYBACK_ENDED');
    const v2 = await openViewer(t.baseUrl, live.body.url);
    await v2.frames(3);
    v2.close();
    // Audited before the device was asked.
    const audit = await t.db.query(`SELECT after FROM audit_log WHERE action = 'video_playback' AND entity_id = $1 ORDER BY at`, [id]);
    expect(audit.rows[0]).toEqual({ after: expect.objectContaining({ start: start.toISOString(), end: end.toISOString(), playbackId: res.body.playbackId }) });
    // Ranges, in whole seconds: end not a second after start, longer than video.playbackMaxSeconds, start in the future or older
    // than video.playbackMaxAgeDays (1970: SDP t=0 would mean unbounded), not an instant.
    const field = async (body: object) => (await pb(body).expect(400)).body.error.details.fields.map((f: { field: string }) => f.field);
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await field({ start: end.toISOString(), end: start.toISOString() })).toEqual(['end']);
    expect(await field({ start: iso(now - 7_200_000), end: iso(now - 7_200_000 + 3_601_000) })).toEqual(['end']);
    expect(await field({ start: iso(now + 3_600_000), end: iso(now + 3_660_000) })).toContain('start');
    expect(await field({ start: '1970-01-01T00:00:00Z', end: '1970-01-01T00:05:00Z' })).toEqual(['start']);
    expect(await field({ start: '2026-11-30', end: end.toISOString() })).toEqual(['start']);
    // An RTSP camera has no standard playback request.
    const rtsp = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({
        schoolId: seed.schoolA.id,
        deviceId: '34020000001320099991',
        channelId: '34020000001320099991',
        name: 'RTSP 回放',
        areaKind: 'main_gate',
        streamUrl: 'rtsp://127.0.0.1:9/x',
      })
      .expect(201);
    const refused = await pb({ start: start.toISOString(), end: end.toISOString() }, rtsp.body.id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('VIDEO.PLAYBACK_UNSUPPORTED');
  });

  it('keeps playbacks to their own budget (per camera, per user) with Retry-After, and ends one whose device never says the recording ended', async () => {
    const video = t.app.get(VideoService);
    const a = await camera();
    const b = await camera();
    const c = await camera();
    const now = Math.floor(Date.now() / 1000) * 1000;
    const range = { start: new Date(now - 600_000).toISOString(), end: new Date(now - 595_000).toISOString() };
    const pb = (id: string) => t.http().post(`/api/v1/cameras/${id}/playback`).set(auth(admin)).send(range);
    await until(() => video.playbackCount === 0, 5000, "the earlier test's playbacks to linger out");
    video.cfg.maxPlaybacksPerCamera = 1;
    video.cfg.playbackOverrunSeconds = 1;
    try {
      const first = await pb(a.id).expect(200);
      // Its viewer at once: a playback nobody watches lingers out (video.lingerMs) before the checks below are done.
      const v = await openViewer(t.baseUrl, first.body.url);
      const perCamera = await pb(a.id).expect(503);
      expect(perCamera.body.error).toMatchObject({ code: 'VIDEO.PLAYBACK_CAPACITY', details: { scope: 'camera', max: 1 } });
      expect(perCamera.headers['retry-after']).toBe('10');
      await pb(b.id).expect(200);
      const perUser = await pb(c.id).expect(503); // video.maxPlaybacksPerUser: 2
      expect(perUser.body.error.details).toMatchObject({ scope: 'user', max: 2 });
      // Live and evidence are not held back by playbacks.
      await play(c.id).expect(200);
      // The device never sends MediaStatus 121: the 5 s range has played, plus the overrun, and the playback ends (BYE).
      await v.closed;
      expect(v.watched).toMatchObject({ closeCode: 4001, closeReason: 'ended' });
      await until(() => a.cam.dialogs('BYE') === 1, 5000, 'BYE of the playback past its range');
      await until(async () => (await pb(a.id)).status === 200, 5000, 'its slot to be free again');
    } finally {
      video.cfg.maxPlaybacksPerCamera = 2;
      video.cfg.playbackOverrunSeconds = 30;
    }
  });

  it('restarts a crashed ffmpeg while viewers remain (same INVITE; the player gets a new init segment)', async () => {
    const { id, cam } = await camera();
    const v = await openViewer(t.baseUrl, (await play(id).expect(200)).body.url);
    await v.frames(10);
    const stream = t.app.get(VideoService).stream(id)!;
    const pid = stream.remuxerPid!;
    process.kill(pid, 'SIGKILL');
    await until(() => v.watched.meta.length >= 2, 8000, 'a new init segment after the restart');
    const n = v.watched.binary.length;
    await v.frames(n + 10);
    expect(stream.remuxerPid).not.toBe(pid);
    // At least the restart after the kill (a clean-clone CI run at load 30 saw one more: its stall watchdog); one INVITE whatever the count.
    expect(stream.remuxerStarts).toBeGreaterThanOrEqual(2);
    expect(cam.dialogs('INVITE')).toBe(1);
    // What came after the restart decodes on its own (a fresh init + keyframe).
    const restartAt = v.watched.binary.findIndex((b, i) => i > 0 && b.toString('latin1', 4, 8) === 'ftyp');
    expect((await probe(Buffer.concat(v.watched.binary.slice(restartAt)))).frames).toBeGreaterThanOrEqual(5);
    v.close();
  });

  it("refuses stream tokens that are forged, expired, for another camera, or asked for outside the user's school", async () => {
    const { id } = await camera();
    const ticket = (await play(id).expect(200)).body;
    const url = new URL(ticket.url, 'http://x');
    const token = url.searchParams.get('token')!;
    const refused = async (q: string) =>
      openViewer(t.baseUrl, `/api/v1/video/ws?${q}`).then(
        () => 0,
        (e: { status?: number }) => e.status ?? -1,
      );
    expect(await refused(`camera=${id}&token=${token.slice(0, -2)}xx`)).toBe(401);
    expect(await refused(`camera=${id}`)).toBe(401);
    const other = await camera();
    expect(await refused(`camera=${other.id}&token=${encodeURIComponent(token)}`)).toBe(403);
    const video = t.app.get(VideoService);
    const stale = new StreamTokens(t.config.auth.jwtSecret, 60, () => Date.now() - 120_000).mint('u', id, seed.schoolA.id).token;
    expect(await refused(`camera=${id}&token=${encodeURIComponent(stale)}`)).toBe(401);
    const foreignKey = new StreamTokens('another-secret-entirely-0123456789', 60).mint('u', id, seed.schoolA.id).token;
    expect(await refused(`camera=${id}&token=${encodeURIComponent(foreignKey)}`)).toBe(401);
    expect(video.tokens.verify(token, id)).toMatchObject({ c: id, s: seed.schoolA.id });
    // A school's security staff play their school's cameras only; another school's camera answers as a missing one (no existence oracle, A10).
    const guardB = (await t.userToken('school_security', seed.schoolB.id)).token;
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const cam of [id, missing]) {
      expect((await play(cam, guardB).expect(404)).body.error.code).toBe('CAMERA.NOT_FOUND');
      expect((await t.http().get(`/api/v1/cameras/${cam}/snapshot`).set(auth(guardB)).expect(404)).body.error.code).toBe('CAMERA.NOT_FOUND');
    }
    const guardA = (await t.userToken('school_security', seed.schoolA.id)).token;
    await play(id, guardA).expect(200);
    await t.http().post(`/api/v1/cameras/${id}/stream`).expect(401);
    const ok = await openViewer(t.baseUrl, ticket.url);
    await ok.frames(3);
    ok.close();
  });

  it('snapshots a GB camera as a JPEG of its size (from the running stream, cached), and keeps evidence with its SHA-256', async () => {
    const { id, cam } = await camera();
    const shot = await t
      .http()
      .get(`/api/v1/cameras/${id}/snapshot`)
      .set(auth(admin))
      .buffer(true)
      .parse((res, cb) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => cb(null, Buffer.concat(parts)));
      })
      .expect(200);
    expect(shot.headers['content-type']).toBe('image/jpeg');
    expect(jpegSize(shot.body)).toEqual({ width: 320, height: 240 });
    const again = await t
      .http()
      .get(`/api/v1/cameras/${id}/snapshot`)
      .set(auth(admin))
      .buffer(true)
      .parse((res, cb) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => cb(null, Buffer.concat(parts)));
      })
      .expect(200);
    expect(Buffer.compare(again.body, shot.body)).toBe(0); // the cache
    expect(cam.dialogs('INVITE')).toBe(1);

    const ev = await t.http().post(`/api/v1/cameras/${id}/evidence`).set(auth(admin)).send({ purpose: 'manual', refId: 'case-1' }).expect(201);
    expect(ev.body).toMatchObject({ cameraId: id, schoolId: seed.schoolA.id, width: 320, height: 240, purpose: 'manual', refId: 'case-1' });
    expect(ev.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    const pic = await t
      .http()
      .get(`/api/v1/video/evidence/${ev.body.id}`)
      .set(auth(admin))
      .buffer(true)
      .parse((res, cb) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => cb(null, Buffer.concat(parts)));
      })
      .expect(200);
    expect(pic.headers['x-content-sha256']).toBe(ev.body.sha256);
    expect(jpegSize(pic.body)).toEqual({ width: 320, height: 240 });
    const auditor = (await t.userToken('auditor')).token;
    await t.http().post(`/api/v1/cameras/${id}/evidence`).set(auth(auditor)).send({}).expect(403);
    await t.http().get(`/api/v1/video/evidence/${ev.body.id}`).set(auth(auditor)).expect(200);
  });

  it('transcodes an H.265 camera to H.264 for the browser, within the configured cap', async () => {
    const video = t.app.get(VideoService);
    const hevc = await makeClip({ codec: 'h265', width: 320, height: 240, gop: 25 });
    video.cfg.maxTranscodes = 1;
    const a = await camera({ clip: hevc });
    const res = await play(a.id).expect(200);
    expect(res.body).toMatchObject({ transcoded: true, width: 320, height: 240 });
    expect(res.body.codec).toMatch(/^avc1\./);
    const v = await openViewer(t.baseUrl, res.body.url);
    await v.frames(15);
    expect((await probe(Buffer.concat(v.watched.binary))).codec).toBe('h264');
    const b = await camera({ clip: hevc });
    expect((await play(b.id).expect(503)).body.error.code).toBe('VIDEO.TRANSCODE_CAPACITY');
    await until(() => b.cam.dialogs('BYE') === 1, 3000, 'BYE of the refused transcode');
    v.close();
    await until(() => video.transcodesRunning === 0, 5000, 'the transcode slot back');
  });
});

import { createServer, Server } from 'node:http';
import { AddressInfo, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import { VideoService } from '../../src/modules/video/video.service';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { freePort, until } from '../support/processes';
import { OnvifDevice, startOnvifDevice } from '../support/video/onvif-device';
import { openViewer, probe } from '../support/video/player-client';
import { RtspSource, startRtspSource } from '../support/video/rtsp-source';

/**
 * ONVIF / RTSP cameras that are not on GB/T 28181 (issue 15): the admin's "probe camera" asks the
 * camera's ONVIF service (a fake device of ours that checks the WS-Security UsernameToken digest
 * like a real camera, test/support/video/onvif-device.ts) for its stream URI, which points at
 * GStreamer's RTSP server asking for digest auth with the same account — so probe → play is one
 * chain through real third-party RTSP. Then recordings of RTSP recorders (Hikvision / Dahua
 * playback URL templates) through the playback budget, ticket and audit of GB/T 28181 playback.
 */
const ACCOUNT = { username: 'admin', password: 'Cam-Pass-7f3a' };

describe('ONVIF probe and RTSP playback', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let rtsp: RtspSource;
  let device: OnvifDevice;
  const closers: (() => Promise<void>)[] = [];
  let n = 0;

  beforeAll(async () => {
    t = await startApp({
      video: {
        lingerMs: 500,
        firstMediaTimeoutMs: 6000,
        rtspTimeoutMs: 3000,
        onvifTimeoutMs: 800,
        maxPlaybacksPerCamera: 1,
        playbackOverrunSeconds: 5,
        onvifAllowedNetworks: ['127.0.0.0/8'], // the fake cameras run on loopback (refused by default)
      },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    rtsp = await startRtspSource({ auth: ACCOUNT, recordingSeconds: 8 });
    closers.push(() => rtsp.stop());
    device = await startOnvifDevice({
      ...ACCOUNT,
      streamUri: rtsp.url,
      snapshotUri: 'http://127.0.0.1/onvif-http/snapshot?channel=1',
      manufacturer: 'HIKVISION',
      model: 'DS-2CD2T47G2',
      clockOffsetMs: 90_000, // the camera's clock is 90 s ahead: the digest's Created must follow the device's time
      maxSkewSeconds: 30,
    });
    closers.push(() => device.stop());
  });

  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await t?.close();
  });

  async function camera(streamUrl = ''): Promise<string> {
    const id = `3402000000132${String(30000000 + ++n).slice(1)}`;
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: id, channelId: id, name: `ONVIF ${n}`, areaKind: 'main_gate', streamUrl })
      .expect(201);
    return res.body.id;
  }

  const probeCamera = (id: string, body: object = {}, token = admin) => t.http().post(`/api/v1/cameras/${id}/onvif-probe`).set(auth(token)).send(body);

  it('probes a camera over ONVIF (UsernameToken digest checked) and plays the RTSP stream it points at, with the same account', async () => {
    const id = await camera();
    const res = await probeCamera(id, {
      onvifHost: device.host,
      onvifPort: device.port,
      onvifUsername: ACCOUNT.username,
      onvifPassword: ACCOUNT.password,
    }).expect(200);
    expect(res.body).toMatchObject({
      streamUrl: rtsp.url,
      result: {
        device: { manufacturer: 'HIKVISION', model: 'DS-2CD2T47G2', serialNumber: 'FAKE0001' },
        profileToken: 'Profile_1',
        streamUri: rtsp.url,
        snapshotUri: 'http://127.0.0.1/onvif-http/snapshot?channel=1',
        media: 1,
      },
      settings: { onvifHost: '127.0.0.1', onvifPort: device.port, onvifUsername: 'admin', onvifPwKept: true, onvifProfileToken: 'Profile_1' },
    });
    expect(res.body.result.profiles.map((p: { token: string; width: number }) => [p.token, p.width])).toEqual([
      ['Profile_1', 1920],
      ['Profile_2', 640],
    ]);
    // The device checked the account where ONVIF Core asks it (everything past PRE_AUTH), and accepted it.
    const checked = device.requests.filter((r) => r.auth !== 'none');
    expect(checked.map((r) => r.action)).toEqual(expect.arrayContaining(['GetDeviceInformation', 'GetProfiles', 'GetStreamUri', 'GetSnapshotUri']));
    expect(checked.every((r) => r.auth === 'ok')).toBe(true);
    // The camera now has its stream address (no account in it) and the vendor / model found.
    const cam = (await t.http().get(`/api/v1/cameras/${id}`).set(auth(admin)).expect(200)).body;
    expect(cam).toMatchObject({ streamUrl: rtsp.url, vendor: 'HIKVISION', model: 'DS-2CD2T47G2' });
    // The password is nowhere to be read: not in the API, the audit log or the table (encrypted).
    const settings = await t.http().get(`/api/v1/cameras/${id}/media`).set(auth(admin)).expect(200);
    expect(JSON.stringify(settings.body)).not.toContain(ACCOUNT.password);
    const audit = await t.db.query(`SELECT action, entity, after FROM audit_log WHERE entity_id = $1 ORDER BY at`, [id]);
    expect(audit.rows.map((r) => r.action)).toEqual(expect.arrayContaining(['update', 'onvif_probe']));
    expect(JSON.stringify(audit.rows)).not.toContain(ACCOUNT.password);
    expect(audit.rows.find((r) => r.entity === 'camera_media_settings').after).toMatchObject({
      onvifPwChange: 'set',
      onvifPwKept: true,
      onvifUsername: 'admin',
    });
    expect(audit.rows.find((r) => r.action === 'onvif_probe').after).toMatchObject({ streamUrl: rtsp.url, profile: 'Profile_1' });
    const stored = await t.db.query(`SELECT onvif_password_enc FROM camera_media_settings WHERE camera_id = $1`, [id]);
    expect(stored.rows[0].onvif_password_enc).toMatch(/^v1\./);
    expect(stored.rows[0].onvif_password_enc).not.toContain(ACCOUNT.password);

    // probe → play: the RTSP camera asks for digest auth; the pull carries the kept account.
    const ticket = await t.http().post(`/api/v1/cameras/${id}/stream`).set(auth(admin)).expect(200);
    expect(ticket.body).toMatchObject({ width: 320, height: 240, transcoded: false });
    const v = await openViewer(t.baseUrl, ticket.body.url);
    await v.frames(20);
    v.close();
    expect(await probe(Buffer.concat(v.watched.binary))).toMatchObject({ codec: 'h264', width: 320, height: 240 });
    await until(() => !t.app.get(VideoService).stream(id), 5000, 'the pull to stop after the linger');
  });

  it('tells a wrong password, an unreachable address and a service that is not ONVIF apart — and changes no stream address', async () => {
    const id = await camera();
    const ok = { onvifHost: device.host, onvifPort: device.port, onvifUsername: ACCOUNT.username };
    const before = device.requests.length;
    const wrong = await probeCamera(id, { ...ok, onvifPassword: 'not-the-password' }).expect(502);
    expect(wrong.body.error.code).toBe('VIDEO.ONVIF_AUTH_FAILED');
    expect(device.requests.slice(before).some((r) => r.auth === 'refused')).toBe(true);
    const wrongUser = await probeCamera(id, { ...ok, onvifUsername: 'operator', onvifPassword: ACCOUNT.password }).expect(502);
    expect(wrongUser.body.error.code).toBe('VIDEO.ONVIF_AUTH_FAILED');

    // Nothing listens: refused at once.
    const closed = await probeCamera(id, { onvifPort: await freePort() }).expect(504);
    expect(closed.body.error).toMatchObject({ code: 'VIDEO.ONVIF_UNREACHABLE', details: { timeoutMs: 800 } });
    // Something accepts the connection and never answers (a hung camera, a black-holing firewall): video.onvifTimeoutMs.
    const sockets: Socket[] = [];
    const silent: TcpServer = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    const hung = await probeCamera(id, { onvifPort: (silent.address() as AddressInfo).port }).expect(504);
    expect(hung.body.error.code).toBe('VIDEO.ONVIF_UNREACHABLE');
    // A web server that is not an ONVIF device (an NVR's web page, a wrong port).
    const web: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Login</body></html>');
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => web.close(() => r())));
    const notOnvif = await probeCamera(id, { onvifPort: (web.address() as AddressInfo).port }).expect(502);
    expect(notOnvif.body.error.code).toBe('VIDEO.ONVIF_NOT_ONVIF');

    const cam = (await t.http().get(`/api/v1/cameras/${id}`).set(auth(admin)).expect(200)).body;
    expect(cam.streamUrl).toBe('');
    // The RTSP camera refusing a kept wrong password: ffmpeg's message names the URL it pulled, account included — never passed on.
    const refused = await camera(rtsp.url);
    await t.http().patch(`/api/v1/cameras/${refused}/media`).set(auth(admin)).send({ onvifUsername: 'admin', onvifPassword: 'wrong-pass-9z' }).expect(200);
    const denied = await t.http().post(`/api/v1/cameras/${refused}/stream`).set(auth(admin)).expect(502);
    expect(denied.body.error.code).toBe('VIDEO.UPSTREAM_FAILED');
    expect(denied.body.error.message).toMatch(/401/);
    expect(JSON.stringify(denied.body)).not.toContain('wrong-pass-9z');
    // No address at all: 409; not an admin: 403.
    const bare = await camera();
    expect((await probeCamera(bare).expect(409)).body.error.code).toBe('VIDEO.ONVIF_NOT_CONFIGURED');
    const operator = (await t.userToken('operator')).token;
    await probeCamera(bare, { onvifHost: device.host }, operator).expect(403);
    await t.http().get(`/api/v1/cameras/${bare}/media`).set(auth(operator)).expect(403);
  });

  it('plays back an RTSP recorder through its playback URL template (Hikvision UTC, Dahua local time): same budget, ticket and audit as GB/T 28181; the recording ends by itself', async () => {
    const id = await camera(rtsp.url);
    const patch = (body: object) => t.http().patch(`/api/v1/cameras/${id}/media`).set(auth(admin)).send(body);
    const base = `rtsp://127.0.0.1:${rtsp.port}`;
    // No template yet: as before, an RTSP camera has no playback.
    const now = Math.floor(Date.now() / 1000) * 1000;
    const start = new Date(now - 3_600_000);
    const end = new Date(start.getTime() + 8_000);
    const pb = () => t.http().post(`/api/v1/cameras/${id}/playback`).set(auth(admin)).send({ start: start.toISOString(), end: end.toISOString() });
    expect((await pb().expect(409)).body.error.code).toBe('VIDEO.PLAYBACK_UNSUPPORTED');
    const noEnd = await patch({ playbackUrlTemplate: `${base}/Streaming/tracks/101?starttime={startUtc:YYYYMMDDTHHmmssZ}` }).expect(400);
    expect(noEnd.body.error.details.fields[0].field).toBe('playbackUrlTemplate');
    await patch({ playbackUrlTemplate: 'rtsp://admin:pw@nvr/x?{start:YYYY}{end:YYYY}' }).expect(400);

    await patch({
      onvifUsername: ACCOUNT.username,
      onvifPassword: ACCOUNT.password,
      playbackUrlTemplate: `${base}/Streaming/tracks/101?starttime={startUtc:YYYYMMDDTHHmmssZ}&endtime={endUtc:YYYYMMDDTHHmmssZ}`,
    }).expect(200);
    const res = await pb().expect(200);
    expect(res.body).toMatchObject({ cameraId: id, playbackId: expect.any(String), start: start.toISOString(), end: end.toISOString(), width: 320 });
    const utc = (d: Date) =>
      d
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d{3}Z$/, 'Z');
    expect(rtsp.requests).toContain(`${base}/Streaming/tracks/101?starttime=${utc(start)}&endtime=${utc(end)}`);
    // The viewer at once (under load a late one finds the playback over: the recording is short).
    const v = await openViewer(t.baseUrl, res.body.url);
    // Its own budget: video.maxPlaybacksPerCamera (1 here) holds while it plays.
    const busy = await pb().expect(503);
    expect(busy.body.error).toMatchObject({ code: 'VIDEO.PLAYBACK_CAPACITY', details: { scope: 'camera' } });
    await v.frames(10);
    // The recorder ends the stream after the recording (8 s): the viewer is told 'ended', not an error.
    await v.closed;
    expect(v.watched).toMatchObject({ closeCode: 4001, closeReason: 'ended', errors: [] });
    expect(await probe(Buffer.concat(v.watched.binary))).toMatchObject({ codec: 'h264', width: 320 });
    const audit = await t.db.query(`SELECT after FROM audit_log WHERE action = 'video_playback' AND entity_id = $1`, [id]);
    expect(audit.rows).toEqual([{ after: { start: start.toISOString(), end: end.toISOString(), playbackId: res.body.playbackId } }]);
    await until(() => t.app.get(VideoService).playbackCount === 0, 5000, 'the playback slot to be given back');

    // Dahua: local time of the recorder (video.recorderTimeZone, Asia/Shanghai = UTC+8), underscores.
    await patch({
      playbackUrlTemplate: `${base}/cam/playback?channel=1&subtype=0&starttime={start:YYYY_MM_DD_HH_mm_ss}&endtime={end:YYYY_MM_DD_HH_mm_ss}`,
    }).expect(200);
    const dahua = await pb().expect(200);
    const local = (d: Date) =>
      new Date(d.getTime() + 8 * 3_600_000)
        .toISOString()
        .replace(/\.\d{3}Z$/, '')
        .replace(/[-T:]/g, '_');
    expect(rtsp.requests).toContain(`${base}/cam/playback?channel=1&subtype=0&starttime=${local(start)}&endtime=${local(end)}`);
    const v2 = await openViewer(t.baseUrl, dahua.body.url);
    await v2.frames(5);
    v2.close();
    // The account reached ffmpeg only: no stream address, ticket or audit entry carries it.
    expect(JSON.stringify([res.body, dahua.body])).not.toContain(ACCOUNT.password);
  });
});

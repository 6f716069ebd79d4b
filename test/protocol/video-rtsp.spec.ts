import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jpegSize } from '../../src/modules/video/media/jpeg';
import { VideoService } from '../../src/modules/video/video.service';
import { EvidenceService } from '../../src/modules/video/evidence.service';
import { existsSync, writeFileSync } from 'node:fs';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { freePort, until } from '../support/processes';
import { openViewer, probe } from '../support/video/player-client';
import { RtspSource, startRtspSource } from '../support/video/rtsp-source';

/**
 * RTSP cameras (schools whose cameras are not on GB/T 28181): ffmpeg pulls the camera's rtsp://
 * stream address over TCP and remuxes it like GB/T 28181 media. The camera is GStreamer's RTSP
 * server (test/support/video/rtsp_server.py), a real third-party RTSP implementation.
 */
type Parser = Parameters<ReturnType<ReturnType<TestApp['http']>['get']>['parse']>[0];
const jpeg = ((res: NodeJS.ReadableStream, cb: (err: Error | null, body: Buffer) => void) => {
  const parts: Buffer[] = [];
  res.on('data', (d: Buffer) => parts.push(d));
  res.on('end', () => cb(null, Buffer.concat(parts)));
}) as unknown as Parser;

describe('RTSP live video and snapshots', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const sources: RtspSource[] = [];
  const evidenceDir = mkdtempSync(join(tmpdir(), 'evidence-'));
  let n = 0;

  beforeAll(async () => {
    t = await startApp({ video: { lingerMs: 500, firstMediaTimeoutMs: 6000, rtspTimeoutMs: 3000, evidenceDir } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });

  afterAll(async () => {
    for (const s of sources) await s.stop();
    await t?.close();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  async function camera(streamUrl: string): Promise<string> {
    const id = `3402000000132${String(20000000 + ++n).slice(1)}`;
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: id, channelId: id, name: `RTSP ${n}`, areaKind: 'main_gate', streamUrl })
      .expect(201);
    return res.body.id;
  }

  it('plays an RTSP camera (pulled over TCP, remuxed without re-encoding) and snapshots it as a JPEG of its size', async () => {
    const src = await startRtspSource({ width: 352, height: 288 });
    sources.push(src);
    const id = await camera(src.url);
    const shot = await t.http().get(`/api/v1/cameras/${id}/snapshot`).set(auth(admin)).buffer(true).parse(jpeg).expect(200);
    expect(jpegSize(shot.body)).toEqual({ width: 352, height: 288 });
    const ticket = await t.http().post(`/api/v1/cameras/${id}/stream`).set(auth(admin)).expect(200);
    expect(ticket.body).toMatchObject({ width: 352, height: 288, transcoded: false });
    const v = await openViewer(t.baseUrl, ticket.body.url);
    await v.frames(30);
    v.close();
    const p = await probe(Buffer.concat(v.watched.binary));
    expect(p).toMatchObject({ codec: 'h264', width: 352, height: 288 });
    expect(p.frames).toBeGreaterThanOrEqual(20);
    await until(() => !t.app.get(VideoService).stream(id), 5000, 'the pull to stop after the linger');
  });

  it('transcodes an H.265 RTSP camera (found out from its first init segment) to H.264', async () => {
    const src = await startRtspSource({ codec: 'h265' });
    sources.push(src);
    const id = await camera(src.url);
    const ticket = await t.http().post(`/api/v1/cameras/${id}/stream`).set(auth(admin)).expect(200);
    expect(ticket.body).toMatchObject({ transcoded: true, width: 320, height: 240 });
    const v = await openViewer(t.baseUrl, ticket.body.url);
    await v.frames(10);
    v.close();
    expect((await probe(Buffer.concat(v.watched.binary))).codec).toBe('h264');
  });

  it('answers 502 when the RTSP camera refuses or is not there, and 409 for a stream address it cannot play', async () => {
    const src = sources[0];
    const missing = await camera(src.url.replace('/test', '/nothing-here'));
    const r1 = await t.http().post(`/api/v1/cameras/${missing}/stream`).set(auth(admin)).expect(502);
    expect(r1.body.error.code).toBe('VIDEO.UPSTREAM_FAILED');
    const closed = await camera(`rtsp://127.0.0.1:${await freePort()}/test`);
    expect((await t.http().get(`/api/v1/cameras/${closed}/snapshot`).set(auth(admin)).expect(502)).body.error.code).toBe('VIDEO.UPSTREAM_FAILED');
    // A burst of alarms at a dead camera does not start one pull per alarm: the failure is answered again for
    // video.snapshotFailureMemoMs (no new stream), with the same code and when the next pull may be.
    const video = t.app.get(VideoService);
    const acquire = jest.spyOn(video, 'acquire');
    try {
      const again = await t.http().get(`/api/v1/cameras/${closed}/snapshot`).set(auth(admin)).expect(502);
      expect(again.body.error).toMatchObject({ code: 'VIDEO.UPSTREAM_FAILED', details: { remembered: true } });
      expect(Number(again.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      const jobs = await Promise.all([1, 2, 3].map(() => t.app.get(EvidenceService).captureBounded(closed, 'alarm.raise', 'inc-burst', `burst:${closed}`)));
      expect(jobs.map((j) => j.code)).toEqual(['VIDEO.UPSTREAM_FAILED', 'VIDEO.UPSTREAM_FAILED', 'VIDEO.UPSTREAM_FAILED']);
      expect(acquire).not.toHaveBeenCalled();
      // Live play is an operator's explicit try: never held back by the memo.
      await t.http().post(`/api/v1/cameras/${closed}/stream`).set(auth(admin)).expect(502);
      expect(acquire).toHaveBeenCalledTimes(1);
    } finally {
      acquire.mockRestore();
    }
    // No SIP server in this process: a camera without an rtsp:// address cannot be played here.
    const gbOnly = await camera('');
    expect((await t.http().post(`/api/v1/cameras/${gbOnly}/stream`).set(auth(admin)).expect(409)).body.error.code).toBe('VIDEO.NO_STREAM_ADDRESS');
  });

  it('keeps evidence checksummed: an altered file is refused (409), a missing one is 410, and the purge removes what is past retention', async () => {
    const id = await camera(sources[0].url);
    const ev = (await t.http().post(`/api/v1/cameras/${id}/evidence`).set(auth(admin)).send({ purpose: 'alarm.raise', refId: 'inc-1' }).expect(201)).body;
    const second = (await t.http().post(`/api/v1/cameras/${id}/evidence`).set(auth(admin)).send({}).expect(201)).body;
    expect(second.purpose).toBe('manual');
    // No snapshot URI: a frame of the RTSP stream (ffmpeg), said in the answer and kept with the record.
    expect([ev.source, second.source]).toEqual(['stream', 'stream']);
    expect((await t.db.query(`SELECT DISTINCT source FROM video_evidence`)).rows).toEqual([{ source: 'stream' }]);
    const { rows } = await t.db.query(`SELECT storage_key FROM video_evidence WHERE id = $1`, [ev.id]);
    const file = join(evidenceDir, rows[0].storage_key);
    expect(existsSync(file)).toBe(true);
    writeFileSync(file, Buffer.from('not the picture that was taken'));
    expect((await t.http().get(`/api/v1/video/evidence/${ev.id}`).set(auth(admin)).expect(409)).body.error.code).toBe('VIDEO.EVIDENCE_CHECKSUM_MISMATCH');
    const guardB = (await t.userToken('school_security', seed.schoolB.id)).token;
    // Another school's evidence answers exactly like a missing one (attack note A10, af50f4b): no existence oracle.
    const otherSchools = await t.http().get(`/api/v1/video/evidence/${second.id}`).set(auth(guardB)).expect(404);
    const missing = await t.http().get('/api/v1/video/evidence/00000000-0000-4000-8000-000000000000').set(auth(guardB)).expect(404);
    expect(otherSchools.body.error.code).toBe(missing.body.error.code);
    await t.http().get('/api/v1/video/evidence/00000000-0000-4000-8000-000000000000').set(auth(admin)).expect(404);
    const key2 = (await t.db.query(`SELECT storage_key FROM video_evidence WHERE id = $1`, [second.id])).rows[0].storage_key;
    rmSync(join(evidenceDir, key2));
    expect((await t.http().get(`/api/v1/video/evidence/${second.id}`).set(auth(admin)).expect(410)).body.error.code).toBe('VIDEO.EVIDENCE_MISSING');

    const evidence = t.app.get(EvidenceService);
    expect(await evidence.purge(new Date())).toEqual({ rows: 0, files: 0 }); // nothing is 30 days old
    // 31 days on: the manual picture goes (GB/T 29315: 30 days); the alarm's picture is kept with its incident (retention.incidentsDays), file included.
    const later = new Date(Date.now() + 31 * 86_400_000);
    expect((await evidence.purge(later)).rows).toBe(1);
    expect(existsSync(file)).toBe(true);
    expect((await t.db.query(`SELECT purpose FROM video_evidence`)).rows).toEqual([{ purpose: 'alarm.raise' }]);
    expect(await evidence.purge(later)).toEqual({ rows: 0, files: 0 }); // idempotent
    // Past the incidents' retention it goes too.
    const muchLater = new Date(Date.now() + (t.config.retention.incidentsDays + 1) * 86_400_000);
    expect((await evidence.purge(muchLater)).rows).toBe(1);
    expect(existsSync(file)).toBe(false);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM video_evidence`)).rows[0].n).toBe(0);
    await t.http().get(`/api/v1/video/evidence/${ev.id}`).set(auth(admin)).expect(404);
  });
});

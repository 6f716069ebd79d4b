import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { FileEvidenceStore, EvidenceNotFound, sha256 } from '../../src/modules/video/evidence-store';
import { BoxSplitter, initCodec, initHasParameterSets, moofStartsWithKeyframe } from '../../src/modules/video/media/fmp4';
import { PsScanner } from '../../src/modules/video/media/ps-scan';
import { JitterBuffer, parseRtp, Rfc4571Deframer, RtpPacket } from '../../src/modules/video/media/rtp';
import { StreamTokens } from '../../src/modules/video/stream-token';
import { makeClip } from '../support/video/elementary';
import { programStreamMap, psFrame } from '../support/video/ps-mux';
import { frame4571, rtpPackets } from '../support/video/rtp-send';

/** The media path's parts one by one, on real bytes (ffmpeg clips, our PS muxer, ffmpeg's fMP4). */
const pkt = (seq: number): RtpPacket => ({ marker: false, payloadType: 96, seq, timestamp: 0, ssrc: 1, payload: Buffer.from([seq & 0xff]) });

describe('RTP', () => {
  it('parses headers with CSRCs, an extension and padding; refuses what is not RTP v2', () => {
    const payload = Buffer.from('PS-bytes');
    const buf = Buffer.concat([
      Buffer.from([0xb1, 0xe0, 0x12, 0x34, 0, 0, 0x01, 0x00, 0x13, 0x57, 0x9b, 0xdf]),
      Buffer.alloc(4, 7),
      Buffer.from([0xbe, 0xde, 0x00, 0x01]),
      Buffer.alloc(4),
      payload,
      Buffer.from([0, 0, 3]),
    ]);
    expect(parseRtp(buf)).toMatchObject({ marker: true, payloadType: 96, seq: 0x1234, timestamp: 256, ssrc: 0x13579bdf, payload });
    expect(parseRtp(Buffer.alloc(12))).toBeNull();
    expect(parseRtp(Buffer.from([0x80, 0x60, 0, 1]))).toBeNull();
    const badPad = Buffer.from([0xa0, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x50]);
    expect(parseRtp(badPad)).toBeNull();
  });

  it('puts packets back in order across the 16-bit wrap, drops duplicates and late ones, gives up on a gap when full', () => {
    const got: [number, number][] = [];
    const jb = new JitterBuffer(4, 0, (p, lost) => got.push([p.seq, lost]));
    for (const s of [65534, 0, 0, 65535, 1, 65533]) jb.push(pkt(s)); // 0 twice while held: a duplicate; 65533 after 65534: late
    expect(got).toEqual([
      [65534, 0],
      [65535, 0],
      [0, 0],
      [1, 0],
    ]);
    expect(jb.stats).toMatchObject({ duplicates: 1, late: 1, reordered: 1 });
    // 2 is lost: 3..7 arrive; at the 5th held packet the gap is skipped.
    for (const s of [3, 4, 5, 6, 7]) jb.push(pkt(s));
    expect(got.slice(4)).toEqual([
      [3, 1],
      [4, 0],
      [5, 0],
      [6, 0],
      [7, 0],
    ]);
    expect(jb.stats.lost).toBe(1);
    expect(jb.holding).toBe(0);
    jb.close();
  });

  it('skips a gap after the configured delay', async () => {
    const got: number[] = [];
    const jb = new JitterBuffer(100, 30, (p) => got.push(p.seq));
    jb.push(pkt(10));
    jb.push(pkt(12));
    expect(got).toEqual([10]);
    await new Promise((r) => setTimeout(r, 120));
    expect(got).toEqual([10, 12]);
    jb.close();
  });

  it('deframes RFC 4571 however the stream is cut', () => {
    const packets = [Buffer.alloc(5, 1), Buffer.alloc(1400, 2), Buffer.alloc(70, 3)];
    const stream = Buffer.concat(packets.map(frame4571));
    for (const step of [1, 2, 3, 1401, stream.length]) {
      const d = new Rfc4571Deframer();
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) d.push(stream.subarray(i, i + step), (p) => out.push(Buffer.from(p)));
      expect(out).toEqual(packets);
    }
  });
});

describe('MPEG-PS walker', () => {
  it('passes real-camera PS through unchanged in any cut, finds each keyframe and the stream type of the PSM', async () => {
    for (const codec of ['h264', 'h265'] as const) {
      const clip = await makeClip({ codec, seconds: 2 });
      const ps = Buffer.concat(clip.units.map((u, i) => psFrame(u.data, u.keyframe, 90_000 + i * 3600, codec)));
      const s = new PsScanner();
      const out: Buffer[] = [];
      let keys = 0;
      for (let i = 0; i < ps.length; i += 1400) {
        for (const c of s.push(ps.subarray(i, i + 1400))) {
          out.push(c.data);
          if (c.keyframeStart) keys++;
        }
      }
      expect(Buffer.concat(out).equals(ps)).toBe(true);
      expect(keys).toBe(clip.units.filter((u) => u.keyframe).length);
      expect(s.videoStreamType).toBe(codec === 'h264' ? 0x1b : 0x24);
    }
  });

  it('re-synchronises on the next pack after a loss or garbage', async () => {
    const clip = await makeClip({ seconds: 2 });
    const frames = clip.units.map((u, i) => psFrame(u.data, u.keyframe, 90_000 + i * 3600, 'h264'));
    const s = new PsScanner();
    let keys = 0;
    const feed = (b: Buffer, lost = false) => s.push(b, lost).forEach((c) => (keys += c.keyframeStart ? 1 : 0));
    feed(frames[0].subarray(0, 700)); // a keyframe cut short…
    feed(Buffer.from('garbage bytes that are not a program stream'), true); // …then a loss
    for (const f of frames.slice(1)) feed(f);
    expect(s.resyncs).toBeGreaterThan(0);
    expect(keys).toBe(clip.units.slice(1).filter((u) => u.keyframe).length + 1);
    expect(programStreamMap('h264').readUInt32BE(0)).toBe(0x1bc);
  });
});

describe('fMP4 from ffmpeg', () => {
  it('splits boxes in any cut, tells keyframe fragments, reads the codec string with SPS/PPS present', async () => {
    const clip = await makeClip({ seconds: 2, gop: 25 });
    const ps = Buffer.concat(clip.units.map((u, i) => psFrame(u.data, u.keyframe, 90_000 + i * 3600, 'h264')));
    const dir = mkdtempSync(join(tmpdir(), 'fmp4-'));
    writeFileSync(join(dir, 'in.ps'), ps);
    await new Promise<void>((resolve, reject) =>
      execFile(
        'ffmpeg',
        [
          '-v',
          'error',
          '-probesize',
          '32',
          '-analyzeduration',
          '0',
          '-f',
          'mpeg',
          '-i',
          join(dir, 'in.ps'),
          '-c',
          'copy',
          '-f',
          'mp4',
          '-movflags',
          'empty_moov+default_base_moof+frag_keyframe+frag_every_frame',
          join(dir, 'out.mp4'),
        ],
        (e) => (e ? reject(e) : resolve()),
      ),
    );
    const mp4 = require('node:fs').readFileSync(join(dir, 'out.mp4')) as Buffer;
    rmSync(dir, { recursive: true, force: true });
    const split = new BoxSplitter(1 << 24);
    const types: string[] = [];
    const init: Buffer[] = [];
    let keyMoofs = 0;
    for (let i = 0; i < mp4.length; i += 999)
      split.push(mp4.subarray(i, i + 999), (type, box) => {
        types.push(type);
        if (type === 'ftyp' || type === 'moov') init.push(box);
        if (type === 'moof' && moofStartsWithKeyframe(box)) keyMoofs++;
      });
    expect(types.slice(0, 3)).toEqual(['ftyp', 'moov', 'moof']);
    expect(types.filter((t) => t === 'moof')).toHaveLength(clip.units.length);
    expect(keyMoofs).toBe(clip.units.filter((u) => u.keyframe).length);
    const info = initCodec(Buffer.concat(init));
    expect(info).toMatchObject({ hevc: false, width: 320, height: 240 });
    expect(info!.codec).toMatch(/^avc1\.4d40[0-9a-f]{2}$/);
    expect(initHasParameterSets(Buffer.concat(init))).toBe(true);
    expect(() => new BoxSplitter(1000).push(Buffer.from([0, 0, 0x10, 0, 0x6d, 0x64, 0x61, 0x74]), () => undefined)).toThrow(/refused/);
  });

  it('packs a frame into RTP with the marker on its last packet', () => {
    const { packets, nextSeq } = rtpPackets(Buffer.alloc(3000, 9), { seq: 65535, timestamp: 1, ssrc: 42 });
    expect(packets.map((p) => parseRtp(p)!.marker)).toEqual([false, false, true]);
    expect(nextSeq).toBe(2);
  });
});

describe('stream tokens', () => {
  const now = 1_800_000_000_000;
  const tokens = new StreamTokens('secret-for-tests-secret-for-tests', 60, () => now);

  it('verifies its own, bound to the camera and expiry; refuses tampering, other keys, expiry and garbage', () => {
    const { token, expiresAt } = tokens.mint('user-1', 'cam-1', 'school-1');
    expect(expiresAt.getTime()).toBe(now + 60_000);
    expect(tokens.verify(token, 'cam-1')).toMatchObject({ u: 'user-1', c: 'cam-1', s: 'school-1' });
    expect(tokens.verify(token, 'cam-2')).toBe('wrong_camera');
    const [body, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), c: 'cam-2' })).toString('base64url');
    expect(tokens.verify(`${forged}.${mac}`, 'cam-2')).toBe('bad_signature');
    expect(new StreamTokens('another-secret-another-secret!!', 60, () => now).verify(token)).toBe('bad_signature');
    expect(new StreamTokens('secret-for-tests-secret-for-tests', 60, () => now + 61_000).verify(token)).toBe('expired');
    for (const bad of ['', '.', 'x', `${body}.`, 'a'.repeat(5000)]) expect(typeof tokens.verify(bad)).toBe('string');
  });
});

describe('evidence store (directory)', () => {
  it('stores with a SHA-256, reads back, lists only past days as expired, deletes idempotently, refuses keys outside its root', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ev-'));
    try {
      const store = new FileEvidenceStore(dir);
      const data = Buffer.from('jpeg bytes');
      const old = await store.put(new Date('2026-01-01T10:00:00Z'), data, 'jpg');
      const fresh = await store.put(new Date('2026-03-01T10:00:00Z'), data, 'jpg');
      expect(old.sha256).toBe(sha256(data));
      expect((await store.get(old.key)).equals(data)).toBe(true);
      // A stray half-written file of an old day goes too.
      mkdirSync(join(dir, '2025-12-31'), { recursive: true });
      writeFileSync(join(dir, '2025-12-31', 'x.jpg.tmp'), 'half');
      utimesSync(join(dir, '2025-12-31', 'x.jpg.tmp'), new Date(0), new Date(0));
      expect(await store.listExpired(new Date('2026-02-01T00:00:00Z'), 10)).toEqual([old.key]);
      await store.delete(old.key);
      await store.delete(old.key);
      await expect(store.get(old.key)).rejects.toBeInstanceOf(EvidenceNotFound);
      await expect(store.get('../../etc/passwd')).rejects.toBeInstanceOf(EvidenceNotFound);
      expect(await store.listExpired(new Date('2026-02-01T00:00:00Z'), 10)).toEqual([]);
      expect(readdirSync(dir).sort()).toEqual([fresh.key.slice(0, 10)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists only the days from `since` when given (the stray sweep walks a recent window, not every day kept)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ev-'));
    try {
      const store = new FileEvidenceStore(dir);
      const data = Buffer.from('jpeg bytes');
      const ancient = await store.put(new Date('2023-05-01T10:00:00Z'), data, 'jpg');
      const edge = await store.put(new Date('2026-01-25T00:00:00Z'), data, 'jpg');
      const inside = await store.put(new Date('2026-01-30T23:00:00Z'), data, 'jpg');
      await store.put(new Date('2026-02-01T00:00:00Z'), data, 'jpg'); // not before the cutoff
      const [before, since] = [new Date('2026-02-01T00:00:00Z'), new Date('2026-01-25T00:00:00Z')];
      expect(await store.listExpired(before, 10, undefined, since)).toEqual([edge.key, inside.key]);
      expect(await store.listExpired(before, 1, edge.key, since)).toEqual([inside.key]);
      expect(await store.listExpired(before, 10)).toEqual([ancient.key, edge.key, inside.key]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('video config', () => {
  it.each([
    [{ SHOUHU__VIDEO__RTP_PORT_MIN: '40000', SHOUHU__VIDEO__RTP_PORT_MAX: '39999' }, 'video.rtpPortMin'],
    [{ SHOUHU__VIDEO__GB_TRANSPORT: 'sctp' }, 'video.gbTransport'],
    [{ SHOUHU__VIDEO__LINGER_MS: '-1' }, 'video.lingerMs'],
    [{ SHOUHU__VIDEO__PUBLIC_WS_BASE: 'http://x' }, 'video.publicWsBase'],
    [{ SHOUHU__VIDEO__EVIDENCE_RETENTION_DAYS: '0' }, 'video.evidenceRetentionDays'],
  ])('refuses %j naming %s', (extra, key) => {
    try {
      loadConfig({ NODE_ENV: 'test', ...extra });
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.join('\n')).toContain(key);
    }
  });

  it('defaults to 30 days of evidence (GB/T 29315)', () => {
    expect((loadConfig({ NODE_ENV: 'test' }).video as { evidenceRetentionDays: number }).evidenceRetentionDays).toBe(30);
  });
});

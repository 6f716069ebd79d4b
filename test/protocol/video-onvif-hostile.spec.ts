import { createServer, Server, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { until } from '../support/processes';
import { OnvifDevice, startOnvifDevice } from '../support/video/onvif-device';

/**
 * The ONVIF probe against devices that attack it (attack pass on POST /cameras/:id/onvif-probe):
 * an answer built to make the `onvif` package's XML handling quadratic, an answer of hundreds of
 * MB, an answer trickled byte by byte, a device naming another server as its stream (where the
 * camera's password would go), and addresses that are no camera's (loopback, link-local, the
 * metadata service). Each "camera" is a real local HTTP server; the probe runs in a worker thread
 * (src/modules/video/onvif-probe.worker.ts) bounded in time, heap and answer size.
 */
const ACCOUNT = { username: 'admin', password: 'Hostile-Cam-Pw-41' };
const PROBE_MAX_MS = 5000;
const MAX_ANSWER = 262144;
/** Another loopback address: not in video.onvifAllowedNetworks here (only 127.0.0.1/32). */
const OTHER_HOST = '127.0.0.2';

describe('ONVIF probe against hostile devices', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const closers: (() => Promise<void>)[] = [];
  let n = 0;

  beforeAll(async () => {
    t = await startApp({
      video: {
        onvifTimeoutMs: 2000,
        onvifProbeMaxMs: PROBE_MAX_MS,
        onvifMaxAnswerBytes: MAX_ANSWER,
        onvifProbeConcurrency: 2,
        onvifAllowedNetworks: ['127.0.0.1/32'],
        firstMediaTimeoutMs: 3000,
        rtspTimeoutMs: 2000,
      },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });

  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await t?.close();
  });

  async function camera(streamUrl = ''): Promise<string> {
    const id = `3402000000132${String(40000000 + ++n).slice(1)}`;
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: id, channelId: id, name: `Hostile ${n}`, areaKind: 'main_gate', streamUrl })
      .expect(201);
    return res.body.id;
  }

  const probeCamera = (id: string, body: object) => t.http().post(`/api/v1/cameras/${id}/onvif-probe`).set(auth(admin)).send(body);

  /** An HTTP "camera" answering every request with `answer`; `closed` counts responses whose connection ended. */
  async function evil(answer: (res: ServerResponse) => void, host = '127.0.0.1') {
    const state = { requests: 0, closed: 0, written: 0 };
    const sockets = new Set<Socket>();
    const server: Server = createServer((req, res) => {
      state.requests++;
      res.on('close', () => state.closed++);
      req.resume();
      req.on('end', () => answer(res));
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, host, r));
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    });
    return { port: (server.address() as AddressInfo).port, state, sockets };
  }

  /** The longest stall of this process's event loop (the service runs in it) while `work` runs. */
  async function maxLag<T>(work: Promise<T>): Promise<{ value: T; lagMs: number }> {
    let last = performance.now();
    let lagMs = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      lagMs = Math.max(lagMs, now - last - 20);
      last = now;
    }, 20);
    try {
      return { value: await work, lagMs };
    } finally {
      clearInterval(tick);
    }
  }

  it('an answer that makes the XML reading quadratic does not stall the service: the probe is stopped at video.onvifProbeMaxMs', async () => {
    const id = await camera();
    // '<a>' + 'xmlns' × 40,000 (200 KB, under the answer cap): the package's /xmlns([^=]*?)=(".*?")/g takes seconds on it.
    const cam = await evil((res) => {
      res.writeHead(200, { 'Content-Type': 'application/soap+xml' });
      res.end(`<a>${'xmlns'.repeat(40_000)}</a>`);
    });
    const started = Date.now();
    const others: number[] = [];
    const { value: res, lagMs } = await maxLag(
      (async () => {
        const p = probeCamera(id, { onvifHost: '127.0.0.1', onvifPort: cam.port }).then((r) => r);
        // Meanwhile the service answers other requests at once.
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 300));
          const s = Date.now();
          await t.http().get(`/api/v1/cameras/${id}`).set(auth(admin)).expect(200);
          others.push(Date.now() - s);
        }
        return p;
      })(),
    );
    // In the worker the read takes seconds: stopped at video.onvifProbeMaxMs (504), or — on a faster or quieter
    // machine — read to its end within it and found to be no ONVIF answer (502). Either way the service went on.
    if (res.status === 504) expect(res.body.error).toMatchObject({ code: 'VIDEO.ONVIF_UNREACHABLE', details: { probeMaxMs: PROBE_MAX_MS } });
    else expect([res.status, res.body.error.code]).toEqual([502, 'VIDEO.ONVIF_NOT_ONVIF']);
    expect(Date.now() - started).toBeLessThan(PROBE_MAX_MS + 5000);
    expect(lagMs).toBeLessThan(3000); // the package's own parse on this thread stalled it for the whole read (~15 s)
    expect(Math.max(...others)).toBeLessThan(4000);
    const cam2 = (await t.http().get(`/api/v1/cameras/${id}`).set(auth(admin)).expect(200)).body;
    expect(cam2.streamUrl).toBe('');
  });

  it('an answer past video.onvifMaxAnswerBytes is cut as it arrives (a 600 MB one crashed the service)', async () => {
    const id = await camera();
    const chunk = Buffer.alloc(1 << 20, 0x41);
    const cam = await evil((res) => {
      res.writeHead(200, { 'Content-Type': 'application/soap+xml' });
      let sent = 0;
      const pump = () => {
        while (sent < 600 && !res.destroyed) {
          sent++;
          cam.state.written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const rss = process.memoryUsage().rss;
    const res = await probeCamera(id, { onvifHost: '127.0.0.1', onvifPort: cam.port }).expect(502);
    expect(res.body.error).toMatchObject({ code: 'VIDEO.ONVIF_ANSWER_TOO_LARGE', details: { maxAnswerBytes: MAX_ANSWER } });
    await until(() => cam.state.closed === cam.state.requests, 3000, 'the connection to be cut');
    // What the server could push before the cut: socket buffers, not the 600 MB.
    expect(cam.state.written).toBeLessThan(32 << 20);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 << 20);
  });

  it('a trickled answer (1 KB/s) ends with the probe: the connection is closed when the API answers, not kept for ever', async () => {
    const id = await camera();
    const timers = new Set<NodeJS.Timeout>();
    closers.push(async () => timers.forEach(clearInterval));
    const cam = await evil((res) => {
      res.writeHead(200, { 'Content-Type': 'application/soap+xml' });
      const timer = setInterval(() => res.write(`<x>${'a'.repeat(1000)}</x>`), 200);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
    });
    const res = await probeCamera(id, { onvifHost: '127.0.0.1', onvifPort: cam.port }).expect(504);
    expect(res.body.error.code).toBe('VIDEO.ONVIF_UNREACHABLE');
    await until(() => cam.sockets.size === 0 && cam.state.closed === cam.state.requests, 2000, 'the trickling connection to be closed');
  });

  it('runs at most video.onvifProbeConcurrency probes at once: one more is refused 503 with Retry-After before it changes or asks anything', async () => {
    // Two probes held by a camera trickling its answers (as a stuck one would).
    const timers = new Set<NodeJS.Timeout>();
    closers.push(async () => timers.forEach(clearInterval));
    const slow = await evil((res) => {
      res.writeHead(200, { 'Content-Type': 'application/soap+xml' });
      const timer = setInterval(() => res.write('<x/>'), 200);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
    });
    const [a, b, third] = [await camera(), await camera(), await camera()];
    // Held until video.onvifTimeoutMs (2 s here): the third is asked while both still run.
    const held = [a, b].map((id) => probeCamera(id, { onvifHost: '127.0.0.1', onvifPort: slow.port }).then((r) => r));
    await until(() => slow.state.requests === 2, 5000, 'both probes to be asking the camera');
    const refused = await probeCamera(third, { onvifHost: '127.0.0.1', onvifPort: slow.port, onvifUsername: 'admin' });
    expect([refused.status, refused.headers['retry-after'], refused.body.error?.code, refused.body.error?.details]).toEqual([
      503,
      '5',
      'VIDEO.ONVIF_PROBE_BUSY',
      { max: 2, retryAfterSeconds: 5 },
    ]);
    // Refused before anything: no worker asked the camera, the settings given were not kept.
    expect(slow.state.requests).toBe(2);
    const media = (await t.http().get(`/api/v1/cameras/${third}/media`).set(auth(admin)).expect(200)).body;
    expect([media.onvifHost, media.onvifUsername]).toEqual([null, null]);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([504, 504]);
    // The slots are free again once those ended (a web page that is no ONVIF device answers at once).
    const web = await evil((res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Login</body></html>');
    });
    const again = await Promise.all([third, third].map((id) => probeCamera(id, { onvifHost: '127.0.0.1', onvifPort: web.port })));
    expect(again.map((r) => [r.status, r.body.error?.code])).toEqual([
      [502, 'VIDEO.ONVIF_NOT_ONVIF'],
      [502, 'VIDEO.ONVIF_NOT_ONVIF'],
    ]);
  });

  it("what a device says (a SOAP fault's text, a URI it names) goes to the log and the audit entry, never into the API's answer", async () => {
    // Up to 300 characters of a device's own words were copied into the error message.
    const said = (n: number) => `DEVICE-WORDS-${n}: this camera is compromised, call 400-000-0000 and log in at evil.example ${'z'.repeat(150)}`;
    const refusing: OnvifDevice = await startOnvifDevice({
      ...ACCOUNT,
      streamUri: 'rtsp://127.0.0.1/x',
      faultReason: { notAuthorized: `Sender not Authorized. ${said(1)}` },
    });
    const failing: OnvifDevice = await startOnvifDevice({
      ...ACCOUNT,
      streamUri: 'rtsp://127.0.0.1/x',
      refuse: ['GetProfiles'],
      faultReason: { notSupported: said(2) },
    });
    const noRtsp: OnvifDevice = await startOnvifDevice({ ...ACCOUNT, streamUri: `http://${said(3).replace(/ /g, '-')}` });
    for (const d of [refusing, failing, noRtsp]) closers.push(() => d.stop());
    const account = { onvifUsername: ACCOUNT.username, onvifPassword: ACCOUNT.password };
    const cases: [number, { onvifPort: number; onvifUsername: string; onvifPassword: string }, string][] = [
      [1, { onvifPort: refusing.port, ...account, onvifPassword: 'not-the-password' }, 'VIDEO.ONVIF_AUTH_FAILED'],
      [2, { onvifPort: failing.port, ...account }, 'VIDEO.ONVIF_NOT_ONVIF'],
      [3, { onvifPort: noRtsp.port, ...account }, 'VIDEO.ONVIF_NOT_ONVIF'],
    ];
    for (const [n, settings, code] of cases) {
      const id = await camera();
      const res = await probeCamera(id, { onvifHost: '127.0.0.1', ...settings });
      expect([n, res.status, res.body.error?.code]).toEqual([n, 502, code]);
      expect(JSON.stringify(res.body)).not.toMatch(/DEVICE-WORDS|compromised|evil\.example|zzzz/);
      expect(res.body.error.details).toMatchObject({ target: expect.stringMatching(/^127\.0\.0\.1:\d+$/), step: expect.stringMatching(/^Get[A-Za-z]+$/) });
      // Kept for the admin in the audit log, with the request that failed.
      const audit = await t.db.query(`SELECT after FROM audit_log WHERE action = 'onvif_probe_failed' AND entity_id = $1`, [id]);
      expect(audit.rows).toHaveLength(1);
      expect(audit.rows[0].after).toMatchObject({
        code,
        onvifHost: '127.0.0.1',
        step: expect.any(String),
        deviceSaid: expect.stringContaining(`DEVICE-WORDS-${n}`),
      });
    }
  });

  it("a stream or snapshot URI naming another host is put on the camera's ONVIF host: the password never goes elsewhere", async () => {
    // The thief: an RTSP server asking for Basic auth (ffmpeg would send the password in clear).
    const seen: string[] = [];
    const thief: TcpServer = createTcpServer((c) => {
      c.on('data', (d) => {
        const s = d.toString();
        seen.push(s);
        const cseq = /CSeq:\s*(\d+)/i.exec(s)?.[1] ?? '1';
        c.write(`RTSP/1.0 401 Unauthorized\r\nCSeq: ${cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n`);
      });
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => thief.listen(0, OTHER_HOST, r));
    closers.push(() => new Promise((r) => thief.close(() => r())));
    const thiefPort = (thief.address() as AddressInfo).port;
    const device: OnvifDevice = await startOnvifDevice({
      ...ACCOUNT,
      streamUri: `rtsp://${OTHER_HOST}:${thiefPort}/stolen`,
      snapshotUri: 'http://169.254.169.254/latest/meta-data/',
    });
    closers.push(() => device.stop());

    const id = await camera();
    const res = await probeCamera(id, {
      onvifHost: device.host,
      onvifPort: device.port,
      ...{ onvifUsername: ACCOUNT.username, onvifPassword: ACCOUNT.password },
    }).expect(200);
    expect(res.body).toMatchObject({
      streamUrl: `rtsp://127.0.0.1:${thiefPort}/stolen`,
      result: { streamUri: `rtsp://127.0.0.1:${thiefPort}/stolen`, snapshotUri: 'http://127.0.0.1/latest/meta-data/' },
    });
    const audit = await t.db.query(`SELECT after FROM audit_log WHERE action = 'onvif_probe' AND entity_id = $1`, [id]);
    expect(audit.rows[0].after).toMatchObject({ streamHostNamed: OTHER_HOST, snapshotHostNamed: '169.254.169.254' });

    // A stream address on another host kept from before (or typed by an admin) gets no account either.
    await t
      .http()
      .patch(`/api/v1/cameras/${id}`)
      .set(auth(admin))
      .send({ streamUrl: `rtsp://${OTHER_HOST}:${thiefPort}/stolen` })
      .expect(200);
    await t.http().post(`/api/v1/cameras/${id}/stream`).set(auth(admin));
    await until(() => seen.length > 0, 10_000, 'ffmpeg to reach the other host');
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.join('')).not.toMatch(/Authorization/i);
    expect(seen.join('')).not.toContain(Buffer.from(`${ACCOUNT.username}:${ACCOUNT.password}`).toString('base64'));
  });

  it('refuses addresses no camera has (loopback, link-local, metadata service, unspecified, multicast) and those outside video.onvifAllowedNetworks', async () => {
    const id = await camera();
    const refused = async (onvifHost: string, onvifPort = 80) => {
      const res = await probeCamera(id, { onvifHost, onvifPort });
      expect([onvifHost, res.status, res.body.error?.code]).toEqual([onvifHost, 400, 'VIDEO.ONVIF_ADDRESS_REFUSED']);
      return res.body.error.message as string;
    };
    expect(await refused(OTHER_HOST, 5432)).toMatch(/loopback/);
    expect(await refused('::1', 6379)).toMatch(/loopback/);
    expect(await refused('::ffff:127.0.0.2', 6379)).toMatch(/loopback/);
    expect(await refused('169.254.169.254')).toMatch(/link-local/);
    expect(await refused('fe80::1')).toMatch(/link-local/);
    expect(await refused('0.0.0.0')).toMatch(/unspecified/);
    expect(await refused('224.0.0.1')).toMatch(/multicast/);
    expect(await refused('10.1.2.3')).toMatch(/outside video.onvifAllowedNetworks/);
    // A name is resolved and every address checked ('localhost' is 127.0.0.1 here, and ::1 on some hosts).
    const local = await probeCamera(id, { onvifHost: 'localhost', onvifPort: 1 });
    if (local.status === 400) expect(local.body.error.message).toMatch(/localhost resolves to/);
    else expect(local.body.error.code).toBe('VIDEO.ONVIF_UNREACHABLE'); // allowed 127.0.0.1, nothing listening on port 1
  });
});

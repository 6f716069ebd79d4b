import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceHealthService } from '../../src/modules/device-health/device-health.service';
import { GbDeviceStates } from '../../src/modules/gb28181/gb-device-states';
import { SipServer } from '../../src/modules/gb28181/sip-server';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { freePort, until } from '../support/processes';

/**
 * GB/T 28181 against a real SIP peer: sipp (Debian sip-tester) plays the cameras and NVRs with
 * the scenarios in test/protocol/sipp/. Every test checks the platform's resulting state
 * (registrations, device health, incidents, provisioned cameras), not only sipp's exit code.
 */

const SCENARIOS = join(__dirname, 'sipp');
const DEFAULT_PASSWORD = 'district-default-1';
const DEV_A = '34020000001320000001'; // an IPC already in the registry (school A), own password
const DEV_B = '34020000001180000002'; // an NVR nobody placed yet
const DEV_C = '34020000001180000003'; // an NVR an admin assigned to school A before it registered
const DEV_D = '34020000001320000004'; // an IPC over TCP
const DEV_E = '34020000001180000005'; // an NVR assigned to school B whose channels nobody placed
const DEV_F = '34020000001320000006'; // an IPC of no school and no camera
const DEV_X = '34020000001320000099'; // never registers
/** sipp expands an [authentication] keyword coming from the injection file (not one nesting [field] keywords). */
const creds = (dev: string, password: string) => `[authentication username=${dev} password=${password}]`;
const ch = (dev: string, n: number) => `${dev.slice(0, 10)}131${dev.slice(15, 20)}${String(n).padStart(2, '0')}`;

describe('GB/T 28181 over SIP (sipp as the devices)', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let port: number;
  let work: string;
  let cameraA: string;

  beforeAll(async () => {
    t = await startApp({
      gb28181: {
        enabled: true,
        host: '127.0.0.1',
        port: 0,
        platformId: '34020000002000000001',
        defaultPassword: DEFAULT_PASSWORD,
        rateLimitPerSecond: 2000,
        rateLimitBurst: 5000,
        queryTimeoutMs: 2000,
        catalogTimeoutMs: 3000,
        housekeepingMs: 200,
      },
      liveness: { sweepEveryMs: 0 },
    });
    port = t.app.get(SipServer).port;
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    work = mkdtempSync(join(tmpdir(), 'sipp-'));
    const cam = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: DEV_A, channelId: DEV_A, name: '东侧围墙', areaKind: 'perimeter' })
      .expect(201);
    cameraA = cam.body.id;
    await t.http().patch(`/api/v1/gb28181/devices/${DEV_A}`).set(auth(admin)).send({ password: 'own-pass-01' }).expect(200);
  });

  afterAll(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await t?.close();
  });

  /** Runs sipp against the platform; resolves with its exit code and error log. */
  function sipp(
    scenario: string,
    opts: { rows?: string[][]; calls?: number; rate?: number; keys?: Record<string, string>; tcp?: boolean; ooc?: string; localPort?: number } = {},
  ) {
    const args = [
      `127.0.0.1:${port}`,
      '-sf',
      join(SCENARIOS, scenario),
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '30s',
      '-timeout_error',
      '-trace_err',
      // One sipp socket stands for hundreds of devices with a receive buffer each: sipp's own 64 KB overflowed on a loaded
      // machine and REGISTERs timed out (gb28181-processes.spec.ts, the registration storm).
      '-buff_size',
      String(4 * 1024 * 1024),
      ...(process.env.SIPP_TRACE ? ['-trace_msg'] : []),
    ];
    args.push('-m', String(opts.calls ?? opts.rows?.length ?? 1), '-r', String(opts.rate ?? 50), '-l', '500');
    args.push('-default_behaviors', 'all,-bye', '-recv_timeout', '8000');
    if (opts.rows) {
      const csv = join(work, `${scenario}-${Date.now()}.csv`);
      writeFileSync(csv, ['SEQUENTIAL', ...opts.rows.map((r) => r.join(';') + ';')].join('\n') + '\n');
      args.push('-inf', csv);
    }
    for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);
    if (opts.ooc) args.push('-oocsf', join(SCENARIOS, opts.ooc));
    if (opts.tcp) args.push('-t', 't1');
    // Devices registered by one run and kept alive by another must speak from the same port (messages are bound to the registration).
    if (opts.localPort) args.push('-p', String(opts.localPort));
    return new Promise<{ code: number; log: string }>((resolve, reject) => {
      const p = spawn('sipp', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', reject);
      p.on('exit', (code) => {
        const logs = readdirSync(SCENARIOS)
          .concat(readdirSync(work))
          .filter((f) => f.endsWith('_errors.log') || f.endsWith('_messages.log'));
        let log = stderr;
        for (const f of logs) {
          for (const dir of [work, SCENARIOS]) {
            try {
              log += readFileSync(join(dir, f), 'utf8');
              rmSync(join(dir, f));
            } catch {
              /* not in this dir */
            }
          }
        }
        resolve({ code: code ?? -1, log });
      });
    });
  }

  async function expectSipp(scenario: string, opts: Parameters<typeof sipp>[1] = {}) {
    const r = await sipp(scenario, opts);
    if (r.code !== 0) throw new Error(`sipp ${scenario} exited ${r.code}:\n${r.log.slice(0, 3000)}`);
  }

  const device = async (id: string) => {
    const res = await t.http().get('/api/v1/gb28181/devices').query({ limit: 500 }).set(auth(admin)).expect(200);
    return (
      res.body.items as { deviceId: string; registered: boolean; schoolId: string | null; transport: string | null; manufacturer: string; model: string }[]
    ).find((d) => d.deviceId === id);
  };
  const cameraStatus = async (id: string) => (await t.db.query(`SELECT status FROM cameras WHERE id = $1`, [id])).rows[0]?.status;

  /**
   * One raw UDP exchange from Node (for what sipp cannot send); resolves with the answers (SIP
   * responses) received within `waitMs`. Requests are not answers: the ephemeral port may be one a
   * sipp device registered from earlier, and the server's queries to that device (Catalog,
   * ConfigDownload) then arrive here (a CI run saw 60 of them).
   */
  function udp(packets: (string | Buffer)[], waitMs = 400): Promise<string[]> {
    return new Promise((resolve) => {
      const s = createSocket('udp4');
      const got: string[] = [];
      s.on('message', (m) => {
        const text = m.toString('latin1');
        if (text.startsWith('SIP/2.0 ')) got.push(text);
      });
      s.bind(0, '127.0.0.1', () => {
        for (const p of packets) s.send(typeof p === 'string' ? Buffer.from(p, 'latin1') : p, port, '127.0.0.1');
        setTimeout(() => {
          s.close();
          resolve(got);
        }, waitMs);
      });
    });
  }

  const request = (method: string, user: string, extra: string[] = [], branch = `z9hG4bK${Math.random().toString(36).slice(2)}`, body = '') =>
    [
      `${method} sip:34020000002000000001@3402000000 SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=${branch}`,
      `From: <sip:${user}@3402000000>;tag=n1`,
      `To: <sip:${user}@3402000000>`,
      `Call-ID: node-${branch}`,
      `CSeq: 1 ${method}`,
      'Max-Forwards: 70',
      ...extra,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');

  async function metric(name: string, labels: Record<string, string>): Promise<number> {
    const text = (await t.http().get('/metrics').expect(200)).text;
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name + '{')) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
    }
    return sum;
  }

  it('registers a device with digest (its own password), with a GB Date, and adopts the school of its cameras', async () => {
    await expectSipp('register.xml', { rows: [[DEV_A, creds(DEV_A, 'own-pass-01')]] });
    await t.app.get(GbDeviceStates).flushRegistrations();
    // Its school is learned from its cameras after the registration is answered (GbRegistrar.afterRegister).
    const d = await until(
      async () => {
        const x = await device(DEV_A);
        return x?.schoolId ? x : null;
      },
      10_000,
      'the school learned from its cameras',
    );
    expect(d).toMatchObject({ registered: true, schoolId: seed.schoolA.id, transport: 'UDP' });
  });

  it('answers a wrong password with 403, and the district default does not open a device that has its own', async () => {
    await expectSipp('register_wrong_password.xml', {
      rows: [
        [DEV_A, creds(DEV_A, 'wrong-password')],
        [DEV_A, creds(DEV_A, DEFAULT_PASSWORD)],
      ],
    });
    expect((await device(DEV_X))?.registered ?? false).toBe(false);
  });

  it('refuses ids that are not 20 digits and REGISTERs without Expires with 400; a retransmission gets the very same answer', async () => {
    const [bad] = await udp([request('REGISTER', '3402000000132', ['Expires: 3600'])]);
    expect(bad).toMatch(/^SIP\/2\.0 400 /);
    const [noExpires] = await udp([request('REGISTER', DEV_X)]);
    expect(noExpires).toMatch(/^SIP\/2\.0 400 /);
    const reg = request('REGISTER', DEV_X, ['Expires: 3600'], 'z9hG4bKretrans1');
    const answers = await udp([reg, reg, reg]);
    expect(answers).toHaveLength(3);
    expect(answers[0]).toMatch(/^SIP\/2\.0 401 [^]*WWW-Authenticate: Digest realm="3402000000", nonce="[0-9a-z]+", qop="auth", algorithm=MD5/);
    expect(answers[1]).toBe(answers[0]);
    expect(answers[2]).toBe(answers[0]);
  });

  it('turns keepalives into device-health heartbeats (a new Call-ID re-registers fine): the camera goes online', async () => {
    expect(await cameraStatus(cameraA)).toBe('unknown');
    await expectSipp('keepalive.xml', { rows: [[DEV_A, creds(DEV_A, 'own-pass-01')]] });
    await until(async () => (await cameraStatus(cameraA)) === 'online', 15_000, 'camera A online');
    const { rows } = await t.db.query(`SELECT to_status FROM device_transitions WHERE device_id = $1`, [cameraA]);
    expect(rows).toEqual([{ to_status: 'online' }]);
  });

  it('refuses a keepalive from a device that is not registered with 403', async () => {
    await expectSipp('keepalive_refused.xml', { rows: [[DEV_X]] });
  });

  it('raises one incident for an alarm the device repeats, typed from AlarmMethod/AlarmType, GB18030 text decoded', async () => {
    await expectSipp('alarm.xml', { rows: [[DEV_A, creds(DEV_A, 'own-pass-01'), DEV_A]] });
    const { rows } = await t.db.query(`SELECT type, source, camera_id, school_id, note, press_count FROM incidents WHERE camera_id = $1`, [cameraA]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: 'intrusion', source: 'device', school_id: seed.schoolA.id, press_count: 1 });
    expect(rows[0].note).toContain('东侧围墙有人翻越');
    expect(rows[0].note).toContain('视频报警');
    const presses = await t.db.query(`SELECT device_event_id FROM incident_presses WHERE device_id = $1`, [cameraA]);
    // One press: the repeat (same SN and AlarmTime, within gb28181.alarmRepeatWindowMs) has the first one's event id.
    expect(presses.rows).toEqual([{ device_event_id: expect.stringMatching(new RegExp(`^gb28181:${DEV_A}:${DEV_A}:4711:[0-9a-z]+\\.\\d+$`)) }]);
  });

  it("raises an alarm of a channel nobody placed at the device's school, priority from AlarmPriority, no AlarmMethod as type other", async () => {
    await t.http().patch(`/api/v1/gb28181/devices/${DEV_E}`).set(auth(admin)).send({ schoolId: seed.schoolB.id }).expect(200);
    const channel = ch(DEV_E, 7);
    await expectSipp('alarm_fields.xml', {
      rows: [[DEV_E, creds(DEV_E, DEFAULT_PASSWORD), channel, '801', '<AlarmPriority>2</AlarmPriority>', '', 'Fence cut']],
    });
    const { rows } = await t.db.query(
      `SELECT id, type, priority, source, school_id, school_name, camera_id, location, note FROM incidents WHERE location LIKE $1`,
      [`%${DEV_E}%`],
    );
    expect(rows).toEqual([
      expect.objectContaining({ type: 'other', priority: 'P2', source: 'device', school_id: seed.schoolB.id, school_name: seed.schoolB.name, camera_id: null }),
    ]);
    expect(rows[0].location).toContain(channel);
    expect(rows[0].note).toContain('Fence cut');
    // The school's own staff see it as theirs.
    const staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
    await t.http().get(`/api/v1/incidents/${rows[0].id}`).set(auth(staffB)).expect(200);
  });

  it('raises an unplaced device alarm the district sees (device id, channel, description) for a device of no school; AlarmMethod 0 is other', async () => {
    const row = (sn: string) => [
      DEV_F,
      creds(DEV_F, DEFAULT_PASSWORD),
      DEV_F,
      sn,
      '<AlarmPriority>3</AlarmPriority>',
      '<AlarmMethod>0</AlarmMethod>',
      'Lens covered',
    ];
    await expectSipp('alarm_fields.xml', { rows: [row('901')] });
    const op = (await t.userToken('operator')).token;
    const list = await t.http().get('/api/v1/incidents').query({ limit: 500 }).set(auth(op)).expect(200);
    const mine = list.body.items.filter((i: { location: string }) => i.location.includes(DEV_F));
    expect(mine).toEqual([expect.objectContaining({ schoolId: null, type: 'other', priority: 'P3', source: 'device', status: 'raised', pressCount: 1 })]);
    expect(mine[0].location).toContain(DEV_F);
    expect(mine[0].note).toContain('Lens covered');
    const ev = await t.db.query(`SELECT school_id FROM console_events WHERE type = 'incident.raised' AND payload->>'incidentId' = $1`, [mine[0].id]);
    expect(ev.rows).toEqual([{ school_id: null }]);
    // No school's staff sees it; it is not relayed to the police (nowhere to send them).
    const staffA = (await t.userToken('school_security', seed.schoolA.id)).token;
    await t.http().get(`/api/v1/incidents/${mine[0].id}`).set(auth(staffA)).expect(404);
    expect((await t.db.query(`SELECT relay_required FROM incidents WHERE id = $1`, [mine[0].id])).rows).toEqual([{ relay_required: false }]);
    // The device repeating the alarm changes nothing; a new alarm of the channel folds into the open incident.
    await expectSipp('alarm_fields.xml', { rows: [row('901'), row('902')] });
    const after = await t.http().get(`/api/v1/incidents/${mine[0].id}`).set(auth(op)).expect(200);
    expect(after.body).toMatchObject({ pressCount: 2, schoolId: null });
    const n = await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE location LIKE $1`, [`%${DEV_F}%`]);
    expect(n.rows[0].n).toBe(1);
  });

  it('queries Catalog and DeviceInfo after registration; channels of a device without a school wait for an admin', async () => {
    const keys = { devid: DEV_B, ch1: ch(DEV_B, 1), ch2: ch(DEV_B, 2), ch3: ch(DEV_B, 3), org: '34020000002160000001' };
    await expectSipp('catalog.xml', { rows: [[DEV_B, creds(DEV_B, DEFAULT_PASSWORD)]], keys, ooc: 'catalog_ooc.xml' });
    const list = await until(
      async () => {
        const res = await t.http().get('/api/v1/gb28181/channels').query({ unassigned: 'true', deviceId: DEV_B }).set(auth(admin)).expect(200);
        return res.body.total === 3 ? res.body : null;
      },
      15_000,
      'three unassigned channels',
    );
    expect(list.items.map((c: { channelId: string; name: string }) => [c.channelId, c.name])).toEqual([
      [keys.ch1, '南大门'],
      [keys.ch2, '东侧围墙'],
      [keys.ch3, '操场'],
    ]);
    const d = await until(
      async () => {
        const x = await device(DEV_B);
        return x?.model ? x : null;
      },
      15_000,
      'DeviceInfo recorded',
    );
    expect(d).toMatchObject({ manufacturer: 'Hikvision', model: 'DS-7608N', schoolId: null, registered: true });
    expect((await t.db.query(`SELECT count(*)::int AS n FROM cameras WHERE device_id = $1`, [DEV_B])).rows[0].n).toBe(0);

    const res = await t
      .http()
      .post('/api/v1/gb28181/channels/assign')
      .set(auth(admin))
      .send({
        schoolId: seed.schoolB.id,
        channels: [
          { deviceId: DEV_B, channelId: keys.ch1, areaKind: 'main_gate' },
          { deviceId: DEV_B, channelId: keys.ch2, name: '东墙' },
          { deviceId: DEV_B, channelId: ch(DEV_B, 9) },
        ],
      })
      .expect(200);
    expect(res.body.placed).toHaveLength(2);
    expect(res.body.notFound).toEqual([{ deviceId: DEV_B, channelId: ch(DEV_B, 9) }]);
    const cams = await t.db.query(`SELECT channel_id, name, area_kind, school_id, vendor FROM cameras WHERE device_id = $1 ORDER BY channel_id`, [DEV_B]);
    expect(cams.rows).toEqual([
      { channel_id: keys.ch1, name: '南大门', area_kind: 'main_gate', school_id: seed.schoolB.id, vendor: 'Hikvision' },
      { channel_id: keys.ch2, name: '东墙', area_kind: 'other', school_id: seed.schoolB.id, vendor: 'Hikvision' },
    ]);
    const left = await t.http().get('/api/v1/gb28181/channels').query({ unassigned: 'true', deviceId: DEV_B }).set(auth(admin)).expect(200);
    expect(left.body.total).toBe(1);
  });

  it('provisions the catalog of a device an admin placed in a school as cameras there', async () => {
    await t.http().patch(`/api/v1/gb28181/devices/${DEV_C}`).set(auth(admin)).send({ schoolId: seed.schoolA.id }).expect(200);
    const keys = { devid: DEV_C, ch1: ch(DEV_C, 1), ch2: ch(DEV_C, 2), ch3: ch(DEV_C, 3), org: '34020000002160000002' };
    await expectSipp('catalog.xml', { rows: [[DEV_C, creds(DEV_C, DEFAULT_PASSWORD)]], keys, ooc: 'catalog_ooc.xml' });
    const cams = await until(
      async () => {
        const r = await t.db.query(`SELECT channel_id, name, school_id FROM cameras WHERE device_id = $1 ORDER BY channel_id`, [DEV_C]);
        return r.rows.length === 3 ? r.rows : null;
      },
      15_000,
      'three cameras of DEV_C',
    );
    expect(cams.map((c: { name: string }) => c.name)).toEqual(['南大门', '东侧围墙', '操场']);
    expect(cams.every((c: { school_id: string }) => c.school_id === seed.schoolA.id)).toBe(true);
    const audit = await t.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE entity = 'camera' AND action = 'create' AND after->>'deviceId' = $1`, [
      DEV_C,
    ]);
    expect(audit.rows[0].n).toBe(3);
  });

  it('unregisters on Expires 0: keepalives are refused and the cameras go offline at the next sweep', async () => {
    await expectSipp('unregister.xml', { rows: [[DEV_A, creds(DEV_A, 'own-pass-01')]] });
    expect((await device(DEV_A))?.registered).toBe(false);
    await t.app.get(DeviceHealthService).sweep(Date.now() + 1);
    expect(await cameraStatus(cameraA)).toBe('offline');
  });

  it('serves 200 devices at once: all register, all keepalive, all their cameras online', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `3402000000132${String(1000 + i).padStart(7, '0')}`);
    await t.db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind) SELECT $1, d, d, '批量' || d, 'perimeter' FROM unnest($2::text[]) d`,
      [seed.schoolB.id, ids],
    );
    const localPort = await freePort();
    await expectSipp('register.xml', { rows: ids.map((id) => [id, creds(id, DEFAULT_PASSWORD)]), rate: 400, localPort });
    const reg = await t.http().get('/api/v1/gb28181/devices').query({ registered: 'true', limit: 500 }).set(auth(admin)).expect(200);
    expect(reg.body.items.filter((d: { deviceId: string }) => ids.includes(d.deviceId))).toHaveLength(200);
    await expectSipp('keepalive_only.xml', { rows: ids.map((id) => [id]), rate: 400, localPort });
    await until(
      async () => {
        const r = await t.db.query(`SELECT count(*)::int AS n FROM cameras WHERE device_id = ANY($1) AND status = 'online'`, [ids]);
        return r.rows[0].n === 200;
      },
      15_000,
      '200 cameras online',
    );
  });

  it('speaks TCP too (Content-Length framing): register and keepalive', async () => {
    await expectSipp('keepalive.xml', { rows: [[DEV_D, creds(DEV_D, DEFAULT_PASSWORD)]], tcp: true });
    expect(await device(DEV_D)).toMatchObject({ registered: true, transport: 'TCP' });
  });

  it('counts and drops malformed or oversized packets and keeps serving everyone else', async () => {
    const before = await metric('shouhu_malformed_input_total', { source: 'sip' });
    const answers = await udp([
      Buffer.from([0, 1, 2, 3, 255, 254]),
      'INVITE nonsense\r\n\r\n',
      request('OPTIONS', DEV_X).replace(/Call-ID: [^\r]+\r\n/, ''),
      request('OPTIONS', DEV_X).replace('Content-Length: 0', 'Content-Length: 99'),
      Buffer.alloc(40_000, 'A'),
      request('MESSAGE', DEV_D, ['Content-Type: Application/MANSCDP+xml'], undefined, '<Notify><CmdType>Keepalive</Notify>'),
    ]);
    // The request whose Content-Length is longer than the datagram and the MESSAGE with a broken body are answered 400; the others get nothing.
    expect(answers).toHaveLength(2);
    expect(answers.every((a) => /^SIP\/2\.0 400 /.test(a))).toBe(true);
    expect(await metric('shouhu_malformed_input_total', { source: 'sip' })).toBe(before + 6);
    await expectSipp('malformed.xml', { rows: [[DEV_X]] });
    expect(await metric('shouhu_malformed_input_total', { source: 'sip' })).toBe(before + 7);

    // TCP: a peer that cannot be framed is disconnected; another connection is served meanwhile.
    const bad = connect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => bad.on('close', () => r()));
    bad.on('error', () => undefined);
    bad.write('MESSAGE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bKx\r\n\r\n');
    const good = connect(port, '127.0.0.1');
    const answer = new Promise<string>((r) => good.on('data', (d) => r(d.toString('latin1'))));
    good.write(request('OPTIONS', DEV_X).replace('SIP/2.0/UDP', 'SIP/2.0/TCP'));
    expect(await answer).toMatch(/^SIP\/2\.0 200 /);
    good.destroy();
    await closed;
  });
});

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceHealthService } from '../../src/modules/device-health';
import { GbRegistrar } from '../../src/modules/gb28181/gb-registrar';
import { SipServer } from '../../src/modules/gb28181/sip-server';
import { SipWorkers } from '../../src/modules/gb28181/sip-workers';
import { GbSite, startGbSite } from '../support/gb-site';
import { auth, TestApp } from '../support/harness';
import { freePort, until } from '../support/processes';
import { GbCamera } from '../support/video/gb-camera';

/**
 * Several SIP processes on one port and the registration storm (issue 16 §8): the platform runs
 * with gb28181.processes = 2 — this process (the primary) and a helper process it forked with the
 * same UDP socket. Devices (our simulated UA, and sipp for the storm) cannot tell which process
 * read their datagram; every case checks that it does not matter.
 */
const PASSWORD = 'processes-pass-1';
let seq = 0;
const deviceIdOf = (n: number) => `3402000000118${String(30000000 + n).slice(1)}`;
const channelOf = (dev: string, n: number) => `${dev.slice(0, 10)}131${dev.slice(15, 20)}${String(n).padStart(2, '0')}`;
const alarmXml = (channel: string, sn: number) =>
  `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${channel}</DeviceID>\r\n` +
  `<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>2</AlarmMethod>\r\n<AlarmDescription>processes</AlarmDescription>\r\n</Notify>\r\n`;

describe('GB/T 28181 with two SIP processes (issue 16 §8)', () => {
  let site: GbSite;
  let t: TestApp;
  let operator: string;
  let schoolId: string;

  beforeAll(async () => {
    site = await startGbSite({
      password: PASSWORD,
      seed: true,
      gb28181: {
        processes: 2,
        queryTimeoutMs: 1000,
        housekeepingMs: 200,
        catalogSubscribeSeconds: 0,
        basicParamOnRegister: false,
        // The storm case: 100 REGISTERs waiting on the database at a time, the rest answered 503 (Retry-After 1–3 s).
        registerMaxInFlight: 100,
        // All 2000 storm devices speak from sipp's one address: the per-source REGISTER limit would be what is measured.
        registerRateLimitPerSecond: 0,
        registerRetryAfterSeconds: 3,
        restartGraceSeconds: 600,
      },
    });
    t = site.t;
    operator = (await t.userToken('operator')).token;
    schoolId = site.seed!.schoolA.id;
  });

  afterAll(async () => {
    await site?.close();
  });

  const events = (event: string) => site.metric('shouhu_gb28181_events_total', { event });
  const answered = (kind: string, status: string) => site.metric('shouhu_gb28181_requests_total', { kind, status });
  const incidentsAt = async (channel: string): Promise<{ location: string }[]> =>
    (await t.http().get('/api/v1/incidents').query({ limit: 500 }).set(auth(operator)).expect(200)).body.items.filter((i: { location: string }) =>
      i.location.includes(channel),
    );

  it('a device registered through either process is served by both: keepalives, digest, one alarm per alarm', async () => {
    expect(t.app.get(SipWorkers).serving).toBe(1);
    const sip = t.app.get(SipServer);
    // Registrations until one of the datagrams was read by the helper and handed over (a REGISTER,
    // its digest answer, or the device's answer to our query): each registered all the same.
    const devs: GbCamera[] = [];
    const handedAtStart = await events('helper_handover');
    await until(
      async () => {
        devs.push((await site.device(deviceIdOf(++seq), { schoolId })).dev);
        return (await events('helper_handover')) > handedAtStart;
      },
      30000,
      'a datagram read by the helper process',
    );
    for (const d of devs) expect(sip.live(d.o.deviceId)?.registered).toBe(true);
    await until(() => t.app.get(GbRegistrar).afterRegisterWaiting === 0, 10000, 'after-registration queries done');

    // Keepalives until the helper answered some itself: every one is 200, and every one is counted
    // and recorded by the primary (the device's last keepalive).
    const ok0 = await answered('keepalive', '200');
    const byHelper0 = await events('helper_keepalive');
    let sent = 0;
    await until(
      async () => {
        for (const d of devs) {
          expect(await d.sendKeepalive()).toBe(200);
          sent++;
        }
        return (await events('helper_keepalive')) > byHelper0;
      },
      30000,
      'a keepalive answered by the helper process',
    );
    await until(async () => (await answered('keepalive', '200')) - ok0 === sent, 5000, 'every keepalive counted once');
    for (const d of devs) expect(sip.live(d.o.deviceId)?.lastKeepaliveAt).not.toBeNull();

    // Nobody else is answered for a registered device by either process: an unregistered id and a
    // registered id from another socket are refused (the helper hands them to the primary).
    const stranger = site.sim(deviceIdOf(++seq));
    await stranger.start({ register: false });
    const impostor = site.sim(devs[0].o.deviceId, { localAddress: '127.0.0.2' });
    await impostor.start({ register: false });
    for (let i = 0; i < 10; i++) {
      expect(await stranger.sendKeepalive()).toBe(403);
      expect(await impostor.sendKeepalive()).toBe(403);
    }

    // Alarms until one was read by the helper: each is one incident, whichever process read it.
    const handed = await events('helper_handover');
    const channels: string[] = [];
    await until(
      async () => {
        const dev = devs[channels.length % devs.length];
        const ch = channelOf(dev.o.deviceId, channels.length + 1);
        channels.push(ch);
        expect(await dev.message(Buffer.from(alarmXml(ch, channels.length), 'latin1'))).toBe(200);
        return (await events('helper_handover')) > handed;
      },
      30000,
      'an alarm read by the helper process',
    );
    for (const ch of channels) expect((await incidentsAt(ch)).length).toBe(1);
  });

  it('a registration storm after a restart: every device registers (503 + Retry-After past capacity) and none is declared offline', async () => {
    const N = 2000;
    const ids = Array.from({ length: N }, (_, i) => `3402000000132${String(8_000_000 + i).padStart(7, '0')}`);
    // Devices the platform knew before the restart (their registrations lapsed while it was down), one camera each, online.
    await t.db.query(`INSERT INTO gb_devices (device_id, school_id) SELECT d, $1 FROM unnest($2::text[]) d`, [schoolId, ids]);
    await t.db.query(
      `INSERT INTO cameras (school_id, device_id, channel_id, name, area_kind, status) SELECT $1, d, d, '风暴' || d, 'perimeter', 'online' FROM unnest($2::text[]) d`,
      [schoolId, ids],
    );
    const health = t.app.get(DeviceHealthService);
    await health.loadIndex({ full: true, seedAt: Date.now() });
    // Their heartbeats are due one threshold from now; a sweep a minute past that would call them all offline…
    const sweepAt = Date.now() + health.thresholdMs() + 60_000;
    expect(sweepAt).toBeLessThan(Date.now() + 600_000);

    // …but the SIP server restarts (helper processes forked again) and gives them restartGraceSeconds (600 s).
    const sip = t.app.get(SipServer);
    await sip.stop();
    await sip.start();
    expect(t.app.get(SipWorkers).serving).toBe(1);

    const refused0 = await answered('register', '503');
    const work = mkdtempSync(join(tmpdir(), 'sipp-storm-'));
    try {
      const csv = join(work, 'storm.csv');
      writeFileSync(csv, ['SEQUENTIAL', ...ids.map((id) => `${id};[authentication username=${id} password=${PASSWORD}];`)].join('\n') + '\n');
      const args = [
        `127.0.0.1:${sip.port}`,
        '-sf',
        join(__dirname, 'sipp', 'register_storm.xml'),
        '-inf',
        csv,
        '-i',
        '127.0.0.1',
        '-p',
        String(await freePort()),
      ];
      args.push(
        '-nostdin',
        '-m',
        String(N),
        '-r',
        '2000',
        '-l',
        String(N),
        '-timeout',
        '120s',
        '-timeout_error',
        // Retransmissions on (a REGISTER lost in a full socket buffer is sent again, as a device does); the
        // answer to a retransmitted REGISTER (a second 503) that arrives during the Retry-After pause is
        // ignored, as a device ignores it, instead of aborting sipp's call (abortunexp off).
        '-default_behaviors',
        'all,-bye,-abortunexp',
        '-trace_err',
        '-trace_screen',
        // One socket stands for 2,000 devices, each of which would have its own receive buffer: with sipp's 64 KB one, a
        // loaded CI machine (sipp starved of CPU) overflowed it with the platform's answers and after-registration queries
        // and REGISTERs timed out after 7 retransmissions, a fault of the simulation (reproduced with -buff_size 2048).
        '-buff_size',
        String(4 * 1024 * 1024),
      );
      const r = await new Promise<{ code: number | null; err: string }>((resolve, reject) => {
        const p = spawn('sipp', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.on('exit', (code) => resolve({ code, err }));
      });
      if (r.code !== 0) {
        // What failed: sipp's final screen (per-step counts of retransmissions, timeouts, unexpected messages) and its
        // error log without the platform's after-registration queries to calls that had ended (noise, not failures).
        const read = (suffix: string) =>
          readdirSync(work)
            .filter((f) => f.endsWith(suffix))
            .map((f) => readFileSync(join(work, f), 'utf8'))
            .join('\n');
        const errors = read('_errors.log')
          .split(/\n(?=\d{4}-\d{2}-\d{2}\t)/)
          .filter((e) => !e.includes("can't be mapped to a known SIPp call"))
          .join('\n');
        throw new Error(`sipp register_storm exited ${r.code}: ${r.err.slice(0, 1000)}\n${read('_screen.log').slice(-6000)}\n${errors.slice(0, 4000)}`);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    // Past capacity the platform said so (503 + Retry-After, which sipp waited out), never silence or 486.
    expect((await answered('register', '503')) - refused0).toBeGreaterThan(0);
    expect(await answered('register', '486')).toBe(0);
    expect(ids.filter((id) => !sip.live(id)?.registered)).toEqual([]);

    // No false offline: the sweep a minute past their threshold finds none of them due.
    await health.sweep(sweepAt);
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM cameras WHERE device_id = ANY($1) AND status <> 'online'`, [ids]);
    expect(rows[0].n).toBe(0);
  }, 300_000);
});

import * as iconv from 'iconv-lite';
import { GbCatalog } from '../../src/modules/gb28181/gb-catalog';
import { GbDeviceStates } from '../../src/modules/gb28181/gb-device-states';
import { GbSite, startGbSite } from '../support/gb-site';
import { auth, TestApp } from '../support/harness';
import { until } from '../support/processes';

/**
 * GB/T 28181 under the independent tester's attacks (/work/wt/notes/attack.md F2, F4, F6, F10,
 * F14, F16; /work/wt/attack-findings.md A3, A9): alarms that must not be lost for odd or unstorable
 * fields, for keepalive volume or for a NAT rebinding, alarm repeats that are not kept for ever,
 * messages bound to the registration's host, bounded catalog assembly. Each case is
 * played by our simulated device (a real SIP UA over UDP/TCP, test/support/video/gb-camera.ts)
 * and the platform's state is read back through the HTTP API.
 */
const PASSWORD = 'hostile-pass-1';
/** Alarms within this of each other (same SN or transaction) are one press; past it a new alarm. */
const REPEAT_WINDOW_MS = 1500;
/** The per-device limit here (default 50/s, burst 500): every case's device stays within the burst; A3 floods past it. */
const DEVICE_BURST = 30;
/** Another host than the devices' 127.0.0.1 (Linux loopback takes all of 127.0.0.0/8). */
const OTHER_HOST = '127.0.0.2';
/** Catalogs being assembled at once in all (gb28181.catalogMaxAssemblies, small here). */
const MAX_ASSEMBLIES = 6;
let seq = 0;
const deviceIdOf = (n: number) => `3402000000118${String(20000000 + n).slice(1)}`;
const channelOf = (dev: string, n: number) => `${dev.slice(0, 10)}131${dev.slice(15, 20)}${String(n).padStart(2, '0')}`;

const alarmXml = (fields: string, root = 'Notify') =>
  `<?xml version="1.0" encoding="GB2312"?>\r\n<${root}>\r\n<CmdType>Alarm</CmdType>\r\n${fields}</${root}>\r\n`;
const field = (name: string, value: string) => `<${name}>${value}</${name}>\r\n`;
const catalogXml = (dev: string, sn: string, sumNum: number, items: { id: string; name: string }[]) =>
  `<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${dev}</DeviceID>\r\n<SumNum>${sumNum}</SumNum>\r\n<DeviceList Num="${items.length}">\r\n${items
    .map((i) => `<Item><DeviceID>${i.id}</DeviceID><Name>${i.name}</Name><Status>ON</Status></Item>`)
    .join('\r\n')}\r\n</DeviceList>\r\n</Response>\r\n`;

interface Incident {
  id: string;
  location: string;
  note: string;
  type: string;
  status: string;
  pressCount: number;
}

describe('GB/T 28181 against hostile and odd peers (attack notes F2 F4 F6 F10 F14 F16)', () => {
  let site: GbSite;
  let t: TestApp;
  let admin: string;
  let operator: string;
  let schoolId: string;

  beforeAll(async () => {
    site = await startGbSite({
      password: PASSWORD,
      seed: true,
      gb28181: {
        queryTimeoutMs: 1000,
        housekeepingMs: 200,
        catalogSubscribeSeconds: 0,
        alarmRepeatWindowMs: REPEAT_WINDOW_MS,
        // A3: one token a second, so a bucket emptied by keepalives stays empty while the alarm is sent.
        deviceRateLimitPerSecond: 1,
        deviceRateLimitBurst: DEVICE_BURST,
        // F10: small bounds so the cases reach them with a few messages (defaults 4 / 2000 / 2 / 1000).
        catalogMaxAssembliesPerDevice: 4,
        catalogMaxAssemblies: MAX_ASSEMBLIES,
        catalogSaveConcurrency: 2,
        catalogRowsPerStatement: 10,
      },
    });
    ({ t, admin } = site);
    operator = (await t.userToken('operator')).token;
    schoolId = site.seed!.schoolA.id;
  });

  afterAll(async () => {
    await site?.close();
  });

  /** A peer speaking as `deviceId` from its own socket; registered unless `register: false`. */
  const peer = async (deviceId: string, o: { register?: boolean; transport?: 'UDP' | 'TCP'; localAddress?: string } = {}) =>
    (await site.device(deviceId, o)).dev;
  /** A new device placed at school A, registered; resolves with the SN of the platform's Catalog query. */
  const device = (o: { transport?: 'UDP' | 'TCP' } = {}) => site.device(deviceIdOf(++seq), { schoolId, ...o });
  const metric = (name: string, labels: Record<string, string>) => site.metric(name, labels);

  const incidentsAt = async (channel: string): Promise<Incident[]> =>
    (await t.http().get('/api/v1/incidents').query({ limit: 500 }).set(auth(operator)).expect(200)).body.items.filter((i: Incident) =>
      i.location.includes(channel),
    );
  const cameras = async (deviceId: string): Promise<{ channelId: string; name: string; status: string }[]> =>
    (await t.http().get('/api/v1/cameras').query({ deviceId, limit: 500 }).set(auth(admin)).expect(200)).body.items;
  const registration = async (deviceId: string) =>
    (
      (await t.http().get('/api/v1/gb28181/devices').query({ limit: 500 }).set(auth(admin)).expect(200)).body.items as {
        deviceId: string;
        lastKeepaliveAt: string | null;
      }[]
    ).find((d) => d.deviceId === deviceId);

  describe('F2: text that cannot be stored never costs an alarm or a catalog', () => {
    it('raises an alarm whose description holds a NUL byte or a &#xD800; entity, the bad characters removed or replaced', async () => {
      const { deviceId, dev } = await device();
      const nul = channelOf(deviceId, 1);
      const surrogate = channelOf(deviceId, 2);
      const body = (ch: string, sn: string, desc: string) =>
        Buffer.from(alarmXml(field('SN', sn) + field('DeviceID', ch) + field('AlarmMethod', '5') + field('AlarmDescription', desc)), 'latin1');
      expect(await dev.message(body(nul, '1', 'north\0gate'))).toBe(200);
      expect(await dev.message(body(surrogate, '2', 'east&#xD800;wall'))).toBe(200);
      const [a] = await incidentsAt(nul);
      expect(a.note).toContain('northgate');
      const [b] = await incidentsAt(surrogate);
      expect(b.note).toContain('east\ufffdwall');
    });

    it('keeps a whole catalog when one channel name holds a NUL byte', async () => {
      const { deviceId, dev, sn } = await device();
      const items = [1, 2, 3].map((n) => ({ id: channelOf(deviceId, n), name: n === 2 ? 'bad\0name' : `cam ${n}` }));
      expect(await dev.message(Buffer.from(catalogXml(deviceId, sn, 3, items), 'latin1'))).toBe(200);
      await until(async () => (await cameras(deviceId)).length === 3, 10000, 'three cameras');
      expect((await cameras(deviceId)).map((c) => c.name).sort()).toEqual(['badname', 'cam 1', 'cam 3']);
    });
  });

  describe('attack pass 8 F5: a BOM is a claim about the bytes, not proof', () => {
    it('decodes GB18030 text behind a UTF-8 BOM as GB18030, and counts an alarm with bytes valid in no charset instead of silently storing U+FFFD', async () => {
      const { deviceId, dev } = await device();
      const bom = Buffer.from([0xef, 0xbb, 0xbf]);
      const alarm = (ch: string, sn: string, desc: Buffer) =>
        Buffer.concat([
          Buffer.from(
            `<?xml version="1.0" encoding="UTF-8"?>\r\n` +
              alarmXml(field('SN', sn) + field('DeviceID', ch) + field('AlarmMethod', '5')).replace('</Notify>', '<AlarmDescription>'),
            'latin1',
          ),
          desc,
          Buffer.from('</AlarmDescription>\r\n</Notify>\r\n', 'latin1'),
        ]);
      const liar = channelOf(deviceId, 1);
      expect(await dev.message(Buffer.concat([bom, alarm(liar, '1', iconv.encode('张三丰翻越东侧围墙', 'gb18030'))]))).toBe(200);
      const [a] = await incidentsAt(liar);
      expect(a.note).toContain('张三丰翻越东侧围墙');
      expect(a.note).not.toContain('\ufffd');
      // A GB18030 description with a stray FF byte: the alarm is raised, the unreadable byte marked, and the message counted.
      const before = await metric('shouhu_malformed_input_total', { source: 'sip', reason: 'undecodable_bytes' });
      const broken = channelOf(deviceId, 2);
      expect(
        await dev.message(
          Buffer.concat([bom, alarm(broken, '2', Buffer.concat([iconv.encode('东门', 'gb18030'), Buffer.from([0xff]), iconv.encode('有人', 'gb18030')]))]),
        ),
      ).toBe(200);
      const [b] = await incidentsAt(broken);
      expect(b.note).toContain('东门\ufffd有人');
      expect(await metric('shouhu_malformed_input_total', { source: 'sip', reason: 'undecodable_bytes' })).toBe(before + 1);
    });
  });

  describe('F4: an alarm of a registered device is never refused for an odd field', () => {
    it('raises each odd alarm as an incident (type other, the odd values in the note); 400 only when nothing alarm-like can be read', async () => {
      const { deviceId, dev } = await device();
      const cases: [string, Buffer][] = [
        ['video', Buffer.from(alarmXml(field('SN', '11') + field('AlarmMethod', 'video')), 'latin1')],
        ['5/6', Buffer.from(alarmXml(field('SN', '12') + field('AlarmMethod', '5/6')), 'latin1')],
        ['-1', Buffer.from(alarmXml(field('SN', '13') + field('AlarmMethod', '-1')), 'latin1')],
        ['100', Buffer.from(alarmXml(field('SN', '14') + field('AlarmMethod', '100')), 'latin1')],
        ['long SN', Buffer.from(alarmXml(field('SN', '123456789012345') + field('AlarmMethod', '5')), 'latin1')],
        ['text SN', Buffer.from(alarmXml(field('SN', 'abc') + field('AlarmMethod', '5')), 'latin1')],
        ['BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(alarmXml(field('SN', '16') + field('AlarmMethod', '2')), 'utf8')])],
        ['Response root', Buffer.from(alarmXml(field('SN', '17') + field('AlarmMethod', '5'), 'Response'), 'latin1')],
        [
          'broken XML',
          Buffer.from(`<Notify><CmdType>Alarm</CmdType><SN>18</SN><AlarmMethod>5</AlarmMethod><AlarmDescription>broken</AlarmDescription>`, 'latin1'),
        ],
      ];
      for (const [i, [what, bytes]] of cases.entries()) {
        // Each on its own channel: one incident each (a channel's open incident would fold the next one).
        const ch = channelOf(deviceId, i + 1);
        const withChannel = Buffer.from(
          bytes.toString('latin1').replace('<CmdType>Alarm</CmdType>', `<CmdType>Alarm</CmdType><DeviceID>${ch}</DeviceID>`),
          'latin1',
        );
        expect([what, await dev.message(withChannel)]).toEqual([what, 200]);
        const found = await incidentsAt(ch);
        expect([what, found.length]).toEqual([what, 1]);
      }
      const [video] = await incidentsAt(channelOf(deviceId, 1));
      expect(video.type).toBe('other');
      expect(video.note).toContain('AlarmMethod=video');
      expect((await incidentsAt(channelOf(deviceId, 2)))[0].note).toContain('AlarmMethod=5/6');
      // Nothing alarm-like: still a 400.
      expect(await dev.message(Buffer.from('<Notify><SN>1</SN></Notify>', 'latin1'))).toBe(400);
      expect(await dev.message(Buffer.from('not xml at all', 'latin1'))).toBe(400);
    });

    it('counts keepalives whose SN is a millisecond timestamp or text: the device stays alive', async () => {
      const { deviceId, dev } = await device();
      const ka = (sn: string) =>
        `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${deviceId}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n`;
      expect(await dev.message(ka('1732950000123'))).toBe(200);
      const first = (await registration(deviceId))!.lastKeepaliveAt;
      expect(first).not.toBeNull();
      expect(await dev.message(ka('-5'))).toBe(200);
      await until(async () => (await registration(deviceId))!.lastKeepaliveAt !== first, 5000, 'a second keepalive counted');
    });
  });

  describe('F14: alarm repeats are recognised for a bounded window only', () => {
    it('folds a repeat of the same SN, and raises a new incident for the same SN after a reboot once the first is resolved', async () => {
      const { deviceId, dev } = await device();
      const ch = channelOf(deviceId, 1);
      const alarm = (desc: string) =>
        Buffer.from(
          alarmXml(field('SN', '1') + field('DeviceID', ch) + field('AlarmMethod', '2') + field('AlarmPriority', '1') + field('AlarmDescription', desc)),
          'latin1',
        );
      expect(await dev.message(alarm('first'))).toBe(200);
      expect(await dev.message(alarm('first'))).toBe(200); // the device repeats it (a new transaction, same SN)
      const [first] = await incidentsAt(ch);
      expect(first.pressCount).toBe(1);
      await t.http().post(`/api/v1/incidents/${first.id}/acknowledge`).set(auth(operator)).send({}).expect(200);
      await t.http().post(`/api/v1/incidents/${first.id}/resolve`).set(auth(operator)).send({ outcome: 'genuine' }).expect(200);
      // The device reboots: its SN counter restarts, it has no clock. Past the window, SN 1 is a new alarm.
      await new Promise((r) => setTimeout(r, REPEAT_WINDOW_MS + 100));
      expect(await dev.message(alarm('after reboot'))).toBe(200);
      await until(async () => (await incidentsAt(ch)).length === 2, 5000, 'a second incident');
      const second = (await incidentsAt(ch)).find((i) => i.id !== first.id)!;
      expect(second.status).toBe('raised');
      expect(second.note).toContain('after reboot');
    });
  });

  describe('F6 + F16 + A9: MESSAGEs are taken only from the host the device registered from', () => {
    it('refuses an alarm, a keepalive and a catalog naming a registered device from another host (403, counted); the device itself still works', async () => {
      const { deviceId, dev, sn } = await device();
      const spoof = await peer(deviceId, { register: false, localAddress: OTHER_HOST });
      const ch = channelOf(deviceId, 1);
      const before = await metric('shouhu_gb28181_events_total', { event: 'message_wrong_source' });
      expect(await spoof.message(alarmXml(field('SN', '5') + field('DeviceID', ch) + field('AlarmMethod', '5') + field('AlarmDescription', 'SPOOFED')))).toBe(
        403,
      );
      const seen = (await registration(deviceId))!.lastKeepaliveAt;
      expect(await spoof.sendKeepalive()).toBe(403);
      const fakes = Array.from({ length: 5 }, (_, i) => ({ id: channelOf(deviceId, 50 + i), name: `fake ${i}` }));
      expect(await spoof.message(catalogXml(deviceId, sn, 5, fakes))).toBe(403);
      expect(await metric('shouhu_gb28181_events_total', { event: 'message_wrong_source' })).toBe(before + 3);
      expect(await incidentsAt(ch)).toEqual([]);
      expect((await registration(deviceId))!.lastKeepaliveAt).toBe(seen);
      // The registered device: its keepalive, alarm and catalog are taken.
      expect(await dev.sendKeepalive()).toBe(200);
      expect(await dev.message(alarmXml(field('SN', '6') + field('DeviceID', ch) + field('AlarmMethod', '5') + field('AlarmDescription', 'REAL')))).toBe(200);
      expect((await incidentsAt(ch)).map((i) => i.note).join()).toContain('REAL');
      expect(await dev.message(catalogXml(deviceId, sn, 1, [{ id: channelOf(deviceId, 2), name: 'real' }]))).toBe(200);
      await until(async () => (await cameras(deviceId)).length === 1, 10000, 'the real camera');
      expect((await cameras(deviceId)).map((c) => c.name)).toEqual(['real']);
    });

    it('A9: takes an alarm from the registered IP on a new port (NAT rebinding) or a new TCP connection, and moves the contact there; another IP is refused', async () => {
      const { deviceId } = await device();
      const ch = channelOf(deviceId, 1);
      const alarm = (sn: string, desc: string) =>
        alarmXml(field('SN', sn) + field('DeviceID', ch) + field('AlarmMethod', '5') + field('AlarmDescription', desc));
      const moved = await metric('shouhu_gb28181_events_total', { event: 'message_source_moved' });
      const rebound = await peer(deviceId, { register: false });
      expect(await rebound.message(alarm('7', 'AFTER-REBIND'))).toBe(200);
      expect((await incidentsAt(ch)).map((i) => i.note).join()).toContain('AFTER-REBIND');
      expect(await metric('shouhu_gb28181_events_total', { event: 'message_source_moved' })).toBe(moved + 1);
      // Our next request goes where the device now is.
      const asked = await t.http().post(`/api/v1/gb28181/devices/${deviceId}/query`).set(auth(admin)).expect(202);
      expect(asked.body.catalog).toBe(200);
      expect((await rebound.waitForQuery('Catalog')).root).toBe('Query');
      // From another IP: still 403, nothing recorded.
      const wrong = await metric('shouhu_gb28181_events_total', { event: 'message_wrong_source' });
      const far = await peer(deviceId, { register: false, localAddress: OTHER_HOST });
      expect(await far.message(alarm('8', 'FROM-ELSEWHERE'))).toBe(403);
      expect(await metric('shouhu_gb28181_events_total', { event: 'message_wrong_source' })).toBe(wrong + 1);
      expect((await incidentsAt(ch)).map((i) => i.note).join()).not.toContain('FROM-ELSEWHERE');
      // TCP: a device that reconnected is taken on its new connection; a connection from another IP is not.
      const tcp = await device({ transport: 'TCP' });
      const reconnected = await peer(tcp.deviceId, { register: false, transport: 'TCP' });
      expect(await reconnected.sendKeepalive()).toBe(200);
      expect(await metric('shouhu_gb28181_events_total', { event: 'message_source_moved' })).toBe(moved + 2);
      expect(await (await peer(tcp.deviceId, { register: false, transport: 'TCP', localAddress: OTHER_HOST })).sendKeepalive()).toBe(403);
    });
  });

  describe('A11: the default password enrols a bounded number of devices', () => {
    it('refuses a new device id past gb28181.defaultPasswordMaxDevices (403, counted, nothing kept); known, provisioned and own-password devices still register', async () => {
      const states = t.app.get(GbDeviceStates);
      const cfg = t.config.gb28181;
      const was = cfg.defaultPasswordMaxDevices;
      const known = await device(); // provisioned by an admin, registered with the default password
      const enrol = (id: string, o: { password?: string } = {}) => site.sim(id, o).start();
      const refused = () => metric('shouhu_gb28181_events_total', { event: 'default_password_refused' });
      const before = await refused();
      cfg.defaultPasswordMaxDevices = states.defaultPasswordDevices + 1;
      try {
        await enrol(deviceIdOf(++seq)); // a device nobody provisioned: the last one the cap lets in
        const over = deviceIdOf(++seq);
        await expect(enrol(over)).rejects.toThrow('REGISTER: expected 200, got 403');
        expect(await refused()).toBe(before + 1);
        // Known devices go on: re-register, unregister, register again.
        await known.dev.register();
        await known.dev.register(0);
        await known.dev.register();
        // A device an admin provisioned (the default password) and one with its own password register past the cap.
        await site.device(deviceIdOf(++seq), { schoolId });
        const ownId = deviceIdOf(++seq);
        await t.http().patch(`/api/v1/gb28181/devices/${ownId}`).set(auth(admin)).send({ password: 'own-pass-a11' }).expect(200);
        await enrol(ownId, { password: 'own-pass-a11' });
        // The refused id stays refused; its unregistration is answered but makes no row either.
        await expect(enrol(over)).rejects.toThrow('REGISTER: expected 200, got 403');
        const ghost = site.sim(over);
        await ghost.start({ register: false });
        await ghost.register(0);
        await states.flushRegistrations();
        expect((await t.db.query(`SELECT device_id FROM gb_devices WHERE device_id = $1`, [over])).rows).toEqual([]);
        expect(await refused()).toBe(before + 2);
      } finally {
        cfg.defaultPasswordMaxDevices = was;
      }
    });
  });

  describe('A3: alarms have a budget of their own', () => {
    it('records every alarm sent in a keepalive flood over the per-device limit (keepalives are the ones answered 503)', async () => {
      const { deviceId, dev } = await device();
      const ch = channelOf(deviceId, 1);
      /** Keepalives until one is answered 503: the device's bucket is then empty. */
      const flood = async () => {
        for (let n = 0; n < DEVICE_BURST * 3; n++) if ((await dev.sendKeepalive()) === 503) return;
        throw new Error('the keepalive flood was never limited');
      };
      for (let sn = 9000; sn < 9005; sn++) {
        await flood();
        expect([sn, await dev.message(alarmXml(field('SN', String(sn)) + field('DeviceID', ch) + field('AlarmMethod', '5')))]).toEqual([sn, 200]);
      }
      await until(async () => (await incidentsAt(ch))[0]?.pressCount === 5, 10000, 'five presses');
      expect((await incidentsAt(ch)).length).toBe(1);
    });
  });

  describe('F10: catalogs in many parts and many SNs cannot take over memory or the database pool', () => {
    const channels = async (deviceId: string) =>
      (await t.db.query(`SELECT channel_id, removed_at IS NOT NULL AS removed FROM gb_channels WHERE device_id = $1 ORDER BY channel_id`, [deviceId])).rows as {
        channel_id: string;
        removed: boolean;
      }[];
    const items = (deviceId: string, from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => ({ id: channelOf(deviceId, from + i), name: `cam ${from + i}` }));

    it('keeps at most 4 open catalogs per device (the oldest dropped) and MAX in all (a new one refused); a Catalog in one message always goes through', async () => {
      const catalogs = t.app.get(GbCatalog);
      const a = await device();
      const evicted = await metric('shouhu_gb28181_events_total', { event: 'catalog_evicted' });
      const refused = await metric('shouhu_gb28181_events_total', { event: 'catalog_refused' });
      // Six never-finished catalogs (first part of two) with ever-new SNs: the device keeps its newest four.
      for (let n = 1; n <= 6; n++) expect(await a.dev.message(catalogXml(a.deviceId, String(1000 + n), 2, items(a.deviceId, n, n)))).toBe(200);
      expect(catalogs.openAssemblies(a.deviceId)).toBe(4);
      expect(await metric('shouhu_gb28181_events_total', { event: 'catalog_evicted' })).toBe(evicted + 2);
      // The newest still completes with its second part.
      expect(await a.dev.message(catalogXml(a.deviceId, '1006', 2, items(a.deviceId, 60, 60)))).toBe(200);
      await until(async () => (await channels(a.deviceId)).length === 2, 10000, 'the completed catalog saved');
      expect((await channels(a.deviceId)).map((c) => c.channel_id)).toEqual([channelOf(a.deviceId, 6), channelOf(a.deviceId, 60)]);
      expect(catalogs.openAssemblies(a.deviceId)).toBe(3);
      // Another device fills the rest; past MAX in all a new one is refused, counted.
      const b = await device();
      const room = MAX_ASSEMBLIES - catalogs.openAssemblies();
      for (let n = 1; n <= room + 1; n++) expect(await b.dev.message(catalogXml(b.deviceId, String(2000 + n), 2, items(b.deviceId, n, n)))).toBe(200);
      expect(catalogs.openAssemblies()).toBe(MAX_ASSEMBLIES);
      expect(catalogs.openAssemblies(b.deviceId)).toBe(room);
      expect(await metric('shouhu_gb28181_events_total', { event: 'catalog_refused' })).toBe(refused + 1);
      // A Catalog complete in one message needs no assembly: taken even now.
      const c = await device();
      expect(await c.dev.message(catalogXml(c.deviceId, c.sn, 1, items(c.deviceId, 1, 1)))).toBe(200);
      await until(async () => (await cameras(c.deviceId)).length === 1, 10000, 'the one-message catalog placed');
    });

    it('saves one catalog per device at a time with one waiting (a newer one replaces it), two at once in all, in statements of at most 10 channels here', async () => {
      const [x, y, z] = [await device(), await device(), await device()];
      // Saves of earlier cases (placing cameras, their statuses) are over: both slots are free.
      const catalogs = t.app.get(GbCatalog);
      await until(() => catalogs.savesInFlight().running === 0, 10000, 'no catalog save running');
      const superseded = await metric('shouhu_gb28181_events_total', { event: 'catalog_superseded' });
      // The test's own connection holds the device rows of x and y: their saves wait on the lock, holding both save slots.
      await t.db.query('BEGIN');
      try {
        await t.db.query(`SELECT 1 FROM gb_devices WHERE device_id = ANY($1) FOR UPDATE`, [[x.deviceId, y.deviceId]]);
        expect(await x.dev.message(catalogXml(x.deviceId, '1', 25, items(x.deviceId, 1, 25)))).toBe(200);
        for (const [sn, from] of [
          ['2', 26],
          ['3', 31],
          ['4', 36],
        ] as const)
          expect(await x.dev.message(catalogXml(x.deviceId, sn, 5, items(x.deviceId, from, from + 4)))).toBe(200);
        expect(await y.dev.message(catalogXml(y.deviceId, '1', 1, items(y.deviceId, 1, 1)))).toBe(200);
        expect(await z.dev.message(catalogXml(z.deviceId, '1', 1, items(z.deviceId, 1, 1)))).toBe(200);
        // Both save slots are taken by x and y, each blocked by this connection's lock in the database (not counting the registration write-behind).
        const blocked = async () =>
          (
            await t.db.query(
              `SELECT left(query, 60) AS query FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)) AND query NOT LIKE 'INSERT INTO gb_devices (device_id, school_id%'`,
            )
          ).rows as { query: string }[];
        await until(async () => (await blocked()).length === 2, 10000, 'two catalog saves blocked on the lock').catch(async (e) => {
          throw new Error(`${(e as Error).message}: ${JSON.stringify(catalogs.savesInFlight())} ${JSON.stringify(await blocked())}`);
        });
        // Two at once in all: z's waits its turn (not even in the database); x's 3rd and 4th each replaced the one waiting.
        expect(catalogs.savesInFlight()).toEqual({ running: 2, waiting: 2 });
        expect((await blocked()).length).toBe(2);
        expect(await channels(z.deviceId)).toEqual([]);
        expect(await metric('shouhu_gb28181_events_total', { event: 'catalog_superseded' })).toBe(superseded + 2);
      } finally {
        await t.db.query('COMMIT');
      }
      await until(async () => (await channels(z.deviceId)).length === 1, 10000, "z's catalog saved");
      const want = (from: number, to: number, removed: boolean) => items(x.deviceId, from, to).map((i) => ({ channel_id: i.id, removed }));
      // x: its first catalog (25 channels, three statements), then its latest (the 4th) replacing it — the 2nd and 3rd never written.
      await until(async () => (await channels(x.deviceId)).some((c) => c.removed), 10000, "x's latest catalog saved");
      expect(await channels(x.deviceId)).toEqual([...want(1, 25, true), ...want(36, 40, false)]);
      await until(async () => (await cameras(x.deviceId)).length === 30, 10000, "x's cameras");
    });
  });
});

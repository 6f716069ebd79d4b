import * as iconv from 'iconv-lite';
import { DeviceHealthService } from '../../src/modules/device-health';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { GbCameras } from '../../src/modules/gb28181/gb-cameras';
import { GbDeviceStates } from '../../src/modules/gb28181/gb-device-states';
import { Gb28181Store } from '../../src/modules/gb28181/gb28181.store';
import { RateLimiter } from '../../src/modules/gb28181/sip-transport';
import { answerNext, GB_PLATFORM as PLATFORM, gbResponse, GbSite, startGbSite } from '../support/gb-site';
import { auth, TestApp } from '../support/harness';
import { until } from '../support/processes';
import { GbCameraOptions } from '../support/video/gb-camera';

/**
 * GB/T 28181 as real Hikvision / Dahua / Uniview fleets speak it (issue 16), each case against our
 * simulated device (test/support/video/gb-camera.ts, a real SIP UA over UDP/TCP) with the platform's
 * state read back through the HTTP API.
 */
const PASSWORD = 'fleet-pass-01';
let seq = 0;
/** A fresh NVR id (type 118) and its channel ids (type 131). */
const nvrId = () => `3402000000118${String(10000000 + ++seq).slice(1)}`;
const chId = (dev: string, n: number) => `${dev.slice(0, 10)}131${dev.slice(15, 20)}${String(n).padStart(2, '0')}`;

type Enc = 'UTF-8' | 'GB18030';
const encode = (xml: string, enc: Enc) => (enc === 'UTF-8' ? Buffer.from(xml, 'utf8') : iconv.encode(xml, 'gb18030'));
const decl = (declared: string | null) => (declared === null ? '' : `<?xml version="1.0" encoding="${declared}"?>\r\n`);

/** A one-part Catalog response (§A.2.6.3 Response/Catalog) as `enc` bytes, declaring `declared`. */
function catalogBody(dev: string, sn: string, items: { id: string; name: string; status?: string }[], enc: Enc, declared: string | null, bom = false): Buffer {
  const list = items
    .map((i) => `<Item><DeviceID>${i.id}</DeviceID><Name>${i.name}</Name><Manufacturer>Dahua</Manufacturer><Status>${i.status ?? 'ON'}</Status></Item>`)
    .join('\r\n');
  const xml = `${decl(declared)}<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${dev}</DeviceID>\r\n<SumNum>${items.length}</SumNum>\r\n<DeviceList Num="${items.length}">\r\n${list}\r\n</DeviceList>\r\n</Response>\r\n`;
  const body = encode(xml, enc);
  return bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]) : body;
}

describe('GB/T 28181 fleets (issue 16)', () => {
  let site: GbSite;
  let t: TestApp;
  let admin: string;
  let seed: NonNullable<GbSite['seed']>;

  beforeAll(async () => {
    site = await startGbSite({
      password: PASSWORD,
      seed: true,
      gb28181: {
        queryTimeoutMs: 1000,
        housekeepingMs: 200,
        catalogSubscribeSeconds: 2,
        deviceStatusQuerySeconds: 1,
        commandTimeoutMs: 1500,
        recordInfoTimeoutMs: 1500,
      },
    });
    ({ t, admin } = site);
    seed = site.seed!;
  });

  afterAll(async () => {
    await site?.close();
  });

  /** A simulated NVR placed in school A (optionally with a charset and other device options), registered; resolves once the platform has queried its Catalog. */
  const nvr = (o: Partial<GbCameraOptions> & { charset?: string } = {}) => site.device(nvrId(), { schoolId: seed.schoolA.id, ...o });

  const cameras = async (deviceId: string) =>
    (await t.http().get('/api/v1/cameras').query({ deviceId, limit: 100 }).set(auth(admin)).expect(200)).body.items as {
      id: string;
      channelId: string;
      name: string;
      status: string;
    }[];

  /** Waits for the cameras of these channels and returns their names by channel id. */
  async function namesOf(deviceId: string, n: number): Promise<Record<string, string>> {
    let names: Record<string, string> = {};
    await until(
      async () => {
        const cams = await cameras(deviceId);
        names = Object.fromEntries(cams.map((c) => [c.channelId, c.name]));
        return cams.length === n;
      },
      10000,
      `${n} cameras of ${deviceId}`,
    );
    return names;
  }

  describe('charsets (§1)', () => {
    it('decodes a Catalog declared UTF-8 as UTF-8: the channel and the camera made from it are named 大门口', async () => {
      const { deviceId, dev, sn } = await nvr();
      const ch = chId(deviceId, 1);
      expect(await dev.message(catalogBody(deviceId, sn, [{ id: ch, name: '大门口' }], 'UTF-8', 'UTF-8'))).toBe(200);
      expect(await namesOf(deviceId, 1)).toEqual({ [ch]: '大门口' });
      const listed = await t.http().get('/api/v1/gb28181/channels').query({ deviceId }).set(auth(admin)).expect(200);
      expect(listed.body.items.map((c: { name: string }) => c.name)).toEqual(['大门口']);
    });

    it('takes a UTF-8 body with a byte-order mark (no 400), and a body declared GB2312 that is UTF-8 as UTF-8', async () => {
      const { deviceId, dev, sn } = await nvr();
      const items = [
        { id: chId(deviceId, 1), name: '有人翻越围墙' },
        { id: chId(deviceId, 2), name: '东侧围墙' },
      ];
      expect(await dev.message(catalogBody(deviceId, sn, items.slice(0, 1), 'UTF-8', 'UTF-8', true))).toBe(200);
      expect(await namesOf(deviceId, 1)).toEqual({ [items[0].id]: '有人翻越围墙' });
      const again = String(Number(sn) + 1000);
      expect(await dev.message(catalogBody(deviceId, again, items, 'UTF-8', 'GB2312'))).toBe(200);
      expect(await namesOf(deviceId, 2)).toEqual({ [items[0].id]: '有人翻越围墙', [items[1].id]: '东侧围墙' });
    });

    it('keeps GB18030 exact, beyond GB2312 too (萳, 㐀, 𠀾, 喆镕堃), declared GB2312, GB18030 or not at all', async () => {
      const { deviceId, dev, sn } = await nvr();
      const names = ['萳', '㐀', '𠀾', '喆镕堃', '南大门'];
      const items = names.map((name, i) => ({ id: chId(deviceId, i + 1), name }));
      expect(await dev.message(catalogBody(deviceId, sn, items.slice(0, 2), 'GB18030', 'GB2312'))).toBe(200);
      await namesOf(deviceId, 2);
      expect(await dev.message(catalogBody(deviceId, String(Number(sn) + 1000), items.slice(0, 4), 'GB18030', 'GB18030'))).toBe(200);
      await namesOf(deviceId, 4);
      expect(await dev.message(catalogBody(deviceId, String(Number(sn) + 2000), items, 'GB18030', null))).toBe(200);
      expect(await namesOf(deviceId, 5)).toEqual(Object.fromEntries(items.map((i) => [i.id, i.name])));
    });

    it('passes a UTF-8 alarm description into the incident note', async () => {
      const { deviceId, dev } = await nvr();
      const ch = chId(deviceId, 1);
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>77</SN>\r\n<DeviceID>${ch}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n<AlarmTime>2026-11-28T21:30:00</AlarmTime>\r\n<AlarmDescription>有人翻越围墙</AlarmDescription>\r\n</Notify>\r\n`;
      expect(await dev.message(Buffer.from(xml, 'utf8'))).toBe(200);
      const op = (await t.userToken('operator')).token;
      const list = await t.http().get('/api/v1/incidents').query({ limit: 500 }).set(auth(op)).expect(200);
      const mine = list.body.items.filter((i: { location: string }) => i.location.includes(deviceId));
      expect(mine).toHaveLength(1);
      expect(mine[0].note).toContain('有人翻越围墙');
    });

    it('follows the per-device override: UTF-8 bytes that also read as GB2312 text are UTF-8 when the device is set to UTF-8', async () => {
      // 西楼 in UTF-8 (E8 A5 BF E6 A5 BC) is also valid, GB2312-looking GB18030: auto must take the declaration.
      const auto = await nvr();
      const a = chId(auto.deviceId, 1);
      expect(await auto.dev.message(catalogBody(auto.deviceId, auto.sn, [{ id: a, name: '西楼' }], 'UTF-8', 'GB2312'))).toBe(200);
      expect(await namesOf(auto.deviceId, 1)).toEqual({ [a]: iconv.decode(Buffer.from('西楼', 'utf8'), 'gb18030') });

      const forced = await nvr({ charset: 'UTF-8' });
      const f = chId(forced.deviceId, 1);
      expect(await forced.dev.message(catalogBody(forced.deviceId, forced.sn, [{ id: f, name: '西楼' }], 'UTF-8', 'GB2312'))).toBe(200);
      expect(await namesOf(forced.deviceId, 1)).toEqual({ [f]: '西楼' });

      // And GB18030 for a device whose firmware declares UTF-8 but sends GB18030 (a full catalog again): the API shows and audits the setting.
      await t.http().patch(`/api/v1/gb28181/devices/${forced.deviceId}`).set(auth(admin)).send({ charset: 'GB18030' }).expect(200);
      const listed = await t.http().get('/api/v1/gb28181/devices').query({ limit: 500 }).set(auth(admin)).expect(200);
      expect(listed.body.items.find((d: { deviceId: string }) => d.deviceId === forced.deviceId)).toMatchObject({ charset: 'GB18030' });
      const f2 = chId(forced.deviceId, 2);
      expect(
        await forced.dev.message(
          catalogBody(
            forced.deviceId,
            '9001',
            [
              { id: f, name: '西楼' },
              { id: f2, name: '喆镕堃' },
            ],
            'GB18030',
            'UTF-8',
          ),
        ),
      ).toBe(200);
      expect((await namesOf(forced.deviceId, 2))[f2]).toBe('喆镕堃');
      const audit = await t.db.query(`SELECT after FROM audit_log WHERE entity = 'gb_device' AND after->>'deviceId' = $1 ORDER BY at`, [forced.deviceId]);
      expect(audit.rows.map((r: { after: { charset?: string } }) => r.after.charset)).toEqual(['UTF-8', 'GB18030']);

      const bad = await t.http().patch(`/api/v1/gb28181/devices/${forced.deviceId}`).set(auth(admin)).send({ charset: 'BIG5' }).expect(400);
      expect(JSON.stringify(bad.body)).toContain('charset');
    });
  });

  describe('per-channel status (§2)', () => {
    const sweep = () => t.app.get(DeviceHealthService).sweep(Date.now() + 1);
    const statuses = async (deviceId: string) => Object.fromEntries((await cameras(deviceId)).map((c) => [c.channelId, c.status]));
    async function expectStatuses(deviceId: string, want: Record<string, string>) {
      let got: Record<string, string> = {};
      await until(
        async () => {
          got = await statuses(deviceId);
          return Object.entries(want).every(([k, v]) => got[k] === v);
        },
        10000,
        `statuses ${JSON.stringify(want)}`,
      ).catch(() => expect(got).toEqual(want));
    }
    const transitions = async (cameraId: string) =>
      (await t.db.query(`SELECT to_status FROM device_transitions WHERE device_id = $1 ORDER BY at, id`, [cameraId])).rows.map(
        (r: { to_status: string }) => r.to_status,
      );
    const notifyBody = (dev: string, events: [string, string][]) =>
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${++seq}</SN>\r\n<DeviceID>${dev}</DeviceID>\r\n<SumNum>${events.length}</SumNum>\r\n<DeviceList Num="${events.length}">\r\n${events
        .map(([id, ev]) => `<Item><DeviceID>${id}</DeviceID><Event>${ev}</Event></Item>`)
        .join('\r\n')}\r\n</DeviceList>\r\n</Notify>\r\n`;

    /** An NVR of three channels placed in school A, the second reported Status OFF in its Catalog. */
    async function nvrWithChannels() {
      const n = await nvr();
      const ch = [1, 2, 3].map((i) => chId(n.deviceId, i));
      const items = [
        { id: ch[0], name: '南门', status: 'ON' },
        { id: ch[1], name: '北门', status: 'OFF' },
        { id: ch[2], name: '操场', status: 'ON' },
      ];
      expect(await n.dev.message(catalogBody(n.deviceId, n.sn, items, 'GB18030', 'GB2312'))).toBe(200);
      await namesOf(n.deviceId, 3);
      const ids = Object.fromEntries((await cameras(n.deviceId)).map((c) => [c.channelId, c.id]));
      return { ...n, ch, cam: ch.map((c) => ids[c]) };
    }

    it('a channel reported Status OFF in the Catalog is offline (transition, outage) and the NVR keepalive does not bring it back', async () => {
      const { deviceId, dev, ch, cam } = await nvrWithChannels();
      expect(await dev.sendKeepalive()).toBe(200);
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[2]]: 'online' });
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'offline', [ch[2]]: 'online' });
      expect(await dev.sendKeepalive()).toBe(200);
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'offline', [ch[2]]: 'online' });
      expect(await transitions(cam[1])).toEqual(['offline']);
      const faults = await t.db.query(`SELECT device_id FROM device_faults WHERE device_id = $1 AND recovered_at IS NULL`, [cam[1]]);
      expect(faults.rows).toHaveLength(1);
      const outages = await t.http().get('/api/v1/device-health/outages').set(auth(admin)).expect(200);
      expect(JSON.stringify(outages.body)).toContain(seed.schoolA.id);
    });

    it('Catalog notifications: Event OFF (NOTIFY) takes the camera offline, Event ON (MESSAGE) brings it back at once', async () => {
      const { deviceId, dev, ch, cam } = await nvrWithChannels();
      expect(await dev.sendKeepalive()).toBe(200);
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[2]]: 'online' });
      expect(await dev.notify(notifyBody(deviceId, [[ch[0], 'OFF']]))).toBe(200);
      await until(async () => (await sweep()) && (await statuses(deviceId))[ch[0]] === 'offline', 10000, 'channel 1 offline');
      expect(await dev.sendKeepalive()).toBe(200);
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'offline', [ch[2]]: 'online' });
      expect(await dev.message(notifyBody(deviceId, [[ch[0], 'ON']]))).toBe(200);
      await expectStatuses(deviceId, { [ch[0]]: 'online' });
      expect(await transitions(cam[0])).toEqual(['online', 'offline', 'online']);
      // VLOST (video lost) counts as down; the status is kept on the channel.
      expect(await dev.message(notifyBody(deviceId, [[ch[2], 'VLOST']]))).toBe(200);
      await until(async () => (await sweep()) && (await statuses(deviceId))[ch[2]] === 'offline', 10000, 'channel 3 offline');
      const listed = await t.http().get('/api/v1/gb28181/channels').query({ deviceId }).set(auth(admin)).expect(200);
      expect(listed.body.items.find((c: { channelId: string }) => c.channelId === ch[2]).status).toBe('VLOST');
      expect(cam).toHaveLength(3);
    });

    it('Keepalive <Info><DeviceList> of faulty channels: those cameras go offline; a keepalive without them brings them back', async () => {
      const { deviceId, dev, ch, cam } = await nvrWithChannels();
      expect(await dev.sendKeepalive()).toBe(200);
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[2]]: 'online' });
      expect(await dev.sendKeepalive([ch[2]])).toBe(200);
      await until(async () => (await sweep()) && (await statuses(deviceId))[ch[2]] === 'offline', 10000, 'channel 3 offline');
      expect(await dev.sendKeepalive([ch[2]])).toBe(200);
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'offline', [ch[2]]: 'offline' });
      expect(await dev.sendKeepalive()).toBe(200);
      // Back, but the channel its Catalog reported OFF stays down.
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'offline', [ch[2]]: 'online' });
      expect(await transitions(cam[2])).toEqual(['online', 'offline', 'online']);
    });

    /**
     * Holds the next heartbeat write of the app (DeviceHealthService.recordHeartbeats) whose ids
     * `match`, until `release` — a write decided earlier made to arrive late, deterministically.
     * `release` resolves when the held write has finished.
     */
    function holdNextHeartbeatWrite(match: (ids: string[], keep: ((id: string) => boolean) | undefined) => boolean) {
      const health = t.app.get(DeviceHealthService);
      const original = health.recordHeartbeats;
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      let reached!: () => void;
      const held = new Promise<void>((r) => (reached = r));
      let done: Promise<unknown> = Promise.resolve();
      health.recordHeartbeats = function (this: DeviceHealthService, ...args: Parameters<DeviceHealthService['recordHeartbeats']>) {
        if (!match(args[0], args[2])) return original.apply(this, args);
        health.recordHeartbeats = original;
        reached();
        const write = gate.then(() => original.apply(this, args));
        done = write;
        return write;
      };
      return {
        held,
        release: async () => {
          open();
          await done;
        },
        restore: () => (health.recordHeartbeats = original),
      };
    }

    it('a heartbeat decided before a faulty list never lands after it: a Catalog ON and a keepalive heartbeat held back do not revive the faulty channel', async () => {
      const n = await nvr();
      const { deviceId, dev } = n;
      const ch = [1, 2, 3].map((i) => chId(deviceId, i));
      const state = () => t.app.get(GbDeviceStates).devices.get(deviceId);
      // 1. The Catalog's heartbeat for its ON channels (1 and 3) is held after it was decided.
      const catalogWrite = holdNextHeartbeatWrite((ids) => ids.some((id) => state()?.cameraIds?.includes(id)));
      const items = [
        { id: ch[0], name: '南门', status: 'ON' },
        { id: ch[1], name: '北门', status: 'OFF' },
        { id: ch[2], name: '操场', status: 'ON' },
      ];
      try {
        expect(await dev.message(catalogBody(deviceId, n.sn, items, 'GB18030', 'GB2312'))).toBe(200);
        await catalogWrite.held;
        // Meanwhile a keepalive lists channel 3 as faulty: its camera is expired and swept offline.
        expect(await dev.sendKeepalive([ch[2]])).toBe(200);
        await until(async () => (await sweep()) && (await statuses(deviceId))[ch[2]] === 'offline', 10000, 'channel 3 offline');
      } finally {
        catalogWrite.restore();
        await catalogWrite.release();
      }
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'offline', [ch[2]]: 'offline' });
      const cam3 = (await cameras(deviceId)).find((c) => c.channelId === ch[2])!.id;
      expect(await transitions(cam3)).toEqual(['offline']);

      // 2. Back (a keepalive without it), then a plain keepalive's own queued heartbeat is held while the next one lists it faulty.
      expect(await dev.sendKeepalive()).toBe(200);
      await expectStatuses(deviceId, { [ch[2]]: 'online' });
      const keepaliveWrite = holdNextHeartbeatWrite((ids) => ids.includes(cam3));
      try {
        expect(await dev.sendKeepalive()).toBe(200);
        await keepaliveWrite.held;
        expect(await dev.sendKeepalive([ch[2]])).toBe(200);
        await until(async () => (await sweep()) && (await statuses(deviceId))[ch[2]] === 'offline', 10000, 'channel 3 offline again');
      } finally {
        keepaliveWrite.restore();
        await keepaliveWrite.release();
      }
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'offline', [ch[2]]: 'offline' });
      expect(await transitions(cam3)).toEqual(['offline', 'online', 'offline']);
    });

    it('asks a device that refuses the Catalog subscription about its channels reported down (DeviceStatus, §9.5.2) and follows the answer', async () => {
      const { deviceId, dev, sn } = await nvr({ subscribe: 'refuse' });
      const ch = [1, 2].map((i) => chId(deviceId, i));
      const items = [
        { id: ch[0], name: '南门', status: 'ON' },
        { id: ch[1], name: '北门', status: 'OFF' },
      ];
      expect(await dev.message(catalogBody(deviceId, sn, items, 'GB18030', 'GB2312'))).toBe(200);
      await namesOf(deviceId, 2);
      await until(async () => (await sweep()) && (await statuses(deviceId))[ch[1]] === 'offline', 10000, 'channel 2 offline');
      const answer = (q: { sn: string }, online: string) =>
        `<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>DeviceStatus</CmdType>\r\n<SN>${q.sn}</SN>\r\n<DeviceID>${ch[1]}</DeviceID>\r\n<Result>OK</Result>\r\n<Online>${online}</Online>\r\n<Status>OK</Status>\r\n</Response>\r\n`;
      // Asked about the channel it reported down (only that one); still OFFLINE: it stays down and is asked again later.
      const first = await dev.waitForQuery('DeviceStatus', 10000);
      expect(first.body).toContain(`<DeviceID>${ch[1]}</DeviceID>`);
      expect(await dev.message(answer(first, 'OFFLINE'))).toBe(200);
      const second = await dev.waitForQuery('DeviceStatus', 10000);
      expect(second.body).toContain(`<DeviceID>${ch[1]}</DeviceID>`);
      await sweep();
      await expectStatuses(deviceId, { [ch[1]]: 'offline' });
      // ONLINE: the camera is back at once, and the channel's status is recorded.
      expect(await dev.message(answer(second, 'ONLINE'))).toBe(200);
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[1]]: 'online' });
      const listed = await t.http().get('/api/v1/gb28181/channels').query({ deviceId }).set(auth(admin)).expect(200);
      expect(listed.body.items.find((c: { channelId: string }) => c.channelId === ch[1]).status).toBe('ON');
      const cam2 = (await cameras(deviceId)).find((c) => c.channelId === ch[1])!.id;
      expect(await transitions(cam2)).toEqual(['offline', 'online']);
      expect(dev.queries.filter((q) => q.cmdType === 'DeviceStatus' && q.body.includes(ch[0]))).toEqual([]);
    });

    it('a keepalive heartbeat decided before the device unregistered (REGISTER Expires: 0) never lands after it: its cameras stay offline', async () => {
      const { deviceId, dev, ch, cam } = await nvrWithChannels();
      expect(await dev.sendKeepalive()).toBe(200);
      await expectStatuses(deviceId, { [ch[0]]: 'online', [ch[2]]: 'online' });
      // The keepalive path's write (its keep is GbCameras.mayBeat itself; a Catalog's late ON has its own check).
      const mayBeat = t.app.get(GbCameras).mayBeat;
      const keepaliveWrite = holdNextHeartbeatWrite((ids, keep) => keep === mayBeat && ids.includes(cam[0]));
      try {
        expect(await dev.sendKeepalive()).toBe(200);
        await keepaliveWrite.held;
        await dev.register(0);
        await until(
          async () => (await sweep()) && Object.values(await statuses(deviceId)).every((s) => s === 'offline'),
          10000,
          'cameras offline after the unregistration',
        );
      } finally {
        keepaliveWrite.restore();
        await keepaliveWrite.release();
      }
      await sweep();
      await expectStatuses(deviceId, { [ch[0]]: 'offline', [ch[1]]: 'offline', [ch[2]]: 'offline' });
      expect(await transitions(cam[0])).toEqual(['online', 'offline']);
      expect(await transitions(cam[2])).toEqual(['online', 'offline']);
    });

    it('subscribes to Catalog changes after registration and refreshes the subscription in the same dialog (Call-ID, next CSeq)', async () => {
      const { dev } = await nvr();
      await until(() => dev.count('SUBSCRIBE') >= 2, 8000, 'a SUBSCRIBE refresh');
      const subs = dev.log.filter((l) => l.method === 'SUBSCRIBE');
      expect(new Set(subs.map((s) => s.callId)).size).toBe(1);
      expect(subs[1].cseq).toBe(subs[0].cseq + 1);
      expect(subs[0].body).toContain('<CmdType>Catalog</CmdType>');
    });
  });

  describe('tolerance (§5)', () => {
    const device = async (deviceId: string) =>
      ((await t.http().get('/api/v1/gb28181/devices').query({ limit: 500 }).set(auth(admin)).expect(200)).body.items as Record<string, unknown>[]).find(
        (d) => d.deviceId === deviceId,
      );
    const sim = (deviceId: string, o: Partial<GbCameraOptions> = {}) => site.sim(deviceId, o);

    it('registers and keeps alive a device that sends nc=1 (no leading zeros) and Vias without a branch (RFC 2543); the platform reaches it', async () => {
      const deviceId = nvrId();
      const dev = sim(deviceId, { nc: '1', viaBranch: false });
      await dev.start();
      expect(await dev.sendKeepalive()).toBe(200);
      expect(await dev.message(catalogBody(deviceId, '1', [{ id: chId(deviceId, 1), name: '南门' }], 'UTF-8', 'UTF-8'))).toBe(200);
      await dev.waitForQuery('Catalog');
      expect(await device(deviceId)).toMatchObject({ registered: true, transport: 'UDP' });
    });

    it('takes a digest username other than the device id when an admin set it for that device (own or district password), and only that one', async () => {
      const own = nvrId();
      await t.http().patch(`/api/v1/gb28181/devices/${own}`).set(auth(admin)).send({ authUsername: 'hik-admin', password: 'own-pass-77' }).expect(200);
      await sim(own, { authUsername: 'hik-admin', password: 'own-pass-77' }).start();
      expect(await device(own)).toMatchObject({ registered: true, authUsername: 'hik-admin', ownPassword: true });
      // The device id as username no longer opens it; a new username without the password again is refused (the HA1 is bound to it).
      await expect(sim(own, { password: 'own-pass-77' }).start()).rejects.toThrow('got 403');
      const bad = await t.http().patch(`/api/v1/gb28181/devices/${own}`).set(auth(admin)).send({ authUsername: 'other' }).expect(400);
      expect(JSON.stringify(bad.body)).toContain('password');
      await t.http().patch(`/api/v1/gb28181/devices/${own}`).set(auth(admin)).send({ authUsername: 'a"b' }).expect(400);

      const district = nvrId();
      await t.http().patch(`/api/v1/gb28181/devices/${district}`).set(auth(admin)).send({ authUsername: 'dahua' }).expect(200);
      const dev = sim(district, { authUsername: 'dahua' });
      await dev.start();
      expect(await dev.sendKeepalive()).toBe(200);
      const audit = await t.db.query(`SELECT after FROM audit_log WHERE entity = 'gb_device' AND after->>'deviceId' = $1`, [district]);
      expect(audit.rows.map((r: { after: { authUsername?: string } }) => r.after.authUsername)).toEqual(['dahua']);
    });

    it('a device that registers again over another transport and address is reached there, and that is kept for a restart', async () => {
      const { deviceId } = await nvr({ transport: 'TCP' });
      const moved = sim(deviceId, { transport: 'UDP' });
      await moved.start();
      await moved.waitForQuery('Catalog');
      // (Its old connection is not refused: same host, attack A9 — a MESSAGE there would move the contact back; hostile spec.)
      expect(await moved.sendKeepalive()).toBe(200);
      expect(await device(deviceId)).toMatchObject({ transport: 'UDP', contactAddress: '127.0.0.1', contactPort: moved.sipPort });
      await t.http().post(`/api/v1/gb28181/devices/${deviceId}/query`).set(auth(admin)).expect(202);
      await moved.waitForQuery('Catalog');
      // What a restarted process loads (gb_devices): the new transport and address.
      const reloaded = new GbDeviceStates(t.config, t.app.get(Gb28181Store));
      await reloaded.load();
      expect(reloaded.devices.get(deviceId)?.peer).toEqual({ transport: 'UDP', address: '127.0.0.1', port: moved.sipPort });
    });
  });

  describe('catalog semantics (§4)', () => {
    /** A Catalog in parts of the same SN (§9.5.3: each part carries SumNum), GB18030, with ParentID / BusinessGroupID. */
    const part = (dev: string, sn: string, sumNum: number, items: { id: string; name: string; parent?: string; group?: string }[]) =>
      iconv.encode(
        `<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${dev}</DeviceID>\r\n<SumNum>${sumNum}</SumNum>\r\n<DeviceList Num="${items.length}">\r\n${items
          .map(
            (i) =>
              `<Item><DeviceID>${i.id}</DeviceID><Name>${i.name}</Name>${i.parent ? `<ParentID>${i.parent}</ParentID>` : ''}${i.group ? `<BusinessGroupID>${i.group}</BusinessGroupID>` : ''}<Status>ON</Status></Item>`,
          )
          .join('\r\n')}\r\n</DeviceList>\r\n</Response>\r\n`,
        'gb18030',
      );
    type TreeNode = { id: string; name: string; kind: string; children: TreeNode[] };
    const shape = (n: TreeNode): unknown => [n.name, n.kind, n.children.map(shape)];
    const listed = async (deviceId: string) =>
      (await t.http().get('/api/v1/gb28181/channels').query({ deviceId, limit: 500 }).set(auth(admin)).expect(200)).body.items as {
        channelId: string;
        kind: string;
        removed: boolean;
        cameraId: string | null;
      }[];

    it('civil codes, business groups and virtual organisations count toward SumNum (no stall) and form the organisation tree; 134/135 are alarm inputs/outputs, not cameras', async () => {
      const { deviceId, dev, sn } = await nvr();
      const base = deviceId.slice(0, 10);
      const group = `${base}2150000001`;
      const org = `${base}2160000001`;
      const cam1 = chId(deviceId, 1);
      const cam2 = chId(deviceId, 2);
      const alarmIn = `${base}1340000001`;
      const alarmOut = `${base}1350000001`;
      const first = [
        { id: '34', name: '安徽省' },
        { id: '3402', name: '芜湖市' },
        { id: '34020000', name: '镜湖区' },
        { id: group, name: '校园安防', parent: '34020000' },
      ];
      const second = [
        { id: org, name: '东校区', parent: group, group },
        { id: cam1, name: '东门', parent: `${deviceId}/${org}` },
        { id: cam2, name: '西门', group },
        { id: alarmIn, name: '红外对射', parent: org },
        { id: alarmOut, name: '声光报警器', parent: org },
      ];
      expect(await dev.message(part(deviceId, sn, 9, first))).toBe(200);
      expect(await dev.message(part(deviceId, sn, 9, second))).toBe(200);
      // Complete at once (the assembly wait, catalogTimeoutMs, is 30 s here).
      expect(await namesOf(deviceId, 2)).toEqual({ [cam1]: '东门', [cam2]: '西门' });
      const channels = await listed(deviceId);
      expect(Object.fromEntries(channels.map((c) => [c.channelId, c.kind]))).toEqual({
        [cam1]: 'camera',
        [cam2]: 'camera',
        [alarmIn]: 'alarm_input',
        [alarmOut]: 'alarm_output',
      });
      expect(channels.filter((c) => c.kind !== 'camera').every((c) => c.cameraId === null)).toBe(true);
      const tree = await t.http().get(`/api/v1/gb28181/devices/${deviceId}/organisation`).set(auth(admin)).expect(200);
      expect(tree.body.roots.map(shape)).toEqual([
        [
          '安徽省',
          'organisation',
          [
            [
              '芜湖市',
              'organisation',
              [
                [
                  '镜湖区',
                  'organisation',
                  [
                    [
                      '校园安防',
                      'organisation',
                      [
                        ['西门', 'camera', []],
                        [
                          '东校区',
                          'organisation',
                          [
                            ['东门', 'camera', []],
                            ['红外对射', 'alarm_input', []],
                            ['声光报警器', 'alarm_output', []],
                          ],
                        ],
                      ],
                    ],
                  ],
                ],
              ],
            ],
          ],
        ],
      ]);
      await t.http().get(`/api/v1/gb28181/devices/${nvrId()}/organisation`).set(auth(admin)).expect(404);
    });

    it('a new full Catalog (new SN) replaces the set: channels it leaves out are removed and their cameras go offline; SumNum 0 clears', async () => {
      const { deviceId, dev, sn } = await nvr();
      const ch = [1, 2, 3].map((i) => chId(deviceId, i));
      expect(
        await dev.message(
          part(deviceId, sn, 3, [
            { id: ch[0], name: '一' },
            { id: ch[1], name: '二' },
            { id: ch[2], name: '三' },
          ]),
        ),
      ).toBe(200);
      await namesOf(deviceId, 3);
      expect(await dev.sendKeepalive()).toBe(200);
      await until(async () => (await cameras(deviceId)).every((c) => c.status === 'online'), 10000, 'all online');
      expect(
        await dev.message(
          part(deviceId, String(Number(sn) + 1), 2, [
            { id: ch[0], name: '一' },
            { id: ch[2], name: '三' },
          ]),
        ),
      ).toBe(200);
      await until(async () => (await listed(deviceId)).some((c) => c.removed), 10000, 'a removed channel');
      expect(Object.fromEntries((await listed(deviceId)).map((c) => [c.channelId, c.removed]))).toEqual({ [ch[0]]: false, [ch[1]]: true, [ch[2]]: false });
      await t.app.get(DeviceHealthService).sweep(Date.now() + 1);
      expect(Object.fromEntries((await cameras(deviceId)).map((c) => [c.channelId, c.status]))).toEqual({
        [ch[0]]: 'online',
        [ch[1]]: 'offline',
        [ch[2]]: 'online',
      });
      expect(await dev.message(part(deviceId, String(Number(sn) + 2), 0, []))).toBe(200);
      await until(async () => (await listed(deviceId)).every((c) => c.removed), 10000, 'every channel removed');
      const d = (await t.http().get('/api/v1/gb28181/devices').query({ limit: 500 }).set(auth(admin)).expect(200)).body.items.find(
        (x: { deviceId: string }) => x.deviceId === deviceId,
      );
      expect(d).toMatchObject({ channels: 0, unassigned: 0 });
    });
  });
  describe('control and queries operators use (§6)', () => {
    const base = (deviceId: string) => `/api/v1/gb28181/devices/${deviceId}`;
    const auditOf = async (deviceId: string) =>
      (await t.db.query(`SELECT actor_name, after FROM audit_log WHERE action = 'device_control' AND after->>'deviceId' = $1 ORDER BY id`, [deviceId]))
        .rows as { actor_name: string; after: { targetId: string; command: { kind: string }; outcome: string } }[];
    const requestedOf = async (deviceId: string) =>
      (
        await t.db.query(`SELECT actor_name, after FROM audit_log WHERE action = 'device_control_requested' AND after->>'deviceId' = $1 ORDER BY id`, [
          deviceId,
        ])
      ).rows as { actor_name: string; after: { targetId: string; command: { kind: string } } }[];
    let operator: string;
    let supervisor: string;
    beforeAll(async () => {
      operator = (await t.userToken('operator')).token;
      supervisor = (await t.userToken('supervisor')).token;
    });

    /** An NVR placed in school A with two channels reported in its Catalog (cameras made of them). */
    async function nvrWithChannels() {
      const n = await nvr();
      const ch = [1, 2].map((i) => chId(n.deviceId, i));
      const items = [
        { id: ch[0], name: '南门', status: 'ON' },
        { id: ch[1], name: '北门', status: 'ON' },
      ];
      expect(await n.dev.message(catalogBody(n.deviceId, n.sn, items, 'GB18030', 'GB2312'))).toBe(200);
      await namesOf(n.deviceId, 2);
      return { ...n, ch };
    }

    it('DeviceControl reaches the device as GB/T 28181 XML and its Result comes back: arm, disarm a channel, alarm reset, record, reboot — each audited', async () => {
      const { deviceId, dev, ch } = await nvrWithChannels();
      // Arm the device (GuardCmd SetGuard): Result OK → 200 OK.
      const armed = t
        .http()
        .post(`${base(deviceId)}/guard`)
        .set(auth(operator))
        .send({ arm: true });
      const [res, q] = await Promise.all([armed, answerNext(dev, 'DeviceControl', [{ inner: '<Result>OK</Result>\r\n' }])]);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ deviceId, targetId: deviceId, result: 'OK' });
      expect(q.root).toBe('Control');
      expect(q.body).toContain(`<DeviceID>${deviceId}</DeviceID>`);
      expect(q.body).toContain('<GuardCmd>SetGuard</GuardCmd>');
      expect(q.sn).toBe(String(res.body.sn));
      // Disarm one channel (ResetGuard), answered by the channel's id.
      const disarmed = t
        .http()
        .post(`${base(deviceId)}/guard`)
        .set(auth(admin))
        .send({ arm: false, channelId: ch[1] });
      const [res2, q2] = await Promise.all([disarmed, answerNext(dev, 'DeviceControl', [{ deviceId: ch[1], inner: '<Result>OK</Result>\r\n' }])]);
      expect(res2.status).toBe(200);
      expect(res2.body).toMatchObject({ targetId: ch[1], result: 'OK' });
      expect(q2.body).toContain(`<DeviceID>${ch[1]}</DeviceID>`);
      expect(q2.body).toContain('<GuardCmd>ResetGuard</GuardCmd>');
      // Alarm reset of one alarm method / type (AlarmCmd ResetAlarm with Info).
      const reset = t
        .http()
        .post(`${base(deviceId)}/alarm-reset`)
        .set(auth(operator))
        .send({ channelId: ch[0], alarmMethod: '5', alarmType: '2' });
      const [res3, q3] = await Promise.all([reset, answerNext(dev, 'DeviceControl', [{ deviceId: ch[0], inner: '<Result>OK</Result>\r\n' }])]);
      expect(res3.status).toBe(200);
      expect(q3.body).toContain('<AlarmCmd>ResetAlarm</AlarmCmd>');
      expect(q3.body).toMatch(/<Info>\s*<AlarmMethod>5<\/AlarmMethod>\s*<AlarmType>2<\/AlarmType>\s*<\/Info>/);
      // Record on a channel: the device says ERROR → 502 DEVICE_REFUSED with its Result.
      const rec = t
        .http()
        .post(`${base(deviceId)}/record`)
        .set(auth(operator))
        .send({ channelId: ch[0], start: true });
      const [res4, q4] = await Promise.all([rec, answerNext(dev, 'DeviceControl', [{ deviceId: ch[0], inner: '<Result>ERROR</Result>\r\n' }])]);
      expect(res4.status).toBe(502);
      expect(res4.body.error).toMatchObject({ code: 'GB28181.DEVICE_REFUSED', details: { result: 'ERROR' } });
      expect(q4.body).toContain('<RecordCmd>Record</RecordCmd>');
      // Stop recording, OK.
      const stop = t
        .http()
        .post(`${base(deviceId)}/record`)
        .set(auth(operator))
        .send({ channelId: ch[0], start: false });
      const [res5, q5] = await Promise.all([stop, answerNext(dev, 'DeviceControl', [{ deviceId: ch[0], inner: '<Result>OK</Result>\r\n' }])]);
      expect(res5.status).toBe(200);
      expect(q5.body).toContain('<RecordCmd>StopRecord</RecordCmd>');
      // Reboot (TeleBoot): no Response in the standard, the device's 200 is the answer.
      const boot = await t
        .http()
        .post(`${base(deviceId)}/reboot`)
        .set(auth(operator))
        .expect(200);
      expect(boot.body).toMatchObject({ deviceId, targetId: deviceId, result: 'SENT' });
      const q6 = await dev.waitForQuery('DeviceControl');
      expect(q6.body).toContain('<TeleBoot>Boot</TeleBoot>');
      // Every command is in the audit log with who sent it and what came of it.
      expect((await auditOf(deviceId)).map((a) => [a.after.command.kind, a.after.targetId, a.after.outcome])).toEqual([
        ['guard', deviceId, 'OK'],
        ['guard', ch[1], 'OK'],
        ['reset_alarm', ch[0], 'OK'],
        ['record', ch[0], 'GB28181.DEVICE_REFUSED'],
        ['record', ch[0], 'OK'],
        ['teleboot', deviceId, 'SENT'],
      ]);
      // …each request recorded before it was sent, with the same request id as its outcome.
      expect((await requestedOf(deviceId)).map((a) => [a.after.command.kind, a.after.targetId])).toEqual([
        ['guard', deviceId],
        ['guard', ch[1]],
        ['reset_alarm', ch[0]],
        ['record', ch[0]],
        ['record', ch[0]],
        ['teleboot', deviceId],
      ]);
      const pairs = await t.db.query(
        `SELECT count(DISTINCT request_id)::int AS n, count(*)::int AS rows FROM audit_log WHERE action IN ('device_control_requested', 'device_control') AND after->>'deviceId' = $1`,
        [deviceId],
      );
      expect(pairs.rows[0]).toEqual({ n: 6, rows: 12 });
    });

    it('a device that takes a command and never answers: 504 GB28181.DEVICE_TIMEOUT (audited); offline 409; unknown device or channel 404; bad input 400; roles', async () => {
      const { deviceId, dev, ch } = await nvrWithChannels();
      const silent = t
        .http()
        .post(`${base(deviceId)}/guard`)
        .set(auth(operator))
        .send({ arm: true })
        .then((r) => r);
      // The request is in the audit log before the device has answered (a hung device, a process that dies while waiting: still recorded).
      await answerNext(dev, 'DeviceControl', []);
      expect(await requestedOf(deviceId)).toEqual([
        { actor_name: expect.any(String), after: { deviceId, targetId: deviceId, command: { kind: 'guard', arm: true }, by: expect.any(String) } },
      ]);
      const res = await silent;
      expect(res.status).toBe(504);
      expect(res.body.error.code).toBe('GB28181.DEVICE_TIMEOUT');
      expect((await auditOf(deviceId)).map((a) => a.after.outcome)).toEqual(['GB28181.DEVICE_TIMEOUT']);
      // A device known here but not registered: 409, nothing sent.
      const { deviceId: off } = await site.device(nvrId(), { schoolId: seed.schoolA.id, register: false });
      const r409 = await t
        .http()
        .post(`${base(off)}/guard`)
        .set(auth(operator))
        .send({ arm: true })
        .expect(409);
      expect(r409.body.error.code).toBe('GB28181.NOT_REGISTERED');
      // Unknown device, unknown channel of a known one: 404.
      expect(
        (
          await t
            .http()
            .post(`${base(nvrId())}/reboot`)
            .set(auth(operator))
            .expect(404)
        ).body.error.code,
      ).toBe('GB28181.NOT_FOUND');
      const unknownCh = chId(deviceId, 9);
      await t
        .http()
        .post(`${base(deviceId)}/record`)
        .set(auth(operator))
        .send({ channelId: unknownCh, start: true })
        .expect(404);
      // Field-level 400s.
      const bad = await t
        .http()
        .post(`${base(deviceId)}/guard`)
        .set(auth(operator))
        .send({ arm: 'yes', channelId: '123' })
        .expect(400);
      expect(bad.body.error.details.fields.map((f: { field: string }) => f.field).sort()).toEqual(['arm', 'channelId']);
      const badType = await t
        .http()
        .post(`${base(deviceId)}/alarm-reset`)
        .set(auth(operator))
        .send({ alarmType: '2' })
        .expect(400);
      expect(badType.body.error.details.fields[0].field).toBe('alarmType');
      expect((await t.http().post(`/api/v1/gb28181/devices/abc/reboot`).set(auth(operator)).expect(400)).body.error.details.fields[0].field).toBe('deviceId');
      // Control is for operators and admins; supervisors and school staff are refused.
      await t
        .http()
        .post(`${base(deviceId)}/guard`)
        .set(auth(supervisor))
        .send({ arm: true })
        .expect(403);
      const guard = (await t.userToken('school_security', seed.schoolA.id)).token;
      await t
        .http()
        .post(`${base(deviceId)}/reboot`)
        .set(auth(guard))
        .expect(403);
      await t
        .http()
        .post(`${base(deviceId)}/reboot`)
        .expect(401);
      expect(dev.queries.filter((q) => q.cmdType === 'DeviceControl')).toEqual([]);
      expect(ch).toHaveLength(2);
    });

    it('learns HeartBeatInterval × HeartBeatCount from BasicParam after registration: its cameras stay online for 600 s of silence instead of 180 s', async () => {
      const health = t.app.get(DeviceHealthService);
      const learned = await nvrWithChannels();
      const plain = await nvrWithChannels();
      // Asked after registration (ConfigDownload BasicParam); this one answers 120 s × 5, the other never does.
      const q = await answerNext(learned.dev, 'ConfigDownload', [
        {
          inner:
            '<Result>OK</Result>\r\n<BasicParam>\r\n<Name>东门录像机</Name>\r\n<Expiration>3600</Expiration>\r\n<Password>secret-1</Password>\r\n' +
            '<HeartBeatInterval>120</HeartBeatInterval>\r\n<HeartBeatCount>5</HeartBeatCount>\r\n</BasicParam>\r\n',
        },
      ]);
      expect(q.root).toBe('Query');
      expect(q.body).toContain('<ConfigType>BasicParam</ConfigType>');
      await plain.dev.waitForQuery('ConfigDownload');
      const device = async (id: string) =>
        (await t.http().get('/api/v1/gb28181/devices').query({ limit: 500 }).set(auth(admin)).expect(200)).body.items.find(
          (d: { deviceId: string }) => d.deviceId === id,
        );
      await until(async () => (await device(learned.deviceId))?.offlineAfterSeconds === 600, 10000, 'BasicParam stored');
      expect(await device(learned.deviceId)).toMatchObject({ heartbeatInterval: 120, heartbeatCount: 5, offlineAfterSeconds: 600 });
      expect(await device(plain.deviceId)).toMatchObject({ heartbeatInterval: null, offlineAfterSeconds: null });
      // The liveness threshold of its cameras (the index every deadline is computed from): 600 s; the other NVR's: the default 3 × 60 s.
      const camsOf = async (id: string) => (await cameras(id)).map((c) => c.id);
      const [learnedCams, plainCams] = [await camsOf(learned.deviceId), await camsOf(plain.deviceId)];
      await until(() => learnedCams.every((c) => health.index.get(c)?.offlineAfterSec === 600), 10000, 'the index has the learned threshold');
      expect(learnedCams.map((c) => health.thresholdMs(health.index.get(c)))).toEqual([600_000, 600_000]);
      expect(plainCams.map((c) => health.thresholdMs(health.index.get(c)))).toEqual([180_000, 180_000]);
      // Keepalives bring both online; the deadlines follow the thresholds (sweeps at chosen instants, no waiting on the clock).
      const before = Date.now();
      expect(await learned.dev.sendKeepalive()).toBe(200);
      expect(await plain.dev.sendKeepalive()).toBe(200);
      const statusOf = async (id: string) => (await cameras(id)).map((c) => c.status);
      await until(
        async () => (await statusOf(learned.deviceId)).every((s) => s === 'online') && (await statusOf(plain.deviceId)).every((s) => s === 'online'),
        10000,
        'online',
      );
      await health.sweep(before + 300_000); // 300 s of silence: past 180 s, within 600 s
      expect(await statusOf(learned.deviceId)).toEqual(['online', 'online']);
      expect(await statusOf(plain.deviceId)).toEqual(['offline', 'offline']);
      await health.sweep(Date.now() + 601_000);
      expect(await statusOf(learned.deviceId)).toEqual(['offline', 'offline']);
    });

    it('POST basic-param asks again and answers what the device reports (the Password never), capped at heartbeatMaxOfflineSeconds; no answer 504', async () => {
      const { deviceId, dev } = await nvrWithChannels();
      await dev.waitForQuery('ConfigDownload'); // the one after registration, left unanswered
      const asked = t
        .http()
        .post(`${base(deviceId)}/basic-param`)
        .set(auth(operator));
      const [res] = await Promise.all([
        asked,
        answerNext(dev, 'ConfigDownload', [
          {
            enc: 'UTF-8',
            inner:
              '<Result>OK</Result>\r\n<BasicParam>\r\n<Name>操场录像机</Name>\r\n<Password>secret-2</Password>\r\n' +
              '<HeartBeatInterval>3000</HeartBeatInterval>\r\n<HeartBeatCount>3</HeartBeatCount>\r\n</BasicParam>\r\n',
          },
        ]),
      ]);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ deviceId, name: '操场录像机', expiration: null, heartBeatInterval: 3000, heartBeatCount: 3, offlineAfterSeconds: 3600 });
      expect(JSON.stringify(res.body)).not.toContain('secret');
      const silent = t
        .http()
        .post(`${base(deviceId)}/basic-param`)
        .set(auth(operator));
      const [late] = await Promise.all([silent, answerNext(dev, 'ConfigDownload', [])]);
      expect(late.status).toBe(504);
      expect(late.body.error.code).toBe('GB28181.DEVICE_TIMEOUT');
      // Audited like the controls: the request first, then its outcome.
      expect((await requestedOf(deviceId)).map((a) => a.after.command.kind)).toEqual(['basic_param', 'basic_param']);
      expect((await auditOf(deviceId)).map((a) => [a.after.command.kind, a.after.outcome])).toEqual([
        ['basic_param', 'OK'],
        ['basic_param', 'GB28181.DEVICE_TIMEOUT'],
      ]);
      await t
        .http()
        .post(`${base(deviceId)}/basic-param`)
        .set(auth(supervisor))
        .expect(403);
    });

    it('learns a BasicParam only in answer to a request of ours (device, CmdType, SN): an unrequested one is ignored, a late answer to ours is learned', async () => {
      const { deviceId, dev } = await nvrWithChannels();
      const registered = await dev.waitForQuery('ConfigDownload'); // asked after registration, not answered yet
      const learnt = jest.spyOn(t.app.get(Gb28181Store), 'setHeartbeat');
      const answer = (sn: string, interval: number, count: number) =>
        dev.message(
          gbResponse({
            cmdType: 'ConfigDownload',
            sn,
            deviceId,
            inner: `<Result>OK</Result>\r\n<BasicParam>\r\n<HeartBeatInterval>${interval}</HeartBeatInterval>\r\n<HeartBeatCount>${count}</HeartBeatCount>\r\n</BasicParam>\r\n`,
          }),
        );
      try {
        // A ConfigDownload "answer" to an SN we never sent: a device raising its own offline threshold. Taken (200), not learned
        // (the decision is made before the 200 goes out).
        expect(await answer(String(Number(registered.sn) + 1_000_000), 86400, 1000)).toBe(200);
        expect(learnt).not.toHaveBeenCalled();
        // Our request's wait ends (504 for the operator's, the registration's long before); its answer, late, is still learned — once.
        const [late] = await Promise.all([
          t
            .http()
            .post(`${base(deviceId)}/basic-param`)
            .set(auth(operator)),
          answerNext(dev, 'ConfigDownload', []),
        ]);
        expect(late.status).toBe(504);
        expect(await answer(registered.sn, 30, 4)).toBe(200);
        expect(learnt).toHaveBeenCalledTimes(1);
        expect(learnt.mock.calls[0]).toEqual([deviceId, { interval: 30, count: 4, offlineAfterSeconds: 120 }]);
        expect(await answer(registered.sn, 86400, 1000)).toBe(200); // the same SN again: answered already
        expect(learnt).toHaveBeenCalledTimes(1);
      } finally {
        learnt.mockRestore();
      }
    });

    it('DeviceStatus: GET …/status asks the device or a channel and answers what it says (online, recording, clock, alarm inputs); the answer also sets the channel; 504 / 409 / 404 / 502 / roles', async () => {
      const { deviceId, dev, ch } = await nvrWithChannels();
      const status = (q: Record<string, string> = {}, token = supervisor) =>
        t
          .http()
          .get(`${base(deviceId)}/status`)
          .query(q)
          .set(auth(token));
      // The device itself: every field of §A.2.6.5, the clock in Asia/Shanghai local time, its two alarm inputs.
      const [res, q] = await Promise.all([
        status(),
        answerNext(dev, 'DeviceStatus', [
          {
            inner:
              '<Result>OK</Result>\r\n<Online>ONLINE</Online>\r\n<Status>OK</Status>\r\n<Encode>ON</Encode>\r\n<Record>OFF</Record>\r\n' +
              '<DeviceTime>2026-11-30T09:15:00</DeviceTime>\r\n<Alarmstatus Num="2">\r\n' +
              `<Item><DeviceID>${deviceId.slice(0, 10)}1340000001</DeviceID><DutyStatus>ONDUTY</DutyStatus></Item>\r\n` +
              `<Item><DeviceID>${deviceId.slice(0, 10)}1340000002</DeviceID><DutyStatus>ALARM</DutyStatus></Item>\r\n</Alarmstatus>\r\n`,
          },
        ]),
      ]);
      expect(res.status).toBe(200);
      expect(q.root).toBe('Query');
      expect(q.body).toContain(`<DeviceID>${deviceId}</DeviceID>`);
      expect(res.body).toEqual({
        deviceId,
        targetId: deviceId,
        sn: Number(q.sn),
        online: 'ONLINE',
        status: 'OK',
        reason: null,
        encode: 'ON',
        record: 'OFF',
        deviceTime: '2026-11-30T01:15:00.000Z',
        alarmStatus: [
          { deviceId: `${deviceId.slice(0, 10)}1340000001`, dutyStatus: 'ONDUTY' },
          { deviceId: `${deviceId.slice(0, 10)}1340000002`, dutyStatus: 'ALARM' },
        ],
      });
      // A channel that says it is offline: the operator sees it, and the channel's camera goes offline like any DeviceStatus answer takes it.
      const [res2, q2] = await Promise.all([
        status({ channelId: ch[1] }, operator),
        answerNext(dev, 'DeviceStatus', [
          { deviceId: ch[1], inner: '<Result>OK</Result>\r\n<Online>OFFLINE</Online>\r\n<Status>ERROR</Status>\r\n<Reason>视频丢失</Reason>\r\n' },
        ]),
      ]);
      expect(res2.status).toBe(200);
      expect(q2.body).toContain(`<DeviceID>${ch[1]}</DeviceID>`);
      expect(res2.body).toMatchObject({
        targetId: ch[1],
        online: 'OFFLINE',
        status: 'ERROR',
        reason: '视频丢失',
        encode: null,
        record: null,
        deviceTime: null,
        alarmStatus: [],
      });
      await until(
        async () => (await t.db.query(`SELECT status FROM gb_channels WHERE channel_id = $1`, [ch[1]])).rows[0]?.status === 'OFF',
        10000,
        'channel OFF',
      );
      // Result ERROR: 502 DEVICE_REFUSED; no answer: 504 DEVICE_TIMEOUT.
      const [refused] = await Promise.all([status(), answerNext(dev, 'DeviceStatus', [{ inner: '<Result>ERROR</Result>\r\n' }])]);
      expect(refused.status).toBe(502);
      expect(refused.body.error).toMatchObject({ code: 'GB28181.DEVICE_REFUSED', details: { result: 'ERROR' } });
      const [silent] = await Promise.all([status(), answerNext(dev, 'DeviceStatus', [])]);
      expect(silent.status).toBe(504);
      expect(silent.body.error.code).toBe('GB28181.DEVICE_TIMEOUT');
      // Not registered 409; unknown device or channel 404; a bad channel id 400; school staff 403.
      const { deviceId: off } = await site.device(nvrId(), { schoolId: seed.schoolA.id, register: false });
      expect(
        (
          await t
            .http()
            .get(`${base(off)}/status`)
            .set(auth(operator))
            .expect(409)
        ).body.error.code,
      ).toBe('GB28181.NOT_REGISTERED');
      expect(
        (
          await t
            .http()
            .get(`${base(nvrId())}/status`)
            .set(auth(operator))
            .expect(404)
        ).body.error.code,
      ).toBe('GB28181.NOT_FOUND');
      await status({ channelId: chId(deviceId, 9) }).expect(404);
      expect((await status({ channelId: '123' }).expect(400)).body.error.details.fields[0].field).toBe('channelId');
      const guard = (await t.userToken('school_security', seed.schoolA.id)).token;
      await status({}, guard).expect(403);
      // The device panel's view of it: registration and last keepalive, no password or address; supervisors may read it.
      const view = (await t.http().get(base(deviceId)).set(auth(supervisor)).expect(200)).body;
      expect(view).toMatchObject({ deviceId, schoolId: seed.schoolA.id, registered: true, transport: 'UDP', channels: 2 });
      expect(view).not.toHaveProperty('ownPassword');
      expect(view).not.toHaveProperty('contactAddress');
      expect(view).not.toHaveProperty('authUsername');
      await t.http().get(base(deviceId)).set(auth(guard)).expect(403);
      expect((await t.http().get(base(nvrId())).set(auth(operator)).expect(404)).body.error.code).toBe('GB28181.NOT_FOUND');
    });

    it('RecordInfo: the recordings of a channel, assembled from a multi-part answer (SumNum), GB18030 and UTF-8 parts; parts missing → complete false', async () => {
      const { deviceId, dev, ch } = await nvrWithChannels();
      const item = (n: number, name: string) =>
        `<Item>\r\n<DeviceID>${ch[0]}</DeviceID>\r\n<Name>${name}</Name>\r\n<FilePath>/rec/${n}.ps</FilePath>\r\n<Address>南门</Address>\r\n` +
        `<StartTime>2026-11-30T0${n}:00:00</StartTime>\r\n<EndTime>2026-11-30T0${n}:30:00</EndTime>\r\n<Secrecy>0</Secrecy>\r\n<Type>time</Type>\r\n<FileSize>1048576</FileSize>\r\n</Item>\r\n`;
      const part = (n: number, items: string[]) =>
        `<Name>南门</Name>\r\n<SumNum>${n}</SumNum>\r\n<RecordList Num="${items.length}">\r\n${items.join('')}</RecordList>\r\n`;
      const url = `${base(deviceId)}/channels/${ch[0]}/records`;
      const range = { start: '2026-11-30T00:00:00+08:00', end: '2026-11-30T12:00:00+08:00' };
      const asked = t
        .http()
        .get(url)
        .query({ ...range, type: 'all' })
        .set(auth(supervisor));
      const [res, q] = await Promise.all([
        asked,
        answerNext(dev, 'RecordInfo', [
          { deviceId: ch[0], inner: part(3, [item(3, '南门录像三'), item(1, '南门录像一')]) },
          { deviceId: ch[0], enc: 'UTF-8', inner: part(3, [item(2, '南门录像二')]) },
        ]),
      ]);
      expect(res.status).toBe(200);
      expect(q.root).toBe('Query');
      expect(q.body).toContain(`<DeviceID>${ch[0]}</DeviceID>`);
      expect(q.body).toContain('<StartTime>2026-11-30T00:00:00</StartTime>'); // Asia/Shanghai local time, as devices read it
      expect(q.body).toContain('<EndTime>2026-11-30T12:00:00</EndTime>');
      expect(q.body).toContain('<Type>all</Type>');
      expect(res.body).toMatchObject({ deviceId, channelId: ch[0], sumNum: 3, complete: true, omitted: 0 });
      expect(res.body.items.map((i: { name: string; startTime: string }) => [i.name, i.startTime])).toEqual([
        ['南门录像一', '2026-11-29T17:00:00.000Z'],
        ['南门录像二', '2026-11-29T18:00:00.000Z'],
        ['南门录像三', '2026-11-29T19:00:00.000Z'],
      ]);
      expect(res.body.items[0]).toMatchObject({ filePath: '/rec/1.ps', address: '南门', type: 'time', fileSize: 1048576, secrecy: 0 });
      // One part of three arrives: what came, marked incomplete, when recordInfoTimeoutMs runs out.
      const partial = t.http().get(url).query(range).set(auth(operator));
      const [res2] = await Promise.all([partial, answerNext(dev, 'RecordInfo', [{ deviceId: ch[0], inner: part(3, [item(1, '南门录像一')]) }])]);
      expect(res2.status).toBe(200);
      expect(res2.body).toMatchObject({ sumNum: 3, complete: false });
      expect(res2.body.items).toHaveLength(1);
      // No answer at all: 504. Bad ranges: field-level 400s. Unknown channel: 404.
      const [res3] = await Promise.all([t.http().get(url).query(range).set(auth(operator)), answerNext(dev, 'RecordInfo', [])]);
      expect(res3.status).toBe(504);
      const backwards = await t.http().get(url).query({ start: range.end, end: range.start }).set(auth(operator)).expect(400);
      expect(backwards.body.error.details.fields[0].field).toBe('end');
      const tooLong = await t.http().get(url).query({ start: '2026-01-01T00:00:00+08:00', end: range.end }).set(auth(operator)).expect(400);
      expect(tooLong.body.error.details.fields[0].field).toBe('end');
      const badDate = await t.http().get(url).query({ start: '2026-02-31T00:00:00+08:00', end: range.end }).set(auth(operator)).expect(400);
      expect(badDate.body.error.details.fields[0].field).toBe('start');
      // A bare day is refused like a date-time without its offset (it would be midnight UTC, 08:00 here), each field named.
      const dayOnly = await t.http().get(url).query({ start: '2026-11-30', end: '2026-12-01' }).set(auth(operator)).expect(400);
      expect(dayOnly.body.error.details.fields.map((f: { field: string }) => f.field).sort()).toEqual(['end', 'start']);
      const noOffset = await t.http().get(url).query({ start: '2026-11-30T00:00:00', end: range.end }).set(auth(operator)).expect(400);
      expect(noOffset.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['start']);
      await t
        .http()
        .get(`${base(deviceId)}/channels/${chId(deviceId, 9)}/records`)
        .query(range)
        .set(auth(operator))
        .expect(404);
      const guard = (await t.userToken('school_security', seed.schoolA.id)).token;
      await t.http().get(url).query(range).set(auth(guard)).expect(403);
    });

    it('RecordInfo: a part sent twice counts once (stays incomplete until the second recording); SumNum 0 with an item is raised to what came', async () => {
      const { deviceId, dev, ch } = await nvrWithChannels();
      const item = (n: number, filePath = true) =>
        `<Item>\r\n<DeviceID>${ch[0]}</DeviceID>\r\n<Name>rec${n}</Name>\r\n${filePath ? `<FilePath>/rec/${n}.ps</FilePath>\r\n` : ''}` +
        `<StartTime>2026-11-30T0${n}:00:00</StartTime>\r\n<EndTime>2026-11-30T0${n}:30:00</EndTime>\r\n<Type>time</Type>\r\n</Item>\r\n`;
      const part = (n: number, items: string[]) => `<SumNum>${n}</SumNum>\r\n<RecordList Num="${items.length}">\r\n${items.join('')}</RecordList>\r\n`;
      const url = `${base(deviceId)}/channels/${ch[0]}/records`;
      const range = { start: '2026-11-30T00:00:00+08:00', end: '2026-11-30T12:00:00+08:00' };
      // The same part twice (by FilePath): one recording of two, incomplete when the wait runs out.
      const [twice] = await Promise.all([
        t.http().get(url).query(range).set(auth(operator)),
        answerNext(dev, 'RecordInfo', [
          { deviceId: ch[0], inner: part(2, [item(1)]) },
          { deviceId: ch[0], inner: part(2, [item(1)]) },
        ]),
      ]);
      expect(twice.status).toBe(200);
      expect(twice.body).toMatchObject({ sumNum: 2, complete: false, omitted: 0 });
      expect(twice.body.items.map((i: { filePath: string }) => i.filePath)).toEqual(['/rec/1.ps']);
      // A repeat, then the second recording: complete with two distinct items.
      const [then] = await Promise.all([
        t.http().get(url).query(range).set(auth(operator)),
        answerNext(dev, 'RecordInfo', [
          { deviceId: ch[0], inner: part(2, [item(1)]) },
          { deviceId: ch[0], inner: part(2, [item(1)]) },
          { deviceId: ch[0], inner: part(2, [item(2)]) },
        ]),
      ]);
      expect(then.body).toMatchObject({ sumNum: 2, complete: true });
      expect(then.body.items.map((i: { filePath: string }) => i.filePath)).toEqual(['/rec/1.ps', '/rec/2.ps']);
      // Without FilePath, DeviceID + StartTime + EndTime + Type is the recording.
      const [noPath] = await Promise.all([
        t.http().get(url).query(range).set(auth(operator)),
        answerNext(dev, 'RecordInfo', [
          { deviceId: ch[0], inner: part(2, [item(3, false)]) },
          { deviceId: ch[0], inner: part(2, [item(3, false)]) },
        ]),
      ]);
      expect(noPath.body).toMatchObject({ sumNum: 2, complete: false });
      expect(noPath.body.items).toHaveLength(1);
      // SumNum 0 with an item: the answer counts what came (sumNum 1, complete, one item), never fewer than it lists.
      const [zero] = await Promise.all([
        t.http().get(url).query(range).set(auth(operator)),
        answerNext(dev, 'RecordInfo', [{ deviceId: ch[0], inner: part(0, [item(4)]) }]),
      ]);
      expect(zero.body).toMatchObject({ sumNum: 1, complete: true, omitted: 0 });
      expect(zero.body.items).toHaveLength(1);
    });
  });
});

describe('GB/T 28181 TCP and limits (issue 16 §3)', () => {
  let site: GbSite;
  let t: TestApp;
  let admin: string;
  let sipPort: number;

  beforeAll(async () => {
    site = await startGbSite({
      password: PASSWORD,
      gb28181: {
        queryTimeoutMs: 1000,
        catalogSubscribeSeconds: 0,
        maxMessageBytes: 32768,
        rateLimitPerSecond: 1000,
        rateLimitBurst: 300,
        deviceRateLimitPerSecond: 400,
        deviceRateLimitBurst: 50,
      },
    });
    ({ t, admin, sipPort } = site);
  });

  afterAll(async () => {
    await site?.close();
  });

  const device = (transport: 'UDP' | 'TCP' = 'UDP') => site.device(nvrId(), { transport });
  const metric = (name: string, labels: Record<string, string>) => site.metric(name, labels);

  /** Runs `fn` with the limiter's clock standing still (no refill while a burst is measured; the rest is real). */
  async function frozen<T>(fn: () => Promise<T>): Promise<T> {
    const at = Date.now();
    const take = RateLimiter.prototype.take;
    const spy = jest.spyOn(RateLimiter.prototype, 'take').mockImplementation(function (this: RateLimiter, b) {
      return take.call(this, b, at);
    });
    try {
      return await fn();
    } finally {
      spy.mockRestore();
    }
  }

  const channels = async (deviceId: string) =>
    (await t.http().get('/api/v1/gb28181/channels').query({ deviceId, limit: 1 }).set(auth(admin)).expect(200)).body.total as number;
  const bigCatalog = (dev: string, sn: string, n: number, pad: number) =>
    catalogBody(
      dev,
      sn,
      Array.from({ length: n }, (_, i) => ({ id: `${dev.slice(0, 10)}131${String(i).padStart(7, '0')}`, name: `通道${i}-${'门'.repeat(pad)}` })),
      'UTF-8',
      'UTF-8',
    );

  it('400 back-to-back MESSAGEs on one TCP connection over the device limit are all answered (back-pressure, nothing dropped)', async () => {
    const { dev } = await device('TCP');
    const held = await metric('shouhu_gb28181_events_total', { event: 'device_rate_held' });
    const statuses = await Promise.all(Array.from({ length: 400 }, () => dev.sendKeepalive()));
    expect(statuses.filter((s) => s === 200)).toHaveLength(400);
    expect(await metric('shouhu_gb28181_events_total', { event: 'device_rate_held' })).toBeGreaterThan(held);
  });

  it('over UDP a device over its limit is answered 503 (Retry-After), never silently', async () => {
    const { dev } = await device('UDP');
    const statuses = await frozen(() => Promise.all(Array.from({ length: 80 }, () => dev.sendKeepalive())));
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 503)).toHaveLength(30);
  });

  it('the per-source ceiling is far above one device: many devices behind one UDP socket pass; past it datagrams are counted', async () => {
    const before = await metric('shouhu_gb28181_dropped_total', { reason: 'rate_limited' });
    const s = createSocket('udp4');
    let answered = 0;
    s.on('message', () => answered++);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    await frozen(async () => {
      // OPTIONS of 320 different ids from one socket (a lower platform): the 300 of the ceiling's burst are answered.
      for (let i = 0; i < 320; i++) {
        const id = `3402000000132${String(5000000 + i)}`;
        const msg = `OPTIONS sip:${PLATFORM}@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKceil${i}\r\nFrom: <sip:${id}@3402000000>;tag=c${i}\r\nTo: <sip:${PLATFORM}@3402000000>\r\nCall-ID: ceil-${i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
        s.send(Buffer.from(msg, 'latin1'), sipPort, '127.0.0.1');
      }
      await until(async () => (await metric('shouhu_gb28181_dropped_total', { reason: 'rate_limited' })) >= before + 20, 10000, 'drops counted');
    });
    await until(() => answered === 300, 5000, '300 answers');
    s.close();
    expect(await metric('shouhu_gb28181_dropped_total', { reason: 'rate_limited' })).toBe(before + 20);
  });

  it('takes a 40 KB Catalog over TCP and one of about 1 MiB; closes a TCP connection whose message is over maxTcpMessageBytes', async () => {
    const { deviceId, dev, sn } = await device('TCP');
    const body40k = bigCatalog(deviceId, sn, 200, 30);
    expect(body40k.length).toBeGreaterThan(40_000);
    expect(body40k.length).toBeLessThan(65_507);
    expect(await dev.message(body40k)).toBe(200);
    await until(async () => (await channels(deviceId)) === 200, 10000, '200 channels');
    const body1m = bigCatalog(deviceId, String(Number(sn) + 1), 4000, 41);
    expect(body1m.length).toBeGreaterThan(1_000_000);
    expect(body1m.length).toBeLessThan(1024 * 1024 - 1000);
    expect(await dev.message(body1m)).toBe(200);
    await until(async () => (await channels(deviceId)) === 4000, 20000, '4000 channels');

    const c = connect(sipPort, '127.0.0.1');
    c.on('error', () => undefined);
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    c.write(`MESSAGE sip:${PLATFORM}@3402000000 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKbig\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
    await closed;
  });

  it('over UDP: a datagram over maxMessageBytes is answered 513, a Content-Length longer than the body 400', async () => {
    const { deviceId, dev, sn } = await device('UDP');
    expect(await dev.message(bigCatalog(deviceId, sn, 200, 30))).toBe(513);
    const s = createSocket('udp4');
    const got = new Promise<string>((r) => s.on('message', (m) => r(m.toString('latin1'))));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const msg = `OPTIONS sip:${PLATFORM}@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKcl\r\nFrom: <sip:${deviceId}@3402000000>;tag=x\r\nTo: <sip:${PLATFORM}@3402000000>\r\nCall-ID: cl-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 50\r\n\r\nshort`;
    s.send(Buffer.from(msg, 'latin1'), sipPort, '127.0.0.1');
    expect(await got).toMatch(/^SIP\/2\.0 400 /);
    s.close();
  });
});

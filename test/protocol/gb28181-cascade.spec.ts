import * as iconv from 'iconv-lite';
import { loadConfig } from '../../src/config/config';
import { child, childText, parseManscdp } from '../../src/modules/gb28181/manscdp';
import { createButton, press } from '../support/devices';
import { GB_PLATFORM, GbSite, startGbSite } from '../support/gb-site';
import { GbSuperior } from '../support/gb-superior';
import { auth } from '../support/harness';
import { GbCamera } from '../support/video/gb-camera';
import { until } from '../support/processes';

/**
 * Cascade to a higher-level platform (issue 16 §7): our district registers with a superior (a SIP
 * peer of the test's own, test/support/gb-superior.ts, playing the city platform), keeps alive,
 * answers its Catalog / DeviceInfo / DeviceStatus queries and forwards alarms as Alarm Notify; when
 * the superior restarts (forgets us) or stops answering, we register again. Intervals are short by
 * configuration (keepalive 1 s), so the spec waits only for the protocol's own exchanges.
 */

const SUPERIOR = '50000000002000000001';
const SUPERIOR_TCP = '50000000002000000002'; // a second superior, over TCP
const PASSWORD = 'city-gives-us-this-1';
const DEV_A = '34020000001320000071';
const DEV_B = '34020000001320000072';

describe('GB/T 28181 cascade to a superior platform', () => {
  let site: GbSite;
  let sup: GbSuperior;
  let supTcp: GbSuperior;
  let cameraA: string;
  let devA: GbCamera;

  const status = async () => (await site.t.http().get('/api/v1/gb28181/cascade').set(auth(site.admin)).expect(200)).body;

  beforeAll(async () => {
    sup = new GbSuperior({ id: SUPERIOR, realm: '5000000000', password: PASSWORD });
    await sup.start();
    supTcp = new GbSuperior({ id: SUPERIOR_TCP, realm: '5000000000', password: PASSWORD, transport: 'TCP' });
    await supTcp.start();
    site = await startGbSite({
      password: 'district-default-1',
      seed: true,
      gb28181: {
        cascade: {
          enabled: true,
          superiors: [sup.entry(), supTcp.entry()],
          registerExpiresSeconds: 60,
          keepaliveSeconds: 1,
          keepaliveMaxMissed: 2,
          retryMinMs: 200,
          retryMaxMs: 1000,
          requestTimeoutMs: 600,
          catalogItemsPerMessage: 3,
          catalogMinIntervalMs: 1000,
          alarmPollMs: 100,
          alarmBatchMax: 2, // a burst of more is walked over several rounds
        },
      },
    });
    const h = auth(site.admin);
    const cam = (n: string, schoolId: string, dev: string, name: string) =>
      site.t.http().post('/api/v1/cameras').set(h).send({ schoolId, deviceId: dev, channelId: dev, name, areaKind: n }).expect(201);
    cameraA = (await cam('perimeter', site.seed!.schoolA.id, DEV_A, '东侧围墙')).body.id;
    await cam('main_gate', site.seed!.schoolB.id, DEV_B, '校门口');
    // Camera A online through its own keepalive (device health), B never heard from.
    devA = (await site.device(DEV_A, { schoolId: site.seed!.schoolA.id })).dev;
    await devA.sendKeepalive();
    await until(async () => (await site.t.http().get(`/api/v1/cameras/${cameraA}`).set(h)).body.status === 'online', 5000, 'camera A online');
  }, 30_000);

  afterAll(async () => {
    await site?.close();
    sup?.stop();
    supTcp?.stop();
  });

  it('registers upward with digest (401 challenge, MD5 qop=auth) and keeps alive', async () => {
    await sup.until(() => sup.registered.has(GB_PLATFORM), 5000, 'registration');
    const regs = sup.seen('REGISTER');
    expect(regs[0].authorized).toBe(false); // first without credentials, challenged 401
    expect(regs.some((r) => r.authorized)).toBe(true);
    await sup.until(() => sup.seen('MESSAGE', 'Keepalive').length >= 2, 5000, 'two keepalives');
    const ka = sup.seen('MESSAGE', 'Keepalive')[0].doc!;
    expect(ka.root).toBe('Notify');
    expect(ka.deviceId).toBe(GB_PLATFORM);
    const s = await status();
    expect(s.enabled).toBe(true);
    expect(s.running).toBe(true);
    expect(s.superiors[0]).toMatchObject({ superiorId: SUPERIOR, registered: true, lastRegisterStatus: 200, lastKeepaliveStatus: 200 });
    expect(await site.metric('shouhu_gb28181_cascade_registered', { superior: SUPERIOR })).toBe(1);
  });

  it("answers the superior's Catalog with district → zone → school → cameras, in parts carrying SumNum, names in GB18030", async () => {
    expect(await sup.query(site.sipPort, GB_PLATFORM, 'Catalog', 7001)).toBe(200);
    const parts = () => sup.seen('MESSAGE', 'Catalog', 'Response').filter((r) => r.doc!.sn === '7001');
    await sup.until(
      () =>
        parts().length > 0 &&
        parts().reduce((n, p) => n + child(p.doc!.el, 'DeviceList')!.children.length, 0) >= Number(childText(parts()[0].doc!.el, 'SumNum')),
      8000,
      'the whole Catalog',
    );
    const all = parts();
    const sumNum = Number(childText(all[0].doc!.el, 'SumNum'));
    // civil code, business group, 1 zone, 2 schools, 2 cameras = 7 items, 3 per message → 3 messages, each saying SumNum 7.
    expect(sumNum).toBe(7);
    expect(all).toHaveLength(3);
    for (const p of all) {
      expect(childText(p.doc!.el, 'SumNum')).toBe('7');
      const list = child(p.doc!.el, 'DeviceList')!;
      expect(Number(list.attrs.Num)).toBe(list.children.length);
      expect(p.text).toContain('encoding="GB2312"');
    }
    // Names are GB18030 bytes (not UTF-8).
    const raw = Buffer.concat(all.map((p) => p.raw));
    expect(raw.includes(iconv.encode('甲小学', 'gb18030'))).toBe(true);
    expect(raw.includes(Buffer.from('甲小学', 'utf8'))).toBe(false);
    const items = all.flatMap((p) => child(p.doc!.el, 'DeviceList')!.children.map((i) => Object.fromEntries(i.children.map((c) => [c.name, c.text]))));
    const byName = (n: string) => items.find((i) => i.Name === n)!;
    expect(items[0]).toMatchObject({ DeviceID: '340200', Name: '测试区' }); // civil code: the first 6 digits of our id
    const group = items[1];
    expect(group.DeviceID).toMatch(/^3402000000215\d{7}$/);
    const zone = byName('一学区');
    expect(zone.DeviceID).toMatch(/^3402000000216\d{7}$/);
    expect(zone).toMatchObject({ ParentID: group.DeviceID, BusinessGroupID: group.DeviceID });
    const schoolA = byName('甲小学');
    const schoolB = byName('乙小学');
    expect(schoolA).toMatchObject({ ParentID: zone.DeviceID });
    expect(schoolB).toMatchObject({ ParentID: zone.DeviceID });
    expect(byName('东侧围墙')).toMatchObject({ DeviceID: DEV_A, ParentID: schoolA.DeviceID, Status: 'ON', CivilCode: '340200' });
    expect(byName('校门口')).toMatchObject({ DeviceID: DEV_B, ParentID: schoolB.DeviceID, Status: 'OFF' });
    // Our own parser reads each part as it reads a lower platform's Catalog.
    for (const p of all) expect(parseManscdp(p.raw).cmdType).toBe('Catalog');
    // Ids are stable: a second query gives the same organisation ids.
    expect(await sup.query(site.sipPort, GB_PLATFORM, 'Catalog', 7002)).toBe(200);
    await sup.until(() => sup.seen('MESSAGE', 'Catalog', 'Response').filter((r) => r.doc!.sn === '7002').length === 3, 8000, 'second Catalog');
    const again = sup
      .seen('MESSAGE', 'Catalog', 'Response')
      .filter((r) => r.doc!.sn === '7002')
      .flatMap((p) => child(p.doc!.el, 'DeviceList')!.children.map((i) => childText(i, 'DeviceID')));
    expect(again).toEqual(items.map((i) => i.DeviceID));

    // A flood of queries (attack pass 2: each one sent the whole district) costs one tree per catalogMinIntervalMs:
    // those asked while one is sent, or sooner, wait, and the newest SN is answered.
    const before = sup.seen('MESSAGE', 'Catalog', 'Response').length;
    for (let sn = 7100; sn < 7130; sn++) expect(await sup.query(site.sipPort, GB_PLATFORM, 'Catalog', sn)).toBe(200);
    await sup.until(() => sup.seen('MESSAGE', 'Catalog', 'Response').some((r) => r.doc!.sn === '7129'), 8000, 'the newest query answered');
    const sent = sup.seen('MESSAGE', 'Catalog', 'Response').slice(before);
    expect(new Set(sent.map((r) => r.doc!.sn)).size).toBeLessThanOrEqual(2); // the first of the flood (maybe), then the newest
    expect(sent.length).toBeLessThanOrEqual(6);
  });

  it('answers DeviceInfo and DeviceStatus about our platform and about one camera', async () => {
    expect(await sup.query(site.sipPort, GB_PLATFORM, 'DeviceInfo', 7101)).toBe(200);
    await sup.until(() => sup.seen('MESSAGE', 'DeviceInfo', 'Response').some((r) => r.doc!.sn === '7101'), 5000, 'DeviceInfo');
    const info = sup.seen('MESSAGE', 'DeviceInfo', 'Response').find((r) => r.doc!.sn === '7101')!.doc!;
    expect(info.deviceId).toBe(GB_PLATFORM);
    expect(childText(info.el, 'Result')).toBe('OK');
    expect(childText(info.el, 'Channel')).toBe('2');
    expect(await sup.query(site.sipPort, GB_PLATFORM, 'DeviceStatus', 7102)).toBe(200);
    expect(await sup.query(site.sipPort, GB_PLATFORM, 'DeviceStatus', 7103, DEV_B)).toBe(200);
    await sup.until(
      () => sup.seen('MESSAGE', 'DeviceStatus', 'Response').filter((r) => ['7102', '7103'].includes(r.doc!.sn)).length === 2,
      5000,
      'DeviceStatus',
    );
    const st = (sn: string) => sup.seen('MESSAGE', 'DeviceStatus', 'Response').find((r) => r.doc!.sn === sn)!.doc!;
    expect(childText(st('7102').el, 'Online')).toBe('ONLINE');
    expect(st('7103').deviceId).toBe(DEV_B);
    expect(childText(st('7103').el, 'Online')).toBe('OFFLINE');
  });

  it('forwards an alarm raised by a button as Alarm Notify, once, and takes the superior’s Response', async () => {
    const button = await createButton(site.t, site.admin, { schoolId: site.seed!.schoolA.id, code: 'CASCADE-1', location: '东门' });
    expect((await press(site.t.baseUrl, button, 'cascade-evt-1')).status).toBeLessThan(300);
    expect((await press(site.t.baseUrl, button, 'cascade-evt-1')).status).toBeLessThan(300); // the device's retry: the same press
    await sup.until(() => sup.seen('MESSAGE', 'Alarm', 'Notify').length >= 1, 8000, 'Alarm Notify');
    const alarm = sup.seen('MESSAGE', 'Alarm', 'Notify')[0].doc!;
    expect(alarm.deviceId).toBe(GB_PLATFORM); // a button has no GB/T 28181 id: our platform's
    expect(childText(alarm.el, 'AlarmMethod')).toBe('2');
    expect(childText(alarm.el, 'AlarmPriority')).toMatch(/^[1-4]$/);
    expect(childText(alarm.el, 'AlarmTime')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(childText(alarm.el, 'AlarmDescription')).toContain('甲小学');
    // The superior's Alarm Response (§9.4.2) marks it acknowledged.
    expect(
      await sup.send(
        site.sipPort,
        GB_PLATFORM,
        `<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Alarm</CmdType>\r\n<SN>${alarm.sn}</SN>\r\n<DeviceID>${GB_PLATFORM}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n`,
      ),
    ).toBe(200);
    await until(async () => (await status()).alarms.acknowledged === 1, 5000, 'alarm acknowledged');
    // Later polls send nothing again (one row per incident and superior).
    const polls = (await site.metric('shouhu_gb28181_cascade_events_total', { superior: SUPERIOR, event: 'keepalive_ok' })) + 2;
    await until(
      async () => (await site.metric('shouhu_gb28181_cascade_events_total', { superior: SUPERIOR, event: 'keepalive_ok' })) >= polls,
      5000,
      'two more keepalives',
    );
    expect(sup.seen('MESSAGE', 'Alarm', 'Notify')).toHaveLength(1);
  });

  it('forwards a burst larger than one round (alarmBatchMax 2) over several rounds, each alarm once', async () => {
    const before = sup.seen('MESSAGE', 'Alarm', 'Notify').length;
    const buttons = [];
    for (let i = 1; i <= 5; i++)
      buttons.push(await createButton(site.t, site.admin, { schoolId: site.seed!.schoolB.id, code: `BURST-${i}`, location: `${i} 号岗` }));
    await Promise.all(buttons.map(async (b, i) => expect((await press(site.t.baseUrl, b, `burst-${i}`)).status).toBeLessThan(300)));
    await sup.until(() => sup.seen('MESSAGE', 'Alarm', 'Notify').length >= before + 5, 8000, 'five Alarm Notifies');
    const burst = sup.seen('MESSAGE', 'Alarm', 'Notify').slice(before);
    expect(burst).toHaveLength(5);
    expect(new Set(burst.map((r) => r.doc!.sn)).size).toBe(5);
    for (let i = 1; i <= 5; i++) expect(burst.filter((r) => childText(r.doc!.el, 'AlarmDescription')!.includes(`${i} 号岗`))).toHaveLength(1);
  });

  it("forwards a camera's own GB/T 28181 alarm with the camera's channel id as DeviceID (video alarm)", async () => {
    const xml = `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>501</SN>\r\n<DeviceID>${DEV_A}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n<AlarmTime>2026-11-28T21:30:00</AlarmTime>\r\n<AlarmDescription>有人翻越围墙</AlarmDescription>\r\n<Info>\r\n<AlarmType>6</AlarmType>\r\n</Info>\r\n</Notify>\r\n`;
    expect(await devA.message(iconv.encode(xml, 'gb18030'))).toBe(200);
    await sup.until(() => sup.seen('MESSAGE', 'Alarm', 'Notify').some((r) => r.doc!.deviceId === DEV_A), 8000, 'the camera alarm upward');
    const up = sup.seen('MESSAGE', 'Alarm', 'Notify').find((r) => r.doc!.deviceId === DEV_A)!.doc!;
    expect(childText(up.el, 'AlarmMethod')).toBe('5');
    expect(childText(up.el, 'AlarmPriority')).toBe('1');
    expect(childText(up.el, 'AlarmDescription')).toContain('有人翻越围墙');
  });

  it('registers again when the superior restarts (forgets us: keepalive answered 403)', async () => {
    const before = sup.seen('REGISTER').filter((r) => r.authorized).length;
    sup.restart();
    await sup.until(() => sup.registered.has(GB_PLATFORM), 8000, 're-registration after the restart');
    expect(sup.seen('REGISTER').filter((r) => r.authorized).length).toBeGreaterThan(before);
    expect(sup.seen('MESSAGE', 'Keepalive').length).toBeGreaterThan(0);
    await until(async () => (await status()).superiors[0].registered === true, 5000, 'registered again');
    expect(await site.metric('shouhu_gb28181_cascade_events_total', { superior: SUPERIOR, event: 'keepalive_refused' })).toBeGreaterThanOrEqual(1);
  });

  it('registers again, with backoff, when the superior stops answering, and without qop when it asks none', async () => {
    sup.mode = 'silent';
    await until(async () => (await status()).superiors[0].registered === false, 8000, 'registration lost');
    const s = await status();
    expect(s.superiors[0].lastError).toMatch(/unanswered|not answered/);
    expect(await site.metric('shouhu_gb28181_cascade_registered', { superior: SUPERIOR })).toBe(0);
    const before = sup.seen('REGISTER').filter((r) => r.authorized).length;
    sup.qop = false; // the superior came back as a platform challenging without qop (RFC 2069 form)
    sup.restart();
    sup.mode = 'normal';
    await sup.until(() => sup.seen('REGISTER').filter((r) => r.authorized).length > before, 8000, 'registration after the outage');
    await until(async () => (await status()).superiors[0].registered === true, 5000, 'registered again');
  });

  it('keeps a second superior over TCP on one connection of ours, and connects and registers again when it drops it', async () => {
    await supTcp.until(() => supTcp.registered.has(GB_PLATFORM), 5000, 'TCP registration');
    expect(supTcp.seen('REGISTER')[0].authorized).toBe(false);
    await supTcp.until(() => supTcp.seen('MESSAGE', 'Keepalive').length >= 1, 5000, 'a keepalive over TCP');
    expect(await supTcp.query(site.sipPort, GB_PLATFORM, 'Catalog', 9001)).toBe(200);
    await supTcp.until(() => supTcp.seen('MESSAGE', 'Catalog', 'Response').length === 3, 5000, 'the Catalog over TCP');
    expect(supTcp.connections).toBe(1);
    const registrations = supTcp.seen('REGISTER').filter((r) => r.authorized).length;
    supTcp.restart();
    supTcp.dropConnections();
    await supTcp.until(() => supTcp.registered.has(GB_PLATFORM), 8000, 'TCP registration after the drop');
    expect(supTcp.connections).toBe(2);
    expect(supTcp.seen('REGISTER').filter((r) => r.authorized).length).toBeGreaterThan(registrations);
    const s = (await status()).superiors.find((x: { superiorId: string }) => x.superiorId === SUPERIOR_TCP);
    expect(s).toMatchObject({ transport: 'tcp', registered: true });
  });

  it('refuses a bad cascade configuration at boot, naming the key', () => {
    const env = { NODE_ENV: 'test' };
    const sup1 = { id: SUPERIOR, domain: '', host: '127.0.0.1', port: 5060, transport: 'udp', password: 'x', localId: '' };
    expect(() => loadConfig(env, { gb28181: { cascade: { enabled: true, superiors: [] } } })).toThrow(/gb28181\.cascade\.superiors: must list at least one/);
    expect(() => loadConfig(env, { gb28181: { cascade: { superiors: [{ ...sup1, port: 70000 }] } } })).toThrow(/gb28181\.cascade\.superiors: \[0\]\.port/);
    expect(() => loadConfig(env, { gb28181: { cascade: { superiors: [{ ...sup1, id: '123' }] } } })).toThrow(/gb28181\.cascade\.superiors: \[0\]\.id/);
    expect(() => loadConfig(env, { gb28181: { cascade: { superiors: [{ ...sup1, transport: 'sctp' }] } } })).toThrow(/\[0\]\.transport/);
    expect(() => loadConfig(env, { gb28181: { cascade: { keepaliveSeconds: 0 } } })).toThrow(/gb28181\.cascade\.keepaliveSeconds/);
    expect(() => loadConfig(env, { gb28181: { cascade: { alarmSources: ['robot'] } } })).toThrow(/gb28181\.cascade\.alarmSources/);
    expect(loadConfig(env).gb28181.cascade.enabled).toBe(false); // off by default
  });
});

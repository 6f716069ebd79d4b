import * as iconv from 'iconv-lite';
import { DeviceHealthService } from '../../src/modules/device-health';
import { child, childText, parseManscdp } from '../../src/modules/gb28181/manscdp';
import { header } from '../../src/modules/gb28181/sip-message';
import { createButton, press } from '../support/devices';
import { GB_PLATFORM, GbSite, startGbSite } from '../support/gb-site';
import { GbSuperior, SuperiorRequest } from '../support/gb-superior';
import { auth } from '../support/harness';
import { until } from '../support/processes';
import { GbCamera } from '../support/video/gb-camera';

/**
 * Cascade, what the superior hears without asking and what it may ask (issue 16 §7 remainders): our
 * cameras' status changes pushed upward as Catalog Notify (batched, paced), the superior's SUBSCRIBE
 * (Catalog, Alarm: dialog, refresh, un-subscribe, expiry; NOTIFYs in the dialog), its DeviceControl
 * (refused with Result ERROR, audited, limited), the checks of where its requests come from, DeviceInfo
 * about one camera, and digest qop=auth-int upward. The superior is test/support/gb-superior.ts (a
 * SIP peer of the test's own over UDP); the cameras are channels of a simulated NVR.
 */

const SUPERIOR = '50000000002000000001';
const SUPERIOR_INT = '50000000002000000003'; // a second superior, challenging with qop=auth-int only
const PASSWORD = 'city-gives-us-this-1';
const NVR = '34020000001180000091';
const CHANNELS = 25;
const PER_MESSAGE = 10;
const MESSAGES_PER_SECOND = 2;
const chId = (n: number) => `3402000000131000${String(n).padStart(4, '0')}`;

/** The NVR's one-part Catalog response (§A.2.6.3): every channel ON. */
function catalogBody(sn: string, channels: string[]): Buffer {
  const list = channels.map(
    (id, i) => `<Item><DeviceID>${id}</DeviceID><Name>通道${i + 1}</Name><Manufacturer>Hikvision</Manufacturer><Model>DS-2CD</Model><Status>ON</Status></Item>`,
  );
  const xml = `<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${NVR}</DeviceID>\r\n<SumNum>${channels.length}</SumNum>\r\n<DeviceList Num="${channels.length}">\r\n${list.join('\r\n')}\r\n</DeviceList>\r\n</Response>\r\n`;
  return iconv.encode(xml, 'gb18030');
}

/** The NVR's Catalog notification of channel events (§9.11). */
let notifySn = 100;
const eventsBody = (events: [string, string][]) =>
  `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${++notifySn}</SN>\r\n<DeviceID>${NVR}</DeviceID>\r\n<SumNum>${events.length}</SumNum>\r\n<DeviceList Num="${events.length}">\r\n${events
    .map(([id, ev]) => `<Item><DeviceID>${id}</DeviceID><Event>${ev}</Event></Item>`)
    .join('\r\n')}\r\n</DeviceList>\r\n</Notify>\r\n`;

/** The Items (DeviceID → Event) of a status Catalog Notify the superior received. */
const itemsOf = (r: SuperiorRequest) => child(r.doc!.el, 'DeviceList')!.children.map((i) => [childText(i, 'DeviceID')!, childText(i, 'Event')!] as const);

describe('GB/T 28181 cascade: status pushes, subscriptions, controls, source checks', () => {
  let site: GbSite;
  let sup: GbSuperior;
  let supInt: GbSuperior;
  let nvr: GbCamera;
  let channels: string[];
  let channelCameraIds: Record<string, string>;

  const status = async () => (await site.t.http().get('/api/v1/gb28181/cascade').set(auth(site.admin)).expect(200)).body;
  const link = async () => (await status()).superiors.find((s: { superiorId: string }) => s.superiorId === SUPERIOR);
  /** Status Catalog Notifies the superior received (by MESSAGE, or by NOTIFY), from index `from`. */
  const statusMessages = (method: 'MESSAGE' | 'NOTIFY', from = 0) => sup.seen(method, 'Catalog', 'Notify').slice(from);
  const cameraStatus = async (ch: string) =>
    (await site.t.http().get(`/api/v1/cameras/${channelCameraIds[ch]}`).set(auth(site.admin)).expect(200)).body.status as string;
  const sweep = () => site.t.app.get(DeviceHealthService).sweep(Date.now() + 1);

  beforeAll(async () => {
    sup = new GbSuperior({ id: SUPERIOR, realm: '5000000000', password: PASSWORD });
    await sup.start();
    supInt = new GbSuperior({ id: SUPERIOR_INT, realm: '5000000000', password: PASSWORD });
    supInt.qop = 'auth-int';
    await supInt.start();
    site = await startGbSite({
      password: 'district-default-1',
      seed: true,
      gb28181: {
        cascade: {
          enabled: true,
          superiors: [sup.entry(), supInt.entry()],
          registerExpiresSeconds: 60,
          keepaliveSeconds: 5,
          retryMinMs: 200,
          retryMaxMs: 1000,
          requestTimeoutMs: 1000,
          catalogItemsPerMessage: PER_MESSAGE,
          catalogMinIntervalMs: 500,
          alarmPollMs: 100,
          statusNotify: 'always',
          statusPollMs: 100,
          statusMessagesPerSecond: MESSAGES_PER_SECOND,
          subscribeMinSeconds: 2,
          subscribeMaxSeconds: 40,
          controlPerSecond: 2,
        },
      },
    });
    await sup.until(() => sup.registered.has(GB_PLATFORM), 8000, 'registration');
    // The NVR in school A, its channels provisioned from its Catalog.
    const d = await site.device(NVR, { schoolId: site.seed!.schoolA.id });
    nvr = d.dev;
    channels = Array.from({ length: CHANNELS }, (_, i) => chId(i + 1));
    expect(await nvr.message(catalogBody(d.sn, channels))).toBe(200);
    await until(
      async () => {
        const cams = (await site.t.http().get('/api/v1/cameras').query({ deviceId: NVR, limit: 100 }).set(auth(site.admin)).expect(200)).body.items;
        channelCameraIds = Object.fromEntries(cams.map((c: { channelId: string; id: string }) => [c.channelId, c.id]));
        return cams.length === CHANNELS;
      },
      10000,
      'the NVR channels as cameras',
    );
  }, 60_000);

  afterAll(async () => {
    await site?.close();
    sup?.stop();
    supInt?.stop();
  });

  it('pushes cameras coming online and a mass outage upward as a few batched Catalog Notify MESSAGEs (Event ON / OFF), not one per camera', async () => {
    // Its Catalog (Status ON) and keepalive bring the NVR's 25 channels online within moments: 25 transitions
    // become ⌈25/10⌉ = 3 messages of ≤ 10 items (4 if a round ends between them), not 25.
    const before = 0;
    expect(await nvr.sendKeepalive()).toBe(200);
    const told = (from: number, event: string) =>
      new Set(
        statusMessages('MESSAGE', from).flatMap((r) =>
          itemsOf(r)
            .filter(([, e]) => e === event)
            .map(([id]) => id),
        ),
      );
    await sup.until(() => channels.every((c) => told(before, 'ON').has(c)), 15000, 'every channel told ON');
    const up = statusMessages('MESSAGE', before);
    expect(up.length).toBeLessThanOrEqual(Math.ceil(CHANNELS / PER_MESSAGE) + 1);
    for (const r of up) {
      expect(r.doc!.root).toBe('Notify');
      expect(r.doc!.deviceId).toBe(GB_PLATFORM);
      const list = child(r.doc!.el, 'DeviceList')!;
      expect(Number(list.attrs.Num)).toBe(list.children.length);
      expect(Number(childText(r.doc!.el, 'SumNum'))).toBe(list.children.length);
      expect(list.children.length).toBeLessThanOrEqual(PER_MESSAGE);
    }
    expect(
      up
        .flatMap(itemsOf)
        .map(([id]) => id)
        .sort(),
    ).toEqual([...channels].sort()); // each camera once

    // A mass outage: the NVR reports every channel OFF; the sweep records them offline; 3 messages again.
    const beforeOff = statusMessages('MESSAGE').length;
    expect(await nvr.message(eventsBody(channels.map((c) => [c, 'OFF'])))).toBe(200);
    await until(async () => (await sweep()) !== undefined && (await cameraStatus(channels[CHANNELS - 1])) === 'offline', 10000, 'channels offline');
    await sup.until(() => channels.every((c) => told(beforeOff, 'OFF').has(c)), 15000, 'every channel told OFF');
    const down = statusMessages('MESSAGE', beforeOff);
    expect(down.length).toBeLessThanOrEqual(Math.ceil(CHANNELS / PER_MESSAGE) + 1);
    expect(down.flatMap(itemsOf).every(([, e]) => e === 'OFF')).toBe(true);
    const s = await link();
    expect(s.statusPending).toBe(0);
    expect(s.counts.status_items).toBeGreaterThanOrEqual(2 * CHANNELS);
    // Told only what changed: the second superior got the same pushes, nothing more.
    await supInt.until(() => supInt.seen('MESSAGE', 'Catalog', 'Notify').flatMap(itemsOf).length >= 2 * CHANNELS, 15000, 'the second superior told too');
    expect(supInt.seen('MESSAGE', 'Catalog', 'Notify').flatMap(itemsOf)).toHaveLength(2 * CHANNELS);
  });

  it('takes a Catalog SUBSCRIBE: 200 with the dialog and a Response body, NOTIFYs in the dialog, refresh, 423/489/481, un-subscribe with a terminated NOTIFY', async () => {
    const r = await sup.subscribe(site.sipPort, GB_PLATFORM, 'Catalog', 30, { sn: 41 });
    expect(r.status).toBe(200);
    expect(header(r, 'expires')).toBe('30');
    expect(r.to.tag).toBeTruthy();
    expect(header(r, 'contact')).toContain(GB_PLATFORM);
    const answer = parseManscdp(r.body);
    expect([answer.root, answer.cmdType, answer.sn, childText(answer.el, 'Result')]).toEqual(['Response', 'Catalog', '41', 'OK']);
    expect((await link()).subscriptions.catalog).not.toBeNull();

    // A channel back (Event ON by MESSAGE: online at once) → a NOTIFY in the dialog, no MESSAGE.
    const messages = statusMessages('MESSAGE').length;
    const notifies = statusMessages('NOTIFY').length;
    expect(await nvr.message(eventsBody([[channels[0], 'ON']]))).toBe(200);
    await sup.until(() => statusMessages('NOTIFY', notifies).length > 0, 10000, 'a NOTIFY');
    const n = statusMessages('NOTIFY', notifies)[0];
    const dialog = sup.dialogs.get('Catalog')!;
    expect(n.sip.callId).toBe(dialog.callId);
    expect(n.sip.to.tag).toBe(dialog.fromTag);
    expect(n.sip.from.tag).toBe(r.to.tag);
    expect(header(n.sip, 'event')).toBe('Catalog;id=41');
    expect(header(n.sip, 'subscription-state')).toMatch(/^active;expires=(30|29|28)$/);
    expect(itemsOf(n)).toEqual([[channels[0], 'ON']]);
    expect(statusMessages('MESSAGE', messages)).toHaveLength(0);

    // Refresh in the dialog; a shorter one than subscribeMinSeconds, an unknown package, an unknown dialog.
    expect((await sup.subscribe(site.sipPort, GB_PLATFORM, 'Catalog', 20)).status).toBe(200);
    const brief = await sup.subscribe(site.sipPort, GB_PLATFORM, 'Catalog', 1);
    expect(brief.status).toBe(423);
    expect(header(brief, 'min-expires')).toBe('2');
    const mobile = await sup.request(
      site.sipPort,
      'SUBSCRIBE',
      GB_PLATFORM,
      Buffer.from(`<?xml version="1.0"?>\r\n<Query>\r\n<CmdType>MobilePosition</CmdType>\r\n<SN>5</SN>\r\n<DeviceID>${GB_PLATFORM}</DeviceID>\r\n</Query>\r\n`),
      {
        headers: [
          ['Event', 'presence'],
          ['Expires', 60],
        ],
      },
    );
    expect(mobile.status).toBe(489);
    const stranger = await sup.request(site.sipPort, 'SUBSCRIBE', GB_PLATFORM, Buffer.alloc(0), {
      toTag: 'nosuchdialog',
      headers: [
        ['Event', 'Catalog'],
        ['Expires', 60],
      ],
    });
    expect(stranger.status).toBe(481);

    // Un-subscribe: 200 Expires 0, a NOTIFY terminated; the next change goes by MESSAGE again.
    const ended = statusMessages('NOTIFY').length;
    const bye = await sup.subscribe(site.sipPort, GB_PLATFORM, 'Catalog', 0);
    expect(bye.status).toBe(200);
    expect(header(bye, 'expires')).toBe('0');
    await sup.until(() => sup.seen('NOTIFY').some((x) => header(x.sip, 'subscription-state') === 'terminated'), 5000, 'the terminated NOTIFY');
    expect((await link()).subscriptions.catalog).toBeNull();
    expect(await nvr.message(eventsBody([[channels[1], 'ON']]))).toBe(200);
    await sup.until(() => statusMessages('MESSAGE', messages).some((x) => itemsOf(x).some(([id]) => id === channels[1])), 10000, 'the change by MESSAGE');
    expect(statusMessages('NOTIFY').length).toBe(ended);
  });

  it('ends an expired subscription with NOTIFY terminated;reason=timeout, and drops one the superior forgot (481) for MESSAGEs', async () => {
    expect((await sup.subscribe(site.sipPort, GB_PLATFORM, 'Catalog', 2, { fresh: true })).status).toBe(200);
    await sup.until(() => sup.seen('NOTIFY').some((x) => header(x.sip, 'subscription-state') === 'terminated;reason=timeout'), 8000, 'the expiry NOTIFY');
    expect((await link()).subscriptions.catalog).toBeNull();

    // The superior restarted and forgot the dialog: our NOTIFY gets 481, the change goes by MESSAGE, the subscription is gone.
    expect((await sup.subscribe(site.sipPort, GB_PLATFORM, 'Catalog', 30, { fresh: true })).status).toBe(200);
    sup.notifyStatus = 481;
    try {
      const messages = statusMessages('MESSAGE').length;
      expect(await nvr.message(eventsBody([[channels[2], 'ON']]))).toBe(200);
      await sup.until(
        () => statusMessages('MESSAGE', messages).some((x) => itemsOf(x).some(([id]) => id === channels[2])),
        10000,
        'the change by MESSAGE after 481',
      );
    } finally {
      sup.notifyStatus = 200;
    }
    expect((await link()).subscriptions.catalog).toBeNull();
    expect((await link()).counts.subscription_gone).toBe(1);
  });

  it('sends alarms as NOTIFY in an Alarm subscription', async () => {
    const r = await sup.subscribe(site.sipPort, GB_PLATFORM, 'Alarm', 30, { sn: 77 });
    expect(r.status).toBe(200);
    expect(parseManscdp(r.body).cmdType).toBe('Alarm');
    const button = await createButton(site.t, site.admin, { schoolId: site.seed!.schoolA.id, code: 'CASCADE-SUB-1', location: '北门' });
    expect((await press(site.t.baseUrl, button, 'cascade-sub-1')).status).toBeLessThan(300);
    await sup.until(() => sup.seen('NOTIFY', 'Alarm', 'Notify').length === 1, 10000, 'the alarm NOTIFY');
    const n = sup.seen('NOTIFY', 'Alarm', 'Notify')[0];
    expect(n.sip.callId).toBe(sup.dialogs.get('Alarm')!.callId);
    expect(childText(n.doc!.el, 'AlarmDescription')).toContain('甲小学');
    expect(sup.seen('MESSAGE', 'Alarm', 'Notify')).toHaveLength(0);
    expect((await link()).subscriptions.alarm).not.toBeNull();
  });

  it('answers DeviceControl with Result ERROR, audits each, and limits a flood (503 Retry-After, no answer, no audit)', async () => {
    const control = (sn: number) =>
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${channels[0]}</DeviceID>\r\n<PTZCmd>A50F010800FA00B7</PTZCmd>\r\n<Info>\r\n<ControlPriority>5</ControlPriority>\r\n</Info>\r\n</Control>\r\n`;
    expect(await sup.send(site.sipPort, GB_PLATFORM, control(9001))).toBe(200);
    await sup.until(() => sup.seen('MESSAGE', 'DeviceControl', 'Response').length === 1, 8000, 'the DeviceControl Response');
    const answer = sup.seen('MESSAGE', 'DeviceControl', 'Response')[0].doc!;
    expect([answer.sn, answer.deviceId, childText(answer.el, 'Result')]).toEqual(['9001', channels[0], 'ERROR']);
    const audit = async () =>
      (await site.t.db.query(`SELECT actor_type, actor_name, entity_id, ip, after FROM audit_log WHERE action = 'superior_control_refused' ORDER BY id`)).rows;
    await until(async () => (await audit()).length === 1, 5000, 'the audit row');
    const [row] = await audit();
    expect(row).toMatchObject({ actor_type: 'system', actor_name: `superior ${SUPERIOR}`, entity_id: SUPERIOR, ip: '127.0.0.1' });
    expect(row.after).toMatchObject({ cmdType: 'DeviceControl', sn: '9001', deviceId: channels[0], result: 'ERROR', command: { PTZCmd: 'A50F010800FA00B7' } });

    // A flood of 8 at once against 2 a second: most are 503 with Retry-After; only those taken are answered and audited.
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, i) => sup.send(site.sipPort, GB_PLATFORM, control(9100 + i))));
    const taken = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(5);
    expect(taken + statuses.filter((s) => s === 503).length).toBe(8);
    await sup.until(() => sup.seen('MESSAGE', 'DeviceControl', 'Response').length === 1 + taken, 8000, 'the answers of those taken');
    await until(async () => (await audit()).length === 1 + taken, 5000, 'their audit rows');
    expect((await link()).counts.control_limited).toBe(8 - taken);
  });

  it("checks where the superior's requests come from (From domain, To) and answers DeviceInfo about one camera, or ERROR", async () => {
    const query = (cmd: string, sn: number, id: string) =>
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>${cmd}</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${id}</DeviceID>\r\n</Query>\r\n`;
    // From naming another domain: 403, nothing answered; To naming someone else: 404.
    expect(await sup.send(site.sipPort, GB_PLATFORM, query('DeviceInfo', 8001, GB_PLATFORM), { fromHost: '6100000000' })).toBe(403);
    expect(await sup.send(site.sipPort, GB_PLATFORM, query('DeviceInfo', 8002, GB_PLATFORM), { toUser: '61000000002000000001' })).toBe(404);
    // A To without a user part names no one (attack pass 4 #6: a Catalog query so addressed was answered with the whole tree).
    expect(await sup.send(site.sipPort, GB_PLATFORM, query('Catalog', 8005, GB_PLATFORM), { toHeader: `<sip:${GB_PLATFORM.slice(0, 10)}>` })).toBe(404);
    // Its address in From (as some platforms write it) is accepted.
    expect(await sup.send(site.sipPort, GB_PLATFORM, query('DeviceInfo', 8003, channels[3]), { fromHost: `127.0.0.1:${sup.port}` })).toBe(200);
    expect(await sup.send(site.sipPort, GB_PLATFORM, query('DeviceInfo', 8004, '34020000001319999999'))).toBe(200);
    await sup.until(
      () => sup.seen('MESSAGE', 'DeviceInfo', 'Response').filter((x) => ['8003', '8004'].includes(x.doc!.sn)).length === 2,
      8000,
      'DeviceInfo answers',
    );
    const info = (sn: string) => sup.seen('MESSAGE', 'DeviceInfo', 'Response').find((x) => x.doc!.sn === sn)!.doc!;
    expect(info('8003').deviceId).toBe(channels[3]);
    expect(childText(info('8003').el, 'Result')).toBe('OK');
    expect(childText(info('8003').el, 'DeviceName')).toBe('通道4');
    expect(childText(info('8003').el, 'Manufacturer')).toBe('Hikvision');
    expect(info('8004').deviceId).toBe('34020000001319999999');
    expect(childText(info('8004').el, 'Result')).toBe('ERROR');
    expect(sup.seen('MESSAGE', 'DeviceInfo', 'Response').some((x) => ['8001', '8002'].includes(x.doc!.sn))).toBe(false);
    expect(sup.seen('MESSAGE', 'Catalog', 'Response').some((x) => x.doc!.sn === '8005')).toBe(false);
    expect((await link()).counts.request_refused).toBe(3);
  });

  it('registers with a superior that challenges with qop=auth-int only (RFC 2617: the body hashed into the response)', async () => {
    await supInt.until(() => supInt.registered.has(GB_PLATFORM), 8000, 'auth-int registration');
    const ok = supInt.seen('REGISTER').find((x) => x.authorized)!;
    expect(header(ok.sip, 'authorization')).toMatch(/qop=auth-int, nc=00000001, cnonce="[0-9a-f]+"/);
    const s = (await status()).superiors.find((x: { superiorId: string }) => x.superiorId === SUPERIOR_INT);
    expect(s).toMatchObject({ registered: true, lastRegisterStatus: 200 });
  });
});

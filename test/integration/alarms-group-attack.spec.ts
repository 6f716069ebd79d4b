import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { requestContext } from '../../src/infra/http/request-context';
import type { AlarmsConfig } from '../../src/config/sections';
import type { DeviceAlarmInput } from '../../src/modules/alarms/alarm-intake.service';
import { PoliceReceiver, startPoliceReceiver } from '../support/police-receiver';
import { AlarmIntakeService } from '../../src/modules/alarms';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { createButton, createCamera, TestButton } from '../support/devices';

/**
 * Adversarial pass 11 on group commit's combined statement (alarms.groupCommit.statementMaxEvents):
 * the first events of many devices of one group go in one statement, whose sub-statements all see
 * one snapshot — so two events that are of one device but are not recognised as such both open an
 * incident, where one by one the second folded into the first.
 */
describe('alarm intake: combined statement attacks', () => {
  let t: TestApp;
  let police: PoliceReceiver;
  let intake: AlarmIntakeService;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let cams: { id: string }[] = [];
  const buttons: TestButton[] = [];

  beforeAll(async () => {
    police = await startPoliceReceiver('attack11-police-secret-0123456789');
    t = await startApp({
      alarms: {
        groupCommit: { windowMs: 50, maxBatch: 100, maxConcurrent: 2, statementMaxEvents: 16 },
        // P4 without escalation: a button press of P4 without cameras has no outbox rows (another part text).
        escalationSeconds: { P1: [600, 1200], P2: [600], P3: [600], P4: [] },
        evidenceSnapshotSeconds: [600],
        policeRelay: { url: police.url, hmacSecret: 'attack11-police-secret-0123456789', timeoutMs: 2000, attempts: 3, backoffMs: 50, lateAfterSeconds: 600 },
      },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    cams = [];
    for (let i = 0; i < 4; i++)
      cams.push(
        await createCamera(t, admin, {
          schoolId: seed.schoolA.id,
          deviceId: `500113000013200000${10 + i}`,
          channelId: `500113000013100000${10 + i}`,
          name: `攻击摄像机${i}`,
          areaKind: 'playground',
          streamUrl: `rtsp://nvr/${10 + i}`,
        }),
      );
    for (let i = 0; i < 20; i++) buttons.push(await createButton(t, admin, { schoolId: seed.schoolA.id, code: `ATK-${i}`, location: `攻击岗${i}` }));
    intake = t.app.get(AlarmIntakeService);
  });
  afterAll(async () => {
    await t?.close();
    await police?.close();
  });

  const gatewayCred = async (schoolId?: string) =>
    (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'gateway', schoolId }).expect(201)).body.authorization as string;
  const report = (authorization: string, body: object) => t.http().post('/api/v1/incidents/device-reports').set('Authorization', authorization).send(body);

  it("takes one camera's alarms named in upper and lower case in one group as one incident", async () => {
    const cam = cams[0];
    const gw = await gatewayCred(seed.schoolA.id);
    const camCred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: cam.id }).expect(201)).body
      .authorization as string;
    // The camera reports itself, and a gateway that writes ids in capitals reports the same camera: same moment, one group.
    const answers = await Promise.all([
      report(camCred, { eventId: 'uc-1', type: 'intrusion' }),
      report(gw, { eventId: 'uc-2', type: 'intrusion', cameraId: cam.id.toUpperCase() }),
      // Two other cameras in the same group: four parts of one text go in one statement (chunks of 16, 2, 1).
      report(gw, { eventId: 'uc-3', type: 'intrusion', cameraId: cams[1].id }),
      report(gw, { eventId: 'uc-4', type: 'intrusion', cameraId: cams[2].id }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([expect.any(Number), expect.any(Number), 201, 201]);
    expect(
      answers
        .slice(0, 2)
        .map((a) => a.status)
        .sort(),
    ).toEqual([200, 201]);
    const open = await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE camera_id = $1 AND status = 'raised'`, [cam.id]);
    expect(open.rows[0].n).toBe(1);
    expect(answers[0].body.id).toBe(answers[1].body.id);
  });

  const pressAs = (deviceId: string, eventId: string, note?: string) =>
    requestContext.run({ requestId: `atk-${eventId}`, ip: '127.0.0.1', actor: { type: 'device', id: deviceId, name: `button ${eventId}` } }, () =>
      intake.raiseFromDevice({ deviceKind: 'alarm_device', deviceId, eventId, note }, { type: 'device', id: deviceId, name: `button ${eventId}` }),
    );

  it("keeps a button's presses in arrival order when its group fails and each event is tried again alone", async () => {
    // The retried events raced for their device's lock: some rounds kept the order by chance, six rounds lost it here every run.
    for (let round = 0; round < 6; round++) {
      const b = buttons[round].id;
      const calls: Promise<unknown>[] = [];
      const ofButton: number[] = [];
      // One button pressed eight times, four other buttons once, and one bad event (NUL: Postgres refuses it) failing the group.
      for (let k = 0; k < 8; k++) {
        ofButton.push(calls.push(pressAs(b, `ord-${k}`)) - 1);
        if (k < 4) calls.push(pressAs(buttons[10 + k].id, `ord-o-${round}-${k}`));
      }
      calls.push(pressAs(buttons[15].id, `ord-bad-${round}`, 'bad\u0000note'));
      const settled = await Promise.allSettled(calls);
      expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(1);
      const order = await t.db.query(`SELECT device_event_id, repeat_no FROM incident_presses WHERE device_id = $1 ORDER BY id`, [b]);
      expect(order.rows.map((r: { device_event_id: string }) => r.device_event_id)).toEqual(Array.from({ length: 8 }, (_, k) => `ord-${k}`));
      // The first press opened the incident, the later ones folded into it, counted in order.
      const mine = ofButton.map((i) => (settled[i] as PromiseFulfilledResult<{ created: boolean; folded: boolean; incident: { pressCount: number } }>).value);
      expect(mine.map((r) => [r.created, r.folded, r.incident.pressCount])).toEqual(Array.from({ length: 8 }, (_, k) => [k === 0, k > 0, k + 1]));
    }
  });

  /** Notes that must reach the database as sent: placeholders, the part text's own tokens, quotes, long, emoji, rare CJK. */
  const ODD_NOTES = [
    '$1 $2 $10 $$ $0 $999999',
    '{S} {K} inc{S} chk{S}.seen {K}::int',
    `it's "quoted" \\ back\\slash ; -- comment /* c */ E'\\x41'`,
    'ℤ🚨👮‍♀️🏫 emoji',
    '𠀀𠀁𪚥龘 GB18030 扩展B区汉字 〇',
    '长'.repeat(480),
    '\nSELECT {K}::int AS k',
    'UNION ALL SELECT 1',
  ];

  /**
   * One scenario of groups (each Promise.all is one group: the window is 50 ms) on its own devices,
   * normalised so two runs can be compared: every answer, and per device its presses, incidents,
   * timelines, console events, audit entries and outbox jobs, incident ids replaced by labels.
   */
  async function scenario(tag: string, devs: { buttons: TestButton[]; cams: { id: string }[]; num: number }) {
    const b = devs.buttons.map((x) => x.id);
    const gwKey = randomUUID();
    const ctx = (id: string, ev: string) => ({ requestId: `${tag}-${ev}`, ip: '127.0.0.1', actor: { type: 'device' as const, id, name: `dev ${ev}` } });
    const raise = (i: Partial<DeviceAlarmInput> & { deviceId: string; eventId: string }) =>
      requestContext.run(ctx(i.deviceId, i.eventId), () =>
        intake.raiseFromDevice({ deviceKind: 'alarm_device', ...i } as DeviceAlarmInput, { type: 'device', id: i.deviceId, name: `dev ${i.eventId}` }),
      );
    const cam = (k: number, eventId: string, extra: Partial<DeviceAlarmInput> = {}) =>
      raise({ deviceKind: 'camera', deviceId: devs.cams[k].id, eventId, ...extra });
    const gw = (eventId: string, cameraId?: string) =>
      raise({
        deviceKind: 'camera',
        deviceId: cameraId ?? gwKey,
        eventId,
        type: 'intrusion',
        gatewaySchoolId: seed.schoolA.id,
        gateway: { key: gwKey, name: `gw-${tag}` },
      });
    const gb = (eventId: string) =>
      requestContext.run(ctx(gwKey, eventId), () =>
        intake.raiseFromUnplacedGbChannel(
          {
            gbDeviceId: '34020000001320000001',
            channelId: `3402000000131${String(devs.num).padStart(7, '0')}`,
            schoolId: seed.schoolB.id,
            eventId,
            type: 'tamper',
            note: 'gb',
          },
          { type: 'device', id: gwKey, name: 'gb' },
        ),
      );
    const answers: unknown[] = [];
    const group = async (calls: Promise<{ created: boolean; folded: boolean; incident: Record<string, unknown> }>[]) => {
      for (const r of await Promise.all(calls)) answers.push(r);
    };
    // A drill window of school A covers group 1 only.
    const [{ id: windowId }] = (
      await t.db.query(
        `INSERT INTO drill_windows (school_id, starts_at, ends_at, note, status) VALUES ($1, now() - interval '1 hour', now() + interval '1 hour', 'atk', 'approved') RETURNING id`,
        [seed.schoolA.id],
      )
    ).rows;
    await group([
      raise({ deviceId: b[0], eventId: 'g1-0' }),
      raise({ deviceId: b[1], eventId: 'g1-1' }),
      raise({ deviceId: b[4], eventId: 'g1-4' }),
      raise({ deviceId: b[10], eventId: 'g1-10' }),
      cam(0, 'g1-c0'),
    ]);
    // Ended a millisecond ago: a press time is the request's arrival in whole milliseconds, so a press in the same
    // millisecond as a window ended at now() (microseconds) still fell inside it — 1 run in 5 here made group 2 a drill.
    await t.db.query(`UPDATE drill_windows SET ends_at = now() - interval '1 millisecond' WHERE id = $1`, [windowId]);
    // Group 2: real presses after the drill, a retry, types and priorities, odd notes, buttons with and without cameras,
    // police-linked or not, a button twice, cameras, a gateway with and without a camera, an unplaced GB/T 28181 channel.
    await group([
      raise({ deviceId: b[0], eventId: 'g2-0' }),
      raise({ deviceId: b[1], eventId: 'g1-1' }),
      raise({ deviceId: b[2], eventId: 'g2-2', type: 'fire', priority: 'P4' }),
      raise({ deviceId: b[3], eventId: 'g2-3', type: 'device_fault' }),
      raise({ deviceId: b[4], eventId: 'g2-4', note: ODD_NOTES[0] }),
      raise({ deviceId: b[5], eventId: 'g2-5', type: 'device_fault', priority: 'P4', note: ODD_NOTES[1] }),
      raise({ deviceId: b[6], eventId: 'g2-6', note: ODD_NOTES[2] }),
      raise({ deviceId: b[7], eventId: 'g2-7', note: ODD_NOTES[3], type: 'medical' }),
      raise({ deviceId: b[8], eventId: 'g2-8', note: ODD_NOTES[4] }),
      raise({ deviceId: b[9], eventId: 'g2-9', note: ODD_NOTES[5], type: 'tamper', priority: 'P3' }),
      raise({ deviceId: b[10], eventId: 'g2-10', note: ODD_NOTES[6] }),
      raise({ deviceId: b[11], eventId: 'g2-11', note: ODD_NOTES[7] }),
      raise({ deviceId: b[12], eventId: 'g2-12a' }),
      raise({ deviceId: b[12], eventId: 'g2-12b', priority: 'P1' }),
      raise({ deviceId: b[13], eventId: 'g2-13', type: 'intrusion', priority: 'P3' }),
      cam(0, 'g2-c0'),
      cam(1, 'g2-c1', { type: 'tamper' }),
      cam(2, 'g2-c2', { type: 'video_alarm', priority: 'P4', note: ODD_NOTES[1] }),
      gw('g2-gw'),
      gw('g2-gw2', devs.cams[3].id),
      gb('g2-gb'),
      raise({ deviceId: b[14], eventId: 'g2-14', type: 'device_fault' }),
      raise({ deviceId: b[15], eventId: 'g2-15', type: 'device_fault' }),
      raise({ deviceId: b[16], eventId: 'g2-16', type: 'device_fault' }),
      raise({ deviceId: b[17], eventId: 'g2-17', type: 'device_fault' }),
    ]);
    // Group 3: priorities raised by folded presses, retries of group 2, a third press, repeats of everything at once.
    await group([
      raise({ deviceId: b[3], eventId: 'g3-3', type: 'device_fault', priority: 'P1' }),
      raise({ deviceId: b[5], eventId: 'g3-5', type: 'device_fault', priority: 'P2' }),
      raise({ deviceId: b[6], eventId: 'g2-6', note: ODD_NOTES[2] }),
      raise({ deviceId: b[7], eventId: 'g2-7' }),
      raise({ deviceId: b[12], eventId: 'g3-12' }),
      raise({ deviceId: b[0], eventId: 'g2-0' }),
      raise({ deviceId: b[0], eventId: 'g1-0' }),
      raise({ deviceId: b[14], eventId: 'g3-14', type: 'device_fault' }),
      raise({ deviceId: b[15], eventId: 'g2-15', type: 'device_fault' }),
      raise({ deviceId: b[16], eventId: 'g3-16', type: 'other' }),
      raise({ deviceId: b[17], eventId: 'g3-17', type: 'device_fault', priority: 'P2' }),
      cam(0, 'g3-c0'),
      cam(1, 'g2-c1', { type: 'tamper' }),
      gw('g3-gw'),
      gb('g2-gb'),
      gb('g3-gb'),
    ]);
    // Normalised: incident ids as labels; what the police relay adds (its own job, on its own time) is left out.
    // as labels in order of first appearance.
    const labels = new Map<string, string>();
    const label = (id: unknown) => {
      if (typeof id !== 'string') return id;
      if (!labels.has(id)) labels.set(id, `I${labels.size}`);
      return labels.get(id);
    };
    const norm = (answers as { created: boolean; folded: boolean; incident: Record<string, unknown> }[]).map((r) => ({
      id: label(r.incident.id),
      created: r.created,
      folded: r.folded,
      pressCount: r.incident.pressCount,
      priority: r.incident.priority,
      drill: r.incident.drill,
      type: r.incident.type,
      note: r.incident.note,
      status: r.incident.status,
      cameras: (r.incident.cameras as unknown[] | undefined)?.length,
      relayRequired: (r.incident.relay as { required?: boolean } | undefined)?.required,
    }));
    const ids = [...labels.keys()];
    const rows = async (sql: string): Promise<(Record<string, unknown> & { incident: unknown })[]> =>
      (await t.db.query(sql, [ids])).rows.map((r: Record<string, unknown>) => ({ ...r, incident: label(r.incident) }));
    const presses = await rows(
      `SELECT incident_id AS incident, device_event_id, repeat_no FROM incident_presses WHERE incident_id = ANY($1) ORDER BY incident_id, id`,
    );
    const timeline = await rows(
      `SELECT incident_id AS incident, action, note, data - 'eventId' AS data FROM incident_timeline WHERE incident_id = ANY($1) AND action NOT LIKE 'relay%' ORDER BY incident_id, id`,
    );
    const events = await rows(
      `SELECT (payload->>'incidentId')::uuid AS incident, type, payload->>'change' AS change, payload->>'priority' AS priority, (payload->>'drill')::boolean AS drill, payload->>'note' AS note
         FROM console_events WHERE (payload->>'incidentId')::uuid = ANY($1) AND coalesce(payload->>'change', '') NOT LIKE 'relay%' ORDER BY 1, seq`,
    );
    const audit = await rows(
      `SELECT entity_id::uuid AS incident, action, after - 'eventId' AS after, request_id FROM audit_log WHERE entity = 'incident' AND entity_id::uuid = ANY($1) AND action NOT LIKE 'relay%' ORDER BY 1, id`,
    );
    const outbox = await rows(
      `SELECT (payload->>'incidentId')::uuid AS incident, job_name, payload - 'incidentId' AS payload FROM alarm_outbox WHERE (payload->>'incidentId')::uuid = ANY($1) ORDER BY 1, job_name, job_id`,
    );
    const byLabel = <T extends { incident: unknown }>(xs: T[]) =>
      xs.sort((x, y) => String(x.incident).localeCompare(String(y.incident), 'en', { numeric: true }));
    return {
      answers: norm,
      presses: byLabel(presses),
      timeline: byLabel(timeline),
      events: byLabel(events),
      audit: byLabel(audit).map((a) => ({ ...a, request_id: String(a.request_id).replace(`${tag}-`, '') })),
      outbox: byLabel(outbox),
    };
  }

  /** The devices of one scenario: 18 buttons of both schools, with and without cameras, police-linked or not; 4 cameras of school A. */
  async function scenarioDevices(tag: string, num: number) {
    const made: { id: string }[] = [];
    for (let i = 0; i < 4; i++)
      made.push(
        await createCamera(t, admin, {
          schoolId: seed.schoolA.id,
          deviceId: `5001130000132${String(num).padStart(5, '0')}${i}0`,
          channelId: `5001130000131${String(num).padStart(5, '0')}${i}0`,
          name: `${tag}摄像机${i}`,
          areaKind: 'canteen',
          streamUrl: `rtsp://nvr/${tag}/${i}`,
        }),
      );
    const bs: TestButton[] = [];
    for (let i = 0; i < 18; i++) {
      const school = i >= 10 && i < 14 ? seed.schoolB.id : seed.schoolA.id;
      bs.push(
        await createButton(t, admin, {
          schoolId: school,
          code: `${tag}-${i}`,
          location: `${tag}岗${i}`,
          // 0–3 and 8–9 have cameras (linked; the area's own cameras are of other runs too, so none by area), the rest none.
          areaKind: 'dormitory',
          policeLinked: i % 3 !== 0,
          ...(i < 4 || i === 8 || i === 9 ? { linkedCameraIds: i === 9 ? made.map((c) => c.id) : [made[i % 4].id] } : {}),
        }),
      );
    }
    return { buttons: bs, cams: made, num };
  }

  const cfg = () => (intake as unknown as { cfg: AlarmsConfig }).cfg;
  /** Group commit settings at their edges: each run of the scenario must come out as one statement per event does. */
  const VARIANTS: Partial<AlarmsConfig['groupCommit']>[] = [
    { statementMaxEvents: 2 },
    { statementMaxEvents: 3 },
    { statementMaxEvents: 4 },
    { statementMaxEvents: 5 },
    { statementMaxEvents: 9 },
    { statementMaxEvents: 16 },
    { statementMaxEvents: 16, maxBatch: 3 },
    { statementMaxEvents: 16, maxConcurrent: 1 },
    { statementMaxEvents: 16, windowMs: 0 },
  ];
  type Devices = Awaited<ReturnType<typeof scenarioDevices>>;
  let devices: Promise<{ one: Devices; combined: Devices; variants: Devices[] }> | undefined;
  /** Every scenario's devices, made before any scenario runs: each run sees the same cameras in the area. */
  const scenarioDevicesOnce = () =>
    (devices ??= (async () => {
      const one = await scenarioDevices('SQ1', 1);
      const combined = await scenarioDevices('SQC', 2);
      const variants: Devices[] = [];
      for (const i of VARIANTS.keys()) variants.push(await scenarioDevices(`SV${i}`, 10 + i));
      return { one, combined, variants };
    })());
  let baseline: Promise<Awaited<ReturnType<typeof scenario>>> | undefined;
  /** The scenario with one statement per event (statementMaxEvents 1): what every other setting must give. */
  const baselineOnce = () =>
    (baseline ??= (async () => {
      const { one } = await scenarioDevicesOnce();
      const saved = cfg().groupCommit.statementMaxEvents;
      cfg().groupCommit.statementMaxEvents = 1;
      try {
        return await scenario('SQ1', one);
      } finally {
        cfg().groupCommit.statementMaxEvents = saved;
      }
    })());

  it('gives the same outcome in combined statements as one statement per event: every shape, odd notes, retries, folds, drills, gateways', async () => {
    const { combined } = await scenarioDevicesOnce();
    const alone = await baselineOnce();
    const spy = jest.spyOn(Client.prototype, 'query');
    let together: Awaited<ReturnType<typeof scenario>>;
    try {
      together = await scenario('SQC', combined);
      const texts = spy.mock.calls.map(([q]) => (typeof q === 'string' ? q : ((q as { text?: string } | undefined)?.text ?? '')));
      // The combined path was taken (parts joined by UNION ALL).
      expect(texts.filter((x) => x.includes('INSERT INTO incidents') && x.includes('UNION ALL')).length).toBeGreaterThan(0);
      // Few texts for connections to prepare (each stays prepared for the connection's life): sizes from the ladder only,
      // one text per shape and size whatever the values (19 statements, 7 texts here).
      const intakeTexts = new Set(texts.filter((x) => x.includes('INSERT INTO incidents')));
      const sizes = [...new Set([...intakeTexts].map((x) => (x.match(/UNION ALL/g) ?? []).length + 1))];
      expect(sizes).toContain(16);
      expect(sizes.filter((n) => ![1, 2, 16].includes(n))).toEqual([]);
      expect(intakeTexts.size).toBeLessThanOrEqual(8);
    } finally {
      spy.mockRestore();
    }
    expect(together.answers).toEqual(alone.answers);
    expect(together.presses).toEqual(alone.presses);
    expect(together.timeline).toEqual(alone.timeline);
    expect(together.events).toEqual(alone.events);
    expect(together.audit).toEqual(alone.audit);
    expect(together.outbox).toEqual(alone.outbox);
    // The odd notes are stored as sent.
    for (const n of ODD_NOTES.slice(0, 5)) expect(together.answers.some((a) => a.note === n)).toBe(true);
  });

  it.each(VARIANTS.map((v, i) => [JSON.stringify(v), i] as const))('comes out the same with group commit set to %s', async (_, i) => {
    const base = await baselineOnce();
    const { variants } = await scenarioDevicesOnce();
    const saved = { ...cfg().groupCommit };
    Object.assign(cfg().groupCommit, VARIANTS[i]);
    let got: Awaited<ReturnType<typeof scenario>>;
    try {
      got = await scenario(`SV${i}`, variants[i]);
    } finally {
      Object.assign(cfg().groupCommit, saved);
    }
    expect(got.answers).toEqual(base.answers);
    expect(got.presses).toEqual(base.presses);
    expect(got.timeline).toEqual(base.timeline);
    expect(got.events).toEqual(base.events);
    expect(got.audit).toEqual(base.audit);
    expect(got.outbox).toEqual(base.outbox);
  });

  it("keeps a button's presses in arrival order without group commit (windowMs 0)", async () => {
    const saved = cfg().groupCommit.windowMs;
    cfg().groupCommit.windowMs = 0;
    try {
      for (let round = 0; round < 6; round++) {
        const b = buttons[16 + (round % 4)].id;
        const settled = await Promise.all(Array.from({ length: 8 }, (_, k) => pressAs(b, `w0-${round}-${k}`)));
        const order = await t.db.query(`SELECT device_event_id FROM incident_presses WHERE device_id = $1 AND device_event_id LIKE $2 ORDER BY id`, [
          b,
          `w0-${round}-%`,
        ]);
        expect(order.rows.map((r: { device_event_id: string }) => r.device_event_id)).toEqual(Array.from({ length: 8 }, (_, k) => `w0-${round}-${k}`));
        expect(settled.map((r) => r.folded)).toEqual(Array.from({ length: 8 }, (_, k) => round >= 4 || k > 0));
      }
    } finally {
      cfg().groupCommit.windowMs = saved;
    }
  });

  it('fails only the bad event of a full combined statement: the 15 others commit once each, every caller answered', async () => {
    const more: TestButton[] = [];
    for (let i = 0; i < 16; i++) more.push(await createButton(t, admin, { schoolId: seed.schoolB.id, code: `ISO-${i}`, location: `隔离岗${i}` }));
    const bad = more.pop()!;
    // 15 good first events and the bad one (NUL: Postgres refuses it) in one statement of 16, plus a second event of a good button.
    const calls = [...more.map((b, i) => pressAs(b.id, `iso-${i}`)), pressAs(bad.id, 'iso-bad', 'bad\u0000note'), pressAs(more[0].id, 'iso-0b')];
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => s.status)).toEqual([...more.map(() => 'fulfilled'), 'rejected', 'fulfilled']);
    const got = settled
      .filter((s) => s.status === 'fulfilled')
      .map((s) => (s as PromiseFulfilledResult<{ created: boolean; folded: boolean; incident: { id: string } }>).value);
    expect(got.map((r) => [r.created, r.folded])).toEqual([...more.map(() => [true, false]), [false, true]]);
    const ids = got.slice(0, more.length).map((r) => r.incident.id);
    expect(new Set(ids).size).toBe(more.length);
    const counts = await t.db.query(
      `SELECT (SELECT count(*)::int FROM incidents WHERE alarm_device_id = ANY($1)) AS incidents,
              (SELECT count(*)::int FROM incident_presses WHERE device_id = ANY($1)) AS presses,
              (SELECT count(*)::int FROM console_events WHERE type = 'incident.raised' AND (payload->>'incidentId')::uuid = ANY($2)) AS raised,
              (SELECT count(*)::int FROM audit_log WHERE entity = 'incident' AND action = 'raise' AND entity_id::uuid = ANY($2)) AS audited,
              (SELECT count(*)::int FROM incident_timeline WHERE action = 'raised' AND incident_id = ANY($2)) AS timeline`,
      [[...more, bad].map((b) => b.id), ids],
    );
    expect(counts.rows[0]).toEqual({ incidents: 15, presses: 16, raised: 15, audited: 15, timeline: 15 });
  });
});

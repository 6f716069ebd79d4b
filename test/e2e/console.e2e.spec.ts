import { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { DataSource, EntityManager } from 'typeorm';
import { bootstrap } from '../../src/bootstrap';
import { ConsoleEventsService } from '../../src/modules/console-events/console-events.service';
import { ConsoleFeed } from '../../src/modules/console/console-feed.service';
import { auth, seedMinimal, startApp, TestApp, testConfig } from '../support/harness';
import { Envelope, TestConsole, tryConnect } from '../support/console-client';

/**
 * The console gateway as a console uses it: authentication, school scoping, replay after a
 * short absence, a snapshot after a long one, ordering under concurrent (and rolled-back)
 * appends, operator actions with acknowledgements, and fan-out across two api processes.
 */
/** A minimal patrol.finding payload: these tests only need some event to carry. */
const finding = (findingId: string, schoolId: string, check: string) => ({
  schoolId,
  source: 'audit' as const,
  runId: null,
  total: 1,
  findings: [{ findingId, check, message: '', subjectLabel: '', taskId: null }],
});

describe('console gateway (socket.io)', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let op1: string;
  let op2: string;
  let staffA: string;
  let auditor: string;
  const open: TestConsole[] = [];

  const consoleFor = (token: string, opts: { lastSeq?: number; reconnection?: boolean } = {}, url = t.baseUrl) => {
    const c = new TestConsole(url, token, opts);
    open.push(c);
    return c;
  };
  const raise = async (schoolId: string, location = '南门', token = op1) =>
    (await t.http().post('/api/v1/incidents').set(auth(token)).send({ schoolId, type: 'intrusion', location }).expect(201)).body as { id: string };
  const raised = (c: TestConsole) => c.events.filter((e) => e.type === 'incident.raised');
  const hasIncident = (c: TestConsole, id: string) => c.events.some((e) => e.payload.incidentId === id);

  beforeAll(async () => {
    t = await startApp({ console: { replayMaxEvents: 40, pollMs: 200, revocationCheckSeconds: 1, gapMaxWaitMs: 1000, throughMs: 200 } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op1 = (await t.userToken('operator')).token;
    op2 = (await t.userToken('operator')).token;
    staffA = (await t.userToken('school_security', seed.schoolA.id)).token;
    auditor = (await t.userToken('auditor')).token;
  });

  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  afterAll(async () => {
    await t?.close();
  });

  const sign = (claims: { sub: string; role: string; sch?: string | null }, expiresIn: number) =>
    jwt.sign({ usr: 'someone', role: claims.role, sch: claims.sch ?? null, ims: Date.now() }, t.config.auth.jwtSecret, {
      algorithm: 'HS256',
      subject: claims.sub,
      jwtid: randomUUID(),
      expiresIn,
      issuer: 'shouhu',
    });

  it('refuses missing, invalid and expired tokens in the handshake', async () => {
    expect(await tryConnect(t.baseUrl, {})).toBe('AUTH.UNAUTHENTICATED');
    expect(await tryConnect(t.baseUrl, { auth: { token: 'garbage' } })).toBe('AUTH.TOKEN_INVALID');
    expect(await tryConnect(t.baseUrl, { auth: { token: sign({ sub: randomUUID(), role: 'operator' }, -10) } })).toBe('AUTH.TOKEN_EXPIRED');
    expect(await tryConnect(t.baseUrl, { auth: { token: sign({ sub: randomUUID(), role: 'school_security', sch: null }, 60) } })).toBe('AUTH.FORBIDDEN');
    expect(await tryConnect(t.baseUrl, { auth: { token: op1 } })).toBe('connected');
  });

  it('disconnects a console whose token expires mid-session, unless it re-authenticated', async () => {
    const sub = randomUUID();
    // Listeners go on before anything is awaited: the short token may lapse while the console catches up.
    const c = consoleFor(sign({ sub, role: 'operator' }, 2));
    const expired = new Promise<{ code: string }>((r) => c.socket.on('auth_expired', r));
    const gone = new Promise<string>((r) => c.socket.on('disconnect', r));
    expect((await expired).code).toBe('AUTH.TOKEN_EXPIRED');
    expect(await gone).toBe('io server disconnect');

    const d = consoleFor(sign({ sub, role: 'operator' }, 3));
    await new Promise<void>((r) => (d.socket.connected ? r() : d.socket.once('connect', () => r())));
    const again = await d.emitAck<{ ok: boolean }>('reauth', { token: sign({ sub, role: 'operator' }, 600) });
    expect(again.ok).toBe(true);
    const other = await d.emitAck<{ ok: boolean; error: { code: string } }>('reauth', { token: sign({ sub: randomUUID(), role: 'operator' }, 600) });
    expect(other).toMatchObject({ ok: false, error: { code: 'AUTH.FORBIDDEN' } });
    await d.ready();
    // Still connected well after the first token's expiry: prove it with a live event.
    await new Promise((r) => setTimeout(r, 3500));
    const inc = await raise(seed.schoolA.id, '体育馆');
    await d.until(() => hasIncident(d, inc.id), 'event after reauth');
    expect(d.socket.connected).toBe(true);
  });

  it('ends a console session when its user logs out or is disabled, before the token expires', async () => {
    const out = await t.userToken('operator');
    const c = await consoleFor(out.token).ready();
    const ended = new Promise<{ code: string }>((r) => c.socket.on('auth_expired', r));
    await t.http().post('/api/v1/auth/logout').set(auth(out.token)).send({}).expect(204);
    expect((await ended).code).toBe('AUTH.TOKEN_REVOKED');

    // Disabling the user closes their console at once (issue 12 §12), not at the periodic check:
    // no event raised after the change reaches it.
    const gone = await t.userToken('operator');
    const d = await consoleFor(gone.token).ready();
    const closed = new Promise<{ code: string }>((r) => d.socket.on('auth_expired', r));
    await t.http().patch(`/api/v1/users/${gone.userId}`).set(auth(admin)).send({ disabled: true }).expect(200);
    expect((await closed).code).toBe('AUTH.TOKEN_REVOKED');
    await d.until(() => !d.socket.connected, 'disconnect after revocation');
    const inc = await raise(seed.schoolA.id, '东门');
    await new Promise((r) => setTimeout(r, 300));
    expect(hasIncident(d, inc.id)).toBe(false);
  });

  it('gives school staff their own school only, the district everything', async () => {
    const district = await consoleFor(op1).ready();
    const staff = await consoleFor(staffA).ready();
    expect(district.snapshots).toHaveLength(1); // no lastSeq: a fresh console starts from a snapshot
    const b = await raise(seed.schoolB.id);
    const a = await raise(seed.schoolA.id);
    await district.until(() => hasIncident(district, a.id) && hasIncident(district, b.id), 'both incidents');
    await staff.until(() => hasIncident(staff, a.id), 'own school incident');
    expect(staff.events.every((e) => e.schoolId === seed.schoolA.id)).toBe(true);
    expect(hasIncident(staff, b.id)).toBe(false);
    const e = raised(district).find((x) => x.payload.incidentId === a.id)!;
    expect(e).toMatchObject({
      v: 1,
      type: 'incident.raised',
      schoolId: seed.schoolA.id,
      payload: { schoolName: '甲小学', location: '南门', status: 'raised' },
    });
    expect(typeof e.seq).toBe('number');
    // Replays are scoped too.
    const replay = await consoleFor(staffA, { lastSeq: staff.snapshots[0].seq }).ready();
    expect(replay.events.map((x) => x.payload.incidentId)).toEqual([a.id]);
  });

  it("sends school-only events to that school's staff, never to the district, live or replayed", async () => {
    const district = await consoleFor(op1).ready();
    const staff = await consoleFor(staffA).ready();
    const events = t.app.get(ConsoleEventsService);
    const schoolOnly = (schoolId: string, id: string) => ({
      type: 'patrol.school_findings' as const,
      schoolId,
      payload: {
        schoolId,
        source: 'audit' as const,
        runId: null,
        total: 1,
        findings: [{ findingId: id, check: 'gate', message: '', subjectLabel: '', taskId: null }],
      },
    });
    const mark = district.lastSeq;
    await t.app
      .get(DataSource)
      .transaction((m) =>
        events.append(m, [
          schoolOnly(seed.schoolA.id, 'so-a'),
          schoolOnly(seed.schoolB.id, 'so-b'),
          { type: 'patrol.finding', schoolId: seed.schoolA.id, payload: finding('pf-a', seed.schoolA.id, 'gate') },
        ]),
      );
    await staff.until(() => staff.events.some((e) => e.type === 'patrol.finding'), 'the shared event on the school console');
    await district.until(() => district.events.some((e) => e.type === 'patrol.finding'), 'the shared event on the district console');
    expect(staff.events.filter((e) => e.type === 'patrol.school_findings').map((e) => e.schoolId)).toEqual([seed.schoolA.id]);
    expect(district.events.some((e) => e.type === 'patrol.school_findings')).toBe(false);
    // Replays follow the same rule.
    district.close();
    const back = await consoleFor(op1, { lastSeq: mark }).ready();
    expect(back.events.some((e) => e.type === 'patrol.finding')).toBe(true);
    expect(back.events.some((e) => e.type === 'patrol.school_findings')).toBe(false);
  });

  it('replays what a console missed during a short absence, in order, then continues live', async () => {
    const c = await consoleFor(op1).ready();
    await raise(seed.schoolA.id, '北门');
    await c.until(() => raised(c).length === 1, 'first');
    const lastSeq = c.lastSeq;
    c.close();
    const missed = [];
    for (let i = 0; i < 5; i++) missed.push((await raise(seed.schoolA.id, `教学楼${i}`)).id);
    const back = await consoleFor(op1, { lastSeq }).ready();
    // The replay goes up to what this process's feed has read (its LISTEN cursor): the last press, answered
    // a moment ago, may not be read yet and then follows live, right after the `live` marker (a loaded CI run).
    await back.until(() => raised(back).length >= missed.length, 'all missed incidents');
    expect(back.snapshots).toHaveLength(0);
    expect(raised(back).map((e) => e.payload.incidentId)).toEqual(missed);
    expect(back.events.every((e, i) => i === 0 || e.seq > back.events[i - 1].seq)).toBe(true);
    expect(back.events[0].seq).toBeGreaterThan(lastSeq);
    const live = await raise(seed.schoolA.id, '食堂');
    await back.until(() => hasIncident(back, live.id), 'live after replay');
  });

  it('sends a snapshot after a long absence (too long ago, or too many events)', async () => {
    const c = await consoleFor(op1).ready();
    const inc = await raise(seed.schoolB.id, '西门');
    await c.until(() => hasIncident(c, inc.id), 'incident');
    const lastSeq = c.lastSeq;
    c.close();
    // The clock: the console's last event now lies beyond the replay window.
    await t.db.query(`UPDATE console_events SET at = at - interval '2 hours' WHERE seq <= $1`, [lastSeq]);
    const later = await raise(seed.schoolB.id, '东门');
    const back = await consoleFor(op1, { lastSeq }).ready();
    expect(back.snapshots).toHaveLength(1);
    const ids = back.snapshots[0].incidents.map((i) => i.id);
    expect(ids).toEqual(expect.arrayContaining([inc.id, later.id]));
    expect(back.snapshots[0].incidents.every((i) => ['raised', 'acknowledged', 'dispatched', 'on_scene'].includes(i.status))).toBe(true);
    expect(back.snapshots[0].devices).toMatchObject({ totals: expect.any(Object) });
    expect(back.lives[0]).toBeGreaterThanOrEqual(back.snapshots[0].seq);

    // Too many: more than console.replayMaxEvents (40 here) missed events.
    const mark = back.lastSeq;
    back.close();
    const events = t.app.get(ConsoleEventsService);
    await t.app.get(DataSource).transaction((m) =>
      events.append(
        m,
        Array.from({ length: 45 }, (_, i) => ({
          type: 'patrol.finding' as const,
          schoolId: seed.schoolA.id,
          payload: finding(`f${i}`, seed.schoolA.id, 'gate'),
        })),
      ),
    );
    const flood = await consoleFor(op1, { lastSeq: mark }).ready();
    expect(flood.snapshots).toHaveLength(1);
    expect(flood.events.filter((e) => e.seq <= flood.snapshots[0].seq)).toHaveLength(0);
  });

  it('delivers every committed event once and in seq order under concurrent appends, rolled-back ones skipped', async () => {
    const c = await consoleFor(op1).ready();
    const events = t.app.get(ConsoleEventsService);
    const ds = t.app.get(DataSource);
    const committed: number[] = [];
    const drawn: number[] = [];
    // 30 transactions, each appending 3 events and lingering a little before it commits, so
    // commits land out of seq order; every fifth rolls back (its seqs become holes).
    await Promise.all(
      Array.from({ length: 30 }, async (_, k) => {
        try {
          await ds.transaction(async (m) => {
            const seqs = await events.append(
              m,
              [0, 1, 2].map((j) => ({ type: 'patrol.finding' as const, schoolId: null, payload: finding(`c${k}-${j}`, seed.schoolA.id, 'order') })),
            );
            drawn.push(...seqs);
            await new Promise((r) => setTimeout(r, (k * 7919) % 60));
            if (k % 5 === 0) throw new Error('rollback');
            committed.push(...seqs);
          });
        } catch (e) {
          if ((e as Error).message !== 'rollback') throw e;
        }
      }),
    );
    committed.sort((a, b) => a - b);
    await c.until(() => c.lastSeq >= committed[committed.length - 1], 'all committed events');
    // Only this test's seqs: under load the feed may deliver the previous test's 45 events after this console's snapshot.
    const got = c.events.filter((e) => e.type === 'patrol.finding' && e.seq >= Math.min(...drawn)).map((e) => e.seq);
    expect(got).toEqual(committed);
    expect(c.arrivals.length).toBe(c.events.length); // no duplicates on a steady connection
    expect(c.reorders).toEqual([]);
  });

  it('does not hold every console behind one slow transaction: later events go on, the held one follows flagged late; one rolled back is forgotten', async () => {
    const c = await consoleFor(op1).ready();
    const events = t.app.get(ConsoleEventsService);
    const ds = t.app.get(DataSource);
    const feed = t.app.get(ConsoleFeed);
    const append = (m: EntityManager, id: string) =>
      events.append(m, { type: 'patrol.finding', schoolId: null, payload: finding(id, seed.schoolA.id, 'held') });
    /** A transaction that draws a seq and stays open until told to commit (true) or roll back. */
    const holdOne = async (id: string) => {
      let decide!: (commit: boolean) => void;
      const decided = new Promise<boolean>((r) => (decide = r));
      let drawn!: (seq: number) => void;
      const seq = new Promise<number>((r) => (drawn = r));
      const done = ds
        .transaction(async (m) => {
          drawn((await append(m, id))[0]);
          if (!(await decided)) throw new Error('rollback');
        })
        .catch((e: Error) => {
          if (e.message !== 'rollback') throw e;
        });
      return { seq: await seq, decide, done };
    };

    const away = await consoleFor(op1).ready();
    const held = await holdOne('held-1');
    const [after] = await ds.transaction((m) => append(m, 'after-1'));
    // The event after the held one reaches the console while the holder is still open (past console.gapMaxWaitMs)…
    await c.until(() => c.events.some((e) => e.seq === after), 'the event after the held one');
    await away.until(() => away.events.some((e) => e.seq === after), 'the event after the held one (away)');
    away.socket.disconnect(); // gone before the held one is delivered: its lastSeq is already past it
    expect(c.events.some((e) => e.seq === held.seq)).toBe(false);
    // …and the held one follows once it commits, flagged late, once.
    held.decide(true);
    await held.done;
    await c.until(() => c.events.some((e) => e.seq === held.seq), 'the held event');
    // The console that was away names the seq it never got (auth.gaps) and gets it on its return, flagged late.
    expect(away.gaps()).toContain(held.seq);
    away.socket.connect();
    await away.until(() => away.events.some((e) => e.seq === held.seq), 'the held event, after a reconnect');
    expect(away.events.find((e) => e.seq === held.seq)?.late).toBe(true);
    expect(away.lateArrivals).toEqual([held.seq]);
    expect(c.lateArrivals).toEqual([held.seq]);
    expect(c.events.find((e) => e.seq === held.seq)?.late).toBe(true);
    expect(c.reorders).toEqual([]);
    // A console connecting afterwards replays both, in seq order.
    const later = await consoleFor(op1, { lastSeq: held.seq - 1 }).ready();
    expect(later.events.slice(0, 2).map((e) => e.seq)).toEqual([held.seq, after]);

    // Held past the wait, then rolled back: never sent, and no longer watched.
    const gone = await holdOne('held-2');
    const [after2] = await ds.transaction((m) => append(m, 'after-2'));
    await c.until(() => c.events.some((e) => e.seq === after2), 'the event after the second held one');
    expect(feed.watchedLate).toBeGreaterThan(0);
    gone.decide(false);
    await gone.done;
    const [last] = await ds.transaction((m) => append(m, 'after-3'));
    await c.until(() => c.events.some((e) => e.seq === last) && feed.watchedLate === 0, 'the rolled-back seq forgotten');
    expect(c.events.some((e) => e.seq === gone.seq)).toBe(false);
  });

  it('reads each committed event once while a gap holds delivery (a burst: every commit wakes the feed)', async () => {
    const c = await consoleFor(op1).ready();
    const events = t.app.get(ConsoleEventsService);
    const ds = t.app.get(DataSource);
    const rowsRead = async () => Number(/^shouhu_console_feed_rows_read_total (\d+)/m.exec((await t.http().get('/metrics').expect(200)).text)?.[1] ?? NaN);
    const append = (m: EntityManager, id: string) =>
      events.append(m, { type: 'patrol.finding', schoolId: null, payload: finding(id, seed.schoolA.id, 'burst') });
    const before = await rowsRead();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let drawn!: (seq: number) => void;
    const heldSeq = new Promise<number>((r) => (drawn = r));
    const holder = ds.transaction(async (m) => {
      drawn((await append(m, 'burst-held'))[0]);
      await released;
    });
    const held = await heldSeq;
    // 30 commits after the held seq, each its own NOTIFY (and round) while the gap is open.
    const after: number[] = [];
    for (let i = 0; i < 30; i++) after.push(...(await ds.transaction((m) => append(m, `burst-${i}`))));
    release();
    await holder;
    await c.until(() => c.lastSeq >= after[after.length - 1] && c.events.some((e) => e.seq === held), 'the held event and the 30 after it');
    const got = c.events.filter((e) => e.seq >= held).map((e) => e.seq);
    expect([...got].sort((a, b) => a - b)).toEqual([held, ...after]);
    // Each of the 31 rows read once (a held seq passed over is read once more as it arrives late); before, every round read all rows past the gap again.
    expect((await rowsRead()) - before).toBeLessThanOrEqual(31 + 2);
  });

  it("a school's console does not name the other schools' seqs as gaps: its own held seq, delivered while it was away, reaches it", async () => {
    const c = await consoleFor(staffA).ready();
    const events = t.app.get(ConsoleEventsService);
    const ds = t.app.get(DataSource);
    const ofSchool = (schoolId: string, id: string) => ({ type: 'patrol.finding' as const, schoolId, payload: finding(id, schoolId, 'gate') });
    // School A's event held open (a slow transaction), then 1,200 of school B's (more than the 1,000 gaps a console may name).
    let release!: (commit: boolean) => void;
    const decided = new Promise<boolean>((r) => (release = r));
    let drawn!: (seq: number) => void;
    const heldSeq = new Promise<number>((r) => (drawn = r));
    const holder = ds.transaction(async (m) => {
      drawn((await events.append(m, ofSchool(seed.schoolA.id, 'a-held')))[0]);
      if (!(await decided)) throw new Error('rollback');
    });
    const held = await heldSeq;
    await ds.transaction((m) =>
      events.append(
        m,
        Array.from({ length: 1200 }, (_, i) => ofSchool(seed.schoolB.id, `b-${i}`)),
      ),
    );
    const [mine] = await ds.transaction((m) => events.append(m, ofSchool(seed.schoolA.id, 'a-after')));
    // Its own later event arrives (the held one passed over), and the server says what it watches.
    await c.until(() => c.events.some((e) => e.seq === mine), 'its event after the held one');
    await c.until(() => c.throughs.some((x) => x.seq >= mine && x.watched.includes(held)), 'a through naming the held seq as watched');
    expect(c.events.some((e) => e.seq === held)).toBe(false);
    c.socket.disconnect();
    expect(c.gaps()).toEqual([held]); // not the 1,000 of school B's seqs just below its lastSeq
    release(true);
    await holder;
    c.socket.connect();
    await c.until(() => c.events.some((e) => e.seq === held), 'the held event, after a reconnect');
    expect(c.events.find((e) => e.seq === held)?.late).toBe(true);
    expect(c.events.some((e) => e.schoolId === seed.schoolB.id)).toBe(false);
  });

  it('runs operator actions over the socket with the same rules as REST', async () => {
    const c1 = await consoleFor(op1).ready();
    const c2 = await consoleFor(op2).ready();
    const aud = await consoleFor(auditor).ready();
    const staff = await consoleFor(staffA).ready();
    const inc = await raise(seed.schoolA.id, '南门岗亭');

    const first = await c1.emitAck<{ ok: boolean; incident: { status: string; acknowledgedBy: { name: string } } }>('incident:acknowledge', {
      id: inc.id,
      note: '收到',
    });
    expect(first.ok).toBe(true);
    expect(first.incident.status).toBe('acknowledged');
    const second = await c2.emitAck<{ ok: boolean; error: { code: string; status: number; details: { acknowledgedBy: { name: string } } } }>(
      'incident:acknowledge',
      { id: inc.id },
    );
    expect(second).toMatchObject({ ok: false, error: { status: 409, code: 'ALARM.ALREADY_ACKNOWLEDGED' } });
    expect(second.error.details.acknowledgedBy.name).toBe(first.incident.acknowledgedBy.name);
    // Read-only and school roles are refused as on REST.
    expect(await aud.emitAck('incident:dispatch', { id: inc.id })).toMatchObject({ ok: false, error: { status: 403 } });
    expect(await staff.emitAck('incident:dispatch', { id: inc.id })).toMatchObject({ ok: false, error: { status: 403 } });
    expect(await c1.emitAck('incident:acknowledge', { id: randomUUID() })).toMatchObject({ ok: false, error: { status: 404, code: 'INCIDENT.NOT_FOUND' } });

    expect(await c1.emitAck('incident:dispatch', { id: inc.id })).toMatchObject({ ok: true, incident: { status: 'dispatched' } });
    expect(await c1.emitAck('incident:note', { id: inc.id, note: '保安已到岗亭' })).toMatchObject({ ok: true });
    expect(await c1.emitAck('incident:on_scene', { id: inc.id })).toMatchObject({ ok: true, incident: { status: 'on_scene' } });
    expect(await c1.emitAck('incident:resolve', { id: inc.id, outcome: 'false_alarm', note: '误报' })).toMatchObject({
      ok: true,
      incident: { status: 'resolved', outcome: 'false_alarm' },
    });
    // The REST view agrees, timeline included.
    const view = (await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(op1)).expect(200)).body;
    expect(view.timeline.map((x: { action: string }) => x.action)).toEqual(['raised', 'acknowledge', 'dispatch', 'note', 'on_scene', 'resolve']);
    // Every console saw the updates as events.
    await c2.until(
      () => c2.events.some((e) => e.type === 'incident.updated' && e.payload.incidentId === inc.id && e.payload.change === 'resolve'),
      'resolve event',
    );
  });

  it('answers malformed payloads with a validation error and keeps serving', async () => {
    const c = await consoleFor(op1).ready();
    const inc = await raise(seed.schoolA.id, '后门');
    const bad = async (name: string, ...args: unknown[]) =>
      c.emitAck<{ ok: boolean; error: { code: string; status: number; details?: { fields: { field: string }[] } } }>(name, ...args);
    for (const [name, payload] of [
      ['incident:acknowledge', 'garbage'],
      ['incident:acknowledge', null],
      ['incident:acknowledge', [1, 2]],
      ['incident:acknowledge', { id: 'not-a-uuid' }],
      ['incident:acknowledge', { id: inc.id, extra: true }],
      ['incident:acknowledge', { id: inc.id, note: 42 }],
      ['incident:resolve', { id: inc.id, outcome: 'bogus' }],
      ['incident:note', { id: inc.id }],
      ['incident:cancel', { id: inc.id, reason: '' }],
    ] as [string, unknown][]) {
      const a = await bad(name, payload);
      expect(a).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', status: 400 } });
    }
    expect((await bad('incident:resolve', { id: inc.id, outcome: 'bogus' })).error.details!.fields[0].field).toBe('outcome');
    expect(await bad('incident:acknowledge')).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } }); // only a callback
    c.socket.emit('incident:acknowledge', { id: inc.id }); // no callback: acted on, nobody to answer
    c.socket.emit('resume', 'nonsense'); // treated as "no lastSeq": a snapshot, then live again
    c.socket.emit('no-such-event', { x: 1 });
    await c.ready(2);
    await c.until(() => c.events.some((e) => e.payload.incidentId === inc.id && e.payload.change === 'acknowledge'), 'acknowledged without a callback');
    expect(await c.emitAck('incident:dispatch', { id: inc.id })).toMatchObject({ ok: true });
    expect(c.socket.connected).toBe(true);
  });

  it('answers what only Postgres refuses over the socket exactly as over REST', async () => {
    const c = await consoleFor(op1).ready();
    const inc = await raise(seed.schoolA.id, '西门');
    const note = (text: string) => t.http().post(`/api/v1/incidents/${inc.id}/notes`).set(auth(op1)).send({ note: text });
    const viaSocket = (text: string) => c.emitAck<{ ok: boolean; error: unknown }>('incident:note', { id: inc.id, note: text });
    // A rule no DTO knows, only a constraint: this note may be written once per incident.
    await t.db.query(`CREATE UNIQUE INDEX test_note_once ON incident_timeline (incident_id, note) WHERE note = '只记一次'`);
    try {
      await note('只记一次').expect(200);
      const rest = (await note('只记一次').expect(409)).body.error;
      expect(rest).toMatchObject({ code: 'CONFLICT.DUPLICATE', details: { constraint: 'test_note_once', fields: ['incidentId', 'note'] } });
      expect(await viaSocket('只记一次')).toEqual({ ok: false, error: { status: 409, code: rest.code, message: rest.message, details: rest.details } });
    } finally {
      await t.db.query(`DROP INDEX test_note_once`);
    }
    // A data exception (a NUL byte Postgres cannot store in text): a 400 both ways, in our words.
    const restNul = (await note('门卫\u0000已到').expect(400)).body.error;
    expect(restNul).toMatchObject({ code: 'VALIDATION_FAILED', details: { fields: expect.any(Array) } });
    expect(JSON.stringify(restNul)).not.toMatch(/invalid byte sequence|0x00/);
    expect(await viaSocket('门卫\u0000已到')).toEqual({
      ok: false,
      error: { status: 400, code: restNul.code, message: restNul.message, details: restNul.details },
    });
    // Nothing of either attempt was written, and the incident still takes notes.
    expect(await viaSocket('门卫已到')).toMatchObject({ ok: true });
    const view = (await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(op1)).expect(200)).body;
    expect(view.timeline.filter((x: { action: string }) => x.action === 'note').map((x: { note: string }) => x.note)).toEqual(['只记一次', '门卫已到']);
  });

  it('delivers an incident raised through api process A to a console on api process B, once', async () => {
    const configB = testConfig(t.config.database.url, { role: 'api', redis: { keyPrefix: t.config.redis.keyPrefix }, console: { pollMs: 200 } });
    const b = (await bootstrap(configB, { migrate: false })) as INestApplication;
    try {
      const urlB = `http://127.0.0.1:${(b.getHttpServer().address() as AddressInfo).port}`;
      const onB = await consoleFor(op1, {}, urlB).ready();
      const onA = await consoleFor(op2).ready();
      const inc = await raise(seed.schoolB.id, '跨节点');
      await onB.until(() => hasIncident(onB, inc.id), 'incident on node B');
      // A later event as a marker: by then any duplicate of the first would have arrived.
      const marker = await raise(seed.schoolB.id, '标记');
      await onB.until(() => hasIncident(onB, marker.id), 'marker on node B');
      await onA.until(() => hasIncident(onA, marker.id), 'marker on node A');
      const count = (c: TestConsole, id: string) => c.arrivals.filter((e: Envelope) => e.type === 'incident.raised' && e.payload.incidentId === id).length;
      expect(count(onB, inc.id)).toBe(1);
      expect(count(onA, inc.id)).toBe(1);
      // And an action taken on B is seen on A.
      expect(await onB.emitAck('incident:acknowledge', { id: inc.id })).toMatchObject({ ok: true });
      await onA.until(() => onA.events.some((e) => e.payload.incidentId === inc.id && e.payload.change === 'acknowledge'), 'ack from B on A');
    } finally {
      for (const c of open.splice(0)) c.close();
      await b.close();
    }
  });

  it('closes consoles on api process B at once when their user logs out or is disabled through api process A: the revocation is pushed, not waited for', async () => {
    // B reads revocations only once a minute: only the push (Postgres NOTIFY at commit) can tell it in time.
    const configB = testConfig(t.config.database.url, { role: 'api', redis: { keyPrefix: t.config.redis.keyPrefix }, auth: { revocationSyncMs: 60_000 } });
    const b = (await bootstrap(configB, { migrate: false })) as INestApplication;
    try {
      const urlB = `http://127.0.0.1:${(b.getHttpServer().address() as AddressInfo).port}`;
      const within = <T>(p: Promise<T>, what: string, ms = 5000) =>
        Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);
      const out = await t.userToken('operator');
      const c = await consoleFor(out.token, {}, urlB).ready();
      const ended = new Promise<{ code: string }>((r) => c.socket.on('auth_expired', r));
      await t.http().post('/api/v1/auth/logout').set(auth(out.token)).send({}).expect(204);
      expect((await within(ended, 'the console on B closed after a logout on A')).code).toBe('AUTH.TOKEN_REVOKED');
      await request(b.getHttpServer()).get('/api/v1/auth/me').set(auth(out.token)).expect(401);

      const gone = await t.userToken('operator');
      const d = await consoleFor(gone.token, {}, urlB).ready();
      const closed = new Promise<{ code: string }>((r) => d.socket.on('auth_expired', r));
      await t.http().patch(`/api/v1/users/${gone.userId}`).set(auth(admin)).send({ disabled: true }).expect(200);
      expect((await within(closed, 'the console on B closed after a disable on A')).code).toBe('AUTH.TOKEN_REVOKED');
    } finally {
      for (const c of open.splice(0)) c.close();
      await b.close();
    }
  });

  it('serves the web console (its bundle includes the socket.io client) at /console', async () => {
    await t.http().get('/console').expect(301).expect('Location', '/console/');
    const page = await t.http().get('/console/').expect(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const entry = /<script type="module"[^>]*src="([^"]+)"/.exec(page.text)![1];
    await t
      .http()
      .get(entry)
      .expect(200)
      .expect('Content-Type', /javascript/);
  });

  it('prunes events older than the replay window', async () => {
    const events = t.app.get(ConsoleEventsService);
    const [{ n: before }] = await t.db.query(`SELECT count(*)::int AS n FROM console_events WHERE at < now() - interval '1 hour'`).then((r) => r.rows);
    expect(before).toBeGreaterThan(0);
    const removed = await events.prune();
    expect(removed).toBe(before);
    const [{ n: after }] = await t.db.query(`SELECT count(*)::int AS n FROM console_events WHERE at < now() - interval '1 hour'`).then((r) => r.rows);
    expect(after).toBe(0);
  });
});

import { DataSource } from 'typeorm';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { ConsolePage, launchChromium, openConsole } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';
import type { Browser } from 'playwright-core';

/**
 * The operators' web console (the built SPA, dist/console-web) in real headless Chromium: log in,
 * an alarm raised through the API shows up with its alert (a P1 takes over the screen), acknowledge
 * it there and from the detail, lose the network while more alarms come in and get them replayed
 * on reconnect (oldest unacknowledged first), switch language, and see patrol findings live. No
 * page error or CSP violation anywhere. Leaves test/artifacts/console.png.
 */
type Doc = { document: { title: string } };

describe('web console in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let cp: ConsolePage;
  let raiser: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;

  const raise = async (location: string, type = 'intrusion', priority?: string) =>
    (
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(raiser))
        .send({ schoolId: seed.schoolA.id, type, location, areaKind: 'main_gate', priority })
        .expect(201)
    ).body as { id: string };

  beforeAll(async () => {
    t = await startApp();
    const admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    raiser = (await t.userToken('operator')).token;
    await t.userToken('operator', undefined, 'duty_op');
    await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({
        schoolId: seed.schoolA.id,
        deviceId: '50011300001320000001',
        channelId: '50011300001310000001',
        name: '南大门',
        location: '南门外',
        areaKind: 'main_gate',
        streamUrl: 'rtsp://nvr-a/01',
      })
      .expect(201);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('logs in, alerts on a new alarm, acknowledges it, and replays what it missed offline', async () => {
    cp = await openConsole(browser, t.baseUrl, { path: '/console' });
    const { page, context } = cp;
    await page.waitForSelector('#login h1');
    expect(await page.textContent('#login h1')).toContain('视频监控巡查管控中心'); // zh-CN by default
    await cp.login('duty_op', PASSWORD);
    await page.waitForSelector('body[data-conn="online"]');

    // A P1 alarm through the API shows up live (how fast is the alarms bench's press_to_console, not a timed test:
    // a CI run at load 30 found it at 1.0 s), with its alert, and takes over the screen.
    const first = await raise('南门岗亭');
    await page.waitForSelector(`[data-incident-id="${first.id}"][data-status="raised"]`, { state: 'attached' });
    await page.waitForSelector(`#takeover[data-incident-id="${first.id}"]`);
    await page.waitForSelector('body[data-alert="on"]');
    expect((await cp.state()).unacked).toBe(1);
    // The tab title flashes: on, then off again.
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.title.startsWith('【新报警】'));
    await page.waitForFunction(() => !(globalThis as unknown as Doc).document.title.startsWith('【新报警】'));
    expect(await page.textContent('#alert-banner')).toContain('未确认报警：1');
    expect(await page.textContent('#takeover')).toContain('甲小学');
    expect(await page.textContent('#takeover .cameras')).toContain('南大门');

    // Acknowledge it there: the takeover ends, and the detail (camera, timeline) is on screen.
    await page.click('#takeover-ack');
    await page.waitForSelector(`[data-incident-id="${first.id}"][data-status="acknowledged"]`);
    await page.waitForSelector('#takeover', { state: 'detached' });
    // The detail plays the spot's cameras (a player per camera, named); the stream address itself is never shown.
    await page.waitForSelector('#detail #incident-cameras .camera-player');
    expect(await page.textContent('#detail #incident-cameras')).toContain('南大门');
    expect(await page.textContent('#detail')).not.toContain('rtsp://');
    expect(await page.textContent('#detail h2')).toContain('甲小学');
    await page.waitForSelector('#detail .timeline li[data-action="acknowledge"]');
    await page.waitForSelector('body[data-alert="off"]');
    await page.waitForFunction(() => !(globalThis as unknown as Doc).document.title.startsWith('【新报警】'));
    expect((await cp.state()).unacked).toBe(0);

    // A P2 alarm: no takeover; acknowledged from its detail.
    const second = await raise('西门', 'other');
    await page.waitForSelector(`[data-incident-id="${second.id}"][data-status="raised"]`);
    expect((await cp.state()).takeover).toBeNull();
    await page.click(`#incidents [data-incident-id="${second.id}"]`);
    await page.waitForSelector('#detail .timeline li');
    await page.click('#act-acknowledge');
    await page.waitForSelector(`[data-incident-id="${second.id}"][data-status="acknowledged"]`);
    await page.waitForSelector('body[data-alert="off"]');

    // The network drops while more alarms come in.
    const before = await cp.state();
    await context.setOffline(true);
    await page.evaluate(() => (globalThis as unknown as { __consoleTest: { dropConnection: () => void } }).__consoleTest.dropConnection());
    await page.waitForSelector('body[data-conn="offline"]');
    const missed = [await raise('操场', 'medical', 'P2'), await raise('食堂', 'fire', 'P2'), await raise('北门', 'intrusion', 'P2')];
    expect(await page.getAttribute('body', 'data-conn')).toBe('offline');
    expect(await page.$(`[data-incident-id="${missed[0].id}"]`)).toBeNull();

    // Back online: the console resumes by itself and gets exactly what it missed, by replay.
    await context.setOffline(false);
    await page.waitForSelector('body[data-conn="online"]', { timeout: 20000 });
    for (const m of missed) await page.waitForSelector(`[data-incident-id="${m.id}"][data-status="raised"]`);
    const after = await cp.state();
    const newSeqs = after.seqs.slice(before.seqs.length);
    expect(newSeqs.every((s) => typeof s === 'number')).toBe(true); // no snapshot: a replay
    // The three raises, and whatever else happened meanwhile (evidence snapshots of their cameras, say), each once, in order.
    expect(newSeqs.length).toBeGreaterThanOrEqual(3);
    expect(newSeqs as number[]).toEqual([...new Set(newSeqs as number[])].sort((a, b) => a - b));
    expect((newSeqs as number[])[0]).toBeGreaterThan(before.lastSeq);
    await page.waitForSelector('body[data-alert="on"]');
    expect(after.unacked).toBe(3);
    // Unacknowledged first, then by priority, then OLDEST first: the one waiting longest is on top.
    const order = await page.$$eval('#incidents li', (els) => els.map((e) => (e as unknown as { dataset: { incidentId: string } }).dataset.incidentId));
    expect(order.slice(0, 3)).toEqual(missed.map((m) => m.id));
    expect(order.slice(3).sort()).toEqual([first.id, second.id].sort());

    // English switch.
    await page.click('.bar .lang-switch');
    expect(await page.textContent('#conn')).toContain('Online');
    await page.click('.bar .lang-switch');
    expect(await page.textContent('#conn')).toContain('在线');

    // Patrol findings show up live in their panel — the open ones, newest first, and how many are open: a post check
    // at one school, then an audit's findings at two schools. A message is shown as text, never as markup.
    await page.waitForSelector('#patrol-empty');
    expect(await page.textContent('#patrol-count')).toBe('0');
    const findings = t.app.get(FindingsService);
    const ds = t.app.get(DataSource);
    const postMessage = '护学岗 南门（P-01）早高峰时段在岗 0 人，应到 2 人<img src=x onerror=alert(1)>';
    const found = new Date();
    await ds.transaction((m) =>
      findings.record(
        m,
        [
          {
            source: 'post',
            check: 'post_unstaffed',
            schoolId: seed.schoolA.id,
            subjectKind: 'post',
            subjectLabel: 'P-01 南门',
            message: postMessage,
            at: found,
          },
        ],
        found,
      ),
    );
    const post = `#patrol-list li[data-school-id="${seed.schoolA.id}"]`;
    await page.waitForSelector(post);
    expect(await page.textContent(`${post} .what`)).toBe(postMessage);
    expect(await page.$('#patrol-list img')).toBeNull();
    expect(await page.textContent(`${post} .src`)).toBe('护学岗未到岗');
    expect(await page.textContent(`${post} .school`)).toBe('甲小学');
    expect(await page.textContent('#patrol-count')).toBe('1');
    const later = new Date(found.getTime() + 1000);
    const audit = (schoolId: string, label: string) => ({
      source: 'audit' as const,
      check: 'alarm_button',
      schoolId,
      subjectKind: 'school' as const,
      subjectId: schoolId,
      subjectLabel: label,
      message: `${label} 未配备一键报警`,
      at: later,
    });
    await ds.transaction((m) => findings.record(m, [audit(seed.schoolA.id, '甲小学'), audit(seed.schoolB.id, '乙小学')], later));
    await page.waitForSelector('#patrol-count:text("3")');
    expect(await page.$$('#patrol-list li[data-task-id]')).toHaveLength(3);
    expect(await page.textContent('#patrol-list li:last-child .src')).toBe('护学岗未到岗'); // the oldest last
    expect(await page.isVisible('#patrol-empty')).toBe(false);

    await page.click(`[data-incident-id="${missed[1].id}"]`);
    await page.waitForSelector('#detail .timeline li');
    await cp.screenshot('console');
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
    await cp.close();
  });
});

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { DataSource } from 'typeorm';
import { ConsoleEventsService } from '../../src/modules/console-events/console-events.service';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * The operators' web console in real headless Chromium (Debian's /usr/bin/chromium): log in,
 * an alarm raised through the API shows up with its alert, acknowledge it, lose the network
 * while more alarms come in, and get them replayed on reconnect; patrol findings show up live in
 * their panel (a school's post check, a district audit summary). Leaves a screenshot in
 * test/artifacts/console.png.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The bits of the page's globals the test reads (the test compiles without the DOM lib). */
type Doc = { document: { title: string } };
const ARTIFACTS = join(__dirname, '..', 'artifacts');

describe('web console in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let raiser: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const pageErrors: string[] = [];

  const raise = async (location: string, type = 'intrusion') =>
    (await t.http().post('/api/v1/incidents').set(auth(raiser)).send({ schoolId: seed.schoolA.id, type, location, areaKind: 'main_gate' }).expect(201)).body as { id: string };
  const state = () => page.evaluate(() => (globalThis as unknown as { __consoleState: { conn: string; lastSeq: number; seqs: (number | { snapshot: number })[]; unacked: number; incidents: { id: string; status: string }[] } }).__consoleState);

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
      .send({ schoolId: seed.schoolA.id, deviceId: '50011300001320000001', channelId: '50011300001310000001', name: '南大门', location: '南门外', areaKind: 'main_gate', streamUrl: 'rtsp://nvr-a/01' })
      .expect(201);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // playwright gives every launch a fresh temporary profile (user-data dir) of its own
    });
    context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('logs in, alerts on a new alarm, acknowledges it, and replays what it missed offline', async () => {
    await page.goto(`${t.baseUrl}/console`);
    await page.fill('#username', 'duty_op');
    await page.fill('#password', PASSWORD);
    await page.click('#login-btn');
    await page.waitForSelector('body[data-conn="online"]');
    expect(await page.textContent('#login h1')).toContain('视频监控巡查管控中心'); // zh-CN by default

    // An alarm through the API shows up within a second, with its alert.
    const first = await raise('南门岗亭');
    await page.waitForSelector(`[data-incident-id="${first.id}"][data-status="raised"]`, { timeout: 1000 });
    await page.waitForSelector('body[data-alert="on"]');
    expect((await state()).unacked).toBe(1);
    // The tab title flashes: on, then off again.
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.title.startsWith('【新报警】'));
    await page.waitForFunction(() => !(globalThis as unknown as Doc).document.title.startsWith('【新报警】'));
    expect(await page.textContent('#alert-banner')).toContain('未确认报警：1');

    // Detail with the linked camera, then acknowledge.
    await page.click(`[data-incident-id="${first.id}"]`);
    await page.waitForSelector('#detail .cameras li');
    expect(await page.textContent('#detail .cameras')).toContain('rtsp://nvr-a/01');
    expect(await page.textContent('#detail h2')).toContain('甲小学');
    await page.waitForSelector('#detail .timeline li');
    await page.click('#act-acknowledge');
    await page.waitForSelector(`[data-incident-id="${first.id}"][data-status="acknowledged"]`);
    await page.waitForSelector('body[data-alert="off"]');
    await page.waitForFunction(() => !(globalThis as unknown as Doc).document.title.startsWith('【新报警】'));
    expect((await state()).unacked).toBe(0);

    // The network drops while more alarms come in.
    const before = await state();
    await context.setOffline(true);
    await page.evaluate(() => (globalThis as unknown as { __consoleTest: { dropConnection: () => void } }).__consoleTest.dropConnection());
    await page.waitForSelector('body[data-conn="offline"]');
    const missed = [await raise('操场', 'medical'), await raise('食堂', 'fire'), await raise('北门')];
    expect(await page.getAttribute('body', 'data-conn')).toBe('offline');
    expect(await page.$(`[data-incident-id="${missed[0].id}"]`)).toBeNull();

    // Back online: the console resumes by itself and gets exactly what it missed, by replay.
    await context.setOffline(false);
    await page.waitForSelector('body[data-conn="online"]', { timeout: 20000 });
    for (const m of missed) await page.waitForSelector(`[data-incident-id="${m.id}"][data-status="raised"]`);
    const after = await state();
    const newSeqs = after.seqs.slice(before.seqs.length);
    expect(newSeqs.every((s) => typeof s === 'number')).toBe(true); // no snapshot: a replay
    expect(newSeqs).toHaveLength(3);
    expect(newSeqs as number[]).toEqual([...(newSeqs as number[])].sort((a, b) => a - b));
    expect((newSeqs as number[])[0]).toBeGreaterThan(before.lastSeq);
    await page.waitForSelector('body[data-alert="on"]');
    expect(after.unacked).toBe(3);
    // Most severe and newest first: the P1s first (北门 newest), then…
    const order = await page.$$eval('#incidents li', (els) => els.map((e) => (e as unknown as { dataset: { incidentId: string } }).dataset.incidentId));
    expect(order[0]).toBe(missed[2].id);

    // English switch.
    await page.click('.bar .lang-switch');
    expect(await page.textContent('#conn')).toContain('Online');
    await page.click('.bar .lang-switch');

    // Patrol findings show up live in their panel, newest first: a post check at one school,
    // then a district audit summary (two chunks of one run, merged into one entry).
    expect(await page.textContent('#patrol-count')).toBe('0');
    const events = t.app.get(ConsoleEventsService);
    const ds = t.app.get(DataSource);
    const postMessage = '护学岗 南门（P-01）早高峰时段在岗 0 人，应到 2 人<img src=x onerror=alert(1)>';
    await ds.transaction((m) =>
      events.append(m, {
        type: 'patrol.finding',
        schoolId: seed.schoolA.id,
        payload: { schoolId: seed.schoolA.id, source: 'post', runId: null, total: 1, findings: [{ findingId: 'pf-post-1', check: 'post_unstaffed', message: postMessage, subjectLabel: 'P-01 南门', taskId: null }] },
      }),
    );
    await page.waitForSelector('#patrol-list [data-finding-id="pf-post-1"]', { timeout: 2000 });
    expect(await page.textContent('#patrol-list [data-finding-id="pf-post-1"] .msg')).toBe(postMessage); // text, never markup
    expect(await page.$('#patrol-list img')).toBeNull();
    expect(await page.textContent('#patrol-list [data-finding-id="pf-post-1"] .sub')).toContain('护学岗未到岗');
    expect(await page.textContent('#patrol-list [data-finding-id="pf-post-1"] .src')).toBe('护学岗检查');
    const chunk = (index: number, schoolId: string, n: number) => ({
      type: 'patrol.finding' as const,
      schoolId: null,
      payload: {
        schoolId: null,
        source: 'audit' as const,
        runId: 'run-browser-1',
        total: n,
        chunk: { index, of: 2 },
        schools: [{ schoolId, total: n, checks: { alarm_button: n } }],
        findings: [{ findingId: `af-${index}`, check: 'alarm_button', message: `甲小学 未配备一键报警 ${index}`, subjectLabel: '甲小学', taskId: null }],
      },
    });
    await ds.transaction((m) => events.append(m, chunk(0, seed.schoolA.id, 2)));
    await page.waitForSelector('#patrol-list .kind-summary[data-run-id="run-browser-1"]');
    await ds.transaction((m) => events.append(m, chunk(1, seed.schoolB.id, 3)));
    await page.waitForFunction(() => (globalThis as unknown as { __consoleState: { patrol: { total: number } } }).__consoleState.patrol.total === 6);
    expect(await page.$$('#patrol-list .kind-summary')).toHaveLength(1);
    expect(await page.textContent('#patrol-list li:first-child .msg')).toBe('5 项发现，涉及 2 所学校');
    expect(await page.textContent('#patrol-count')).toBe('6');
    expect(await page.isVisible('#patrol-empty')).toBe(false);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.click(`[data-incident-id="${missed[1].id}"]`);
    await page.waitForSelector('#detail .timeline li');
    await page.screenshot({ path: join(ARTIFACTS, 'console.png') });
    expect(pageErrors).toEqual([]);
  });
});

import type { Browser } from 'playwright-core';
import { DataSource } from 'typeorm';
import { FindingsService } from '../../src/modules/patrols/findings.service';
import { ConsolePage, launchChromium, openConsole, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, seedMinimal, startApp, TestApp, TIMETABLE } from '../support/harness';

type MapState = { mapSchools?: Record<string, { state: string; name: string; px: [number, number] | null }> };

/**
 * The school map (issue 13): the district's schools drawn at their coordinates with no tile server
 * (ECharts on a plain projected plane, under the console's strict CSP), each coloured by its state;
 * a click on a school opens its card. Three schools: one with an open alarm, one with an open
 * rectification task, one without coordinates (listed under the map).
 */
describe('school map in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let cp: ConsolePage;
  let incidentId: string;

  beforeAll(async () => {
    t = await startApp();
    const admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    const h = auth(admin);
    // Banan district, Chongqing (the demo seed's district): two schools a few km apart, a third without coordinates.
    await t.http().patch(`/api/v1/schools/${seed.schoolA.id}`).set(h).send({ lat: 29.383, lng: 106.54, address: '巴南区鱼洞街道' }).expect(200);
    await t.http().patch(`/api/v1/schools/${seed.schoolB.id}`).set(h).send({ lat: 29.356, lng: 106.52 }).expect(200);
    await t
      .http()
      .post('/api/v1/schools')
      .set(h)
      .send({
        districtId: seed.district.id,
        zoneId: seed.zone.id,
        code: 'SC',
        name: '丙中学',
        type: 'middle',
        studentCount: 500,
        staffCount: 40,
        timetable: TIMETABLE,
      })
      .expect(201);
    const op = (await t.userToken('operator', undefined, 'map_op')).token;
    incidentId = (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '南门' }).expect(201))
      .body.id;
    // Acknowledged, so still open (the school's state is 'alarm') but not waiting: a P1 waiting takes over the
    // screen on every desk surface, the map included (layout/DeskAlerts.vue).
    await t.http().post(`/api/v1/incidents/${incidentId}/acknowledge`).set(auth(op)).send({}).expect(200);
    const findings = t.app.get(FindingsService);
    await t.app.get(DataSource).transaction((m) =>
      findings.record(
        m,
        [
          {
            source: 'audit',
            check: 'device_offline_24h',
            schoolId: seed.schoolB.id,
            subjectKind: 'school',
            subjectId: seed.schoolB.id,
            subjectLabel: '乙小学',
            message: '乙小学 摄像机离线超过24小时',
            at: new Date(),
          },
        ],
        new Date(),
      ),
    );
    browser = await launchChromium();
    cp = await openConsole(browser, t.baseUrl);
    await cp.login('map_op', PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await cp?.close();
    await browser?.close();
    await t?.close();
  });

  it('draws the schools by their state; a click on the school with an open alarm opens its card', async () => {
    const { page } = cp;
    await page.goto(`${t.baseUrl}/console/map`);
    await page.waitForSelector('#school-map[data-ready="yes"][data-schools="2"]');
    expect(await page.getAttribute('#school-map', 'data-points')).toBe('2');
    expect(await page.textContent('#map-unplaced')).toContain('丙中学');
    expect(await page.textContent('#map-legend [data-state="alarm"] b')).toBe('1');

    const map = await page.waitForFunction(() => {
      const s = (globalThis as unknown as { __consoleState: MapState }).__consoleState.mapSchools;
      return s && Object.values(s).every((x) => x.px) ? s : null;
    });
    const schools = (await map.jsonValue()) as NonNullable<MapState['mapSchools']>;
    expect(schools[seed.schoolA.id].state).toBe('alarm');
    expect(schools[seed.schoolB.id].state).toBe('finding');
    // A is north-east of B: drawn right of and above it.
    const [ax, ay] = schools[seed.schoolA.id].px!;
    const [bx, by] = schools[seed.schoolB.id].px!;
    expect(ax).toBeGreaterThan(bx);
    expect(ay).toBeLessThan(by);

    const box = (await page.locator('#school-map').boundingBox())!;
    await page.mouse.click(box.x + ax, box.y + ay);
    await page.waitForSelector(`#map-school[data-school-id="${seed.schoolA.id}"][data-state="alarm"]`);
    await page.waitForSelector(`#map-school-alarms [data-incident-id="${incidentId}"]`);
    await page.waitForSelector('#card-address:text("巴南区鱼洞街道")');
    await cp.screenshot('map-school-card');

    // The other school: its open rectification task (where it is drawn now, the card being open).
    const now = (await page.evaluate(() => (globalThis as unknown as { __consoleState: MapState }).__consoleState.mapSchools))!;
    const box2 = (await page.locator('#school-map').boundingBox())!;
    const [bx2, by2] = now[seed.schoolB.id].px!;
    await page.mouse.click(box2.x + bx2, box2.y + by2);
    await page.waitForSelector(`#map-school[data-school-id="${seed.schoolB.id}"][data-state="finding"]`);
    expect((await page.textContent('#map-school-tasks'))?.trim()).toBe('1 项');

    expect(await rawKeysOnPage(page, ['map_op'])).toEqual([]);

    // In English: the legend, the card and the list under the map in English words, no raw keys.
    await page.click('.lang-switch');
    await page.waitForSelector('#map-legend [data-state="alarm"]:has-text("Open alarm")');
    expect(await page.textContent('#map-unplaced')).toContain('have no coordinates');
    expect(await page.textContent('#map-school')).toContain('Open rectification tasks');
    expect(await rawKeysOnPage(page, ['map_op'])).toEqual([]);
    await cp.screenshot('map-school-card-en');
    await page.click('.lang-switch');
    expect(await cp.problems()).toEqual([]);
  }, 180_000);
});

import type { Browser } from 'playwright-core';
import jwt from 'jsonwebtoken';
import { TokenService } from '../../src/modules/auth/token.service';
import { ConsolePage, launchChromium, openConsole } from '../support/browser';
import { auth, PASSWORD, startApp, TestApp } from '../support/harness';

/**
 * The console's session over time, in Chromium: the server ends the socket session when the
 * access token expires; the console renews it. While the api cannot renew it (it answers 503,
 * as it does with Postgres down) the operator stays logged in and the console keeps retrying;
 * once renewal works it is live again. A session ended elsewhere (logout, revocation) is refused
 * on renewal and the console goes to the login page saying so.
 */
type Session = { accessToken: string; refreshToken: string; expiresAt: number };
type Store = { sessionStorage: { getItem: (k: string) => string | null; setItem: (k: string, v: string) => void } };

describe('console session in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let cp: ConsolePage;
  let user: { token: string; userId: string; username: string };

  beforeAll(async () => {
    // Revocations reach connected consoles within a second.
    t = await startApp({ console: { revocationCheckSeconds: 1 } });
    user = await t.userToken('operator', undefined, 'night_op');
    browser = await launchChromium();
  });

  afterAll(async () => {
    await cp?.close();
    await browser?.close();
    await t?.close();
  });

  const stored = () => cp.page.evaluate(() => JSON.parse((globalThis as unknown as Store).sessionStorage.getItem('shouhu.session') ?? 'null') as Session);

  it('renews an expired session, rides out a renewal outage without logging out, and ends a revoked one', async () => {
    cp = await openConsole(browser, t.baseUrl);
    const { page } = cp;
    await cp.login('night_op', PASSWORD);
    await page.waitForSelector('body[data-conn="online"]');
    const incident = (
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(user.token))
        .send({ schoolId: await schoolId(), type: 'other', location: '值班室' })
        .expect(201)
    ).body as { id: string };
    await page.waitForSelector(`[data-incident-id="${incident.id}"]`);

    // An access token that lasts 10 s (the real signer, a short life), while renewal answers 503. Long enough for the
    // reloaded page to connect on a loaded host (ci2: with 3 s the token expired before the socket was up, and the page
    // never got online: renewal answers 503 here), short enough to expire within the test.
    const s = await stored();
    const session = (jwt.decode(s.accessToken) as { fam: string }).fam; // the same login session as the page's own token
    const short = new TokenService({ ...t.config, auth: { ...t.config.auth, accessTtlSeconds: 10 } }, null as never).signAccess(
      { id: user.userId, username: 'night_op', role: 'operator', schoolId: null },
      session,
    );
    let refreshes = 0;
    await page.route('**/api/v1/auth/refresh', (route) => {
      refreshes++;
      return route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'INTERNAL', message: 'database unavailable' } }),
      });
    });
    await page.evaluate(
      (v) => (globalThis as unknown as Store).sessionStorage.setItem('shouhu.session', v),
      JSON.stringify({ ...s, accessToken: short.token, expiresAt: Date.now() + 15 * 60_000 }),
    );
    await page.reload();
    await page.waitForSelector('body[data-conn="online"]');
    await page.waitForSelector(`[data-incident-id="${incident.id}"]`);

    // The server ends the socket session at expiry; renewal fails and is retried; no logout.
    await page.waitForSelector('body[data-conn="offline"]', { timeout: 25000 });
    const until = Date.now() + 8000;
    while (Date.now() < until && refreshes < 2) await page.waitForTimeout(250);
    expect(refreshes).toBeGreaterThanOrEqual(2);
    expect((await cp.state()).view).toBe('console');
    expect(await page.$('#login-btn')).toBeNull();
    expect(await page.$(`[data-incident-id="${incident.id}"]`)).not.toBeNull();

    // Renewal works again: live again, same session.
    await page.unroute('**/api/v1/auth/refresh');
    await page.waitForSelector('body[data-conn="online"]', { timeout: 15000 });
    expect((await stored()).accessToken).not.toBe(short.token);

    // Logged out elsewhere (the tokens of this tab revoked): the console is told and goes to the login page.
    const now = await stored();
    await t.http().post('/api/v1/auth/logout').set(auth(now.accessToken)).send({ refreshToken: now.refreshToken }).expect(204);
    await page.waitForSelector('#login-btn', { timeout: 15000 });
    expect(await page.textContent('#login-error')).toBe('登录已过期，请重新登录');
    expect((await cp.state()).sessionResources).toBe(0);
    expect(await cp.problems()).toEqual([]);
  });

  async function schoolId(): Promise<string> {
    const admin = (await t.userToken('admin')).token;
    const h = auth(admin);
    const district = (await t.http().post('/api/v1/districts').set(h).send({ code: 'd9', name: '测试区' }).expect(201)).body;
    const zone = (await t.http().post('/api/v1/zones').set(h).send({ districtId: district.id, code: 'Z9', name: '九学区', level: 'primary' }).expect(201)).body;
    const group = (await t.http().post('/api/v1/groups').set(h).send({ districtId: district.id, code: 'G9', name: '九集团' }).expect(201)).body;
    const school = await t
      .http()
      .post('/api/v1/schools')
      .set(h)
      .send({
        districtId: district.id,
        zoneId: zone.id,
        groupId: group.id,
        code: 'S9',
        name: '丙小学',
        type: 'primary',
        studentCount: 500,
        staffCount: 40,
        timetable: {
          weekdays: [1, 2, 3, 4, 5],
          arrival: { start: '07:30', end: '08:10' },
          dismissal: { start: '16:30', end: '17:10' },
          schoolHours: { start: '07:30', end: '17:30' },
        },
      })
      .expect(201);
    return school.body.id;
  }
});

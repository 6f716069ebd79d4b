import type { Browser } from 'playwright-core';
import { ConsolePage, launchChromium, openConsole } from '../support/browser';
import { PASSWORD, startApp, TestApp } from '../support/harness';
import { freePort, Proc, startRedis, stop } from '../support/processes';

/**
 * The console's degraded-state banner in Chromium (issue 11 §1): the service runs on a
 * redis-server of the test's own; while it is down the console stays online (alarms still arrive)
 * and shows the banner naming Redis, in the page's language; when Redis is back the banner goes.
 */
describe('degraded-state banner in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let cp: ConsolePage;
  let redis: Proc | undefined;
  let redisPort: number;

  beforeAll(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    t = await startApp({ redis: { url: `redis://127.0.0.1:${redisPort}/0` }, ops: { stateEveryMs: 300 } });
    await t.userToken('operator', undefined, 'degraded_op');
    browser = await launchChromium();
  });

  afterAll(async () => {
    await cp?.close();
    await browser?.close();
    await t?.close();
    await stop(redis);
  });

  it('shows the banner while Redis is down and clears it when Redis is back', async () => {
    cp = await openConsole(browser, t.baseUrl);
    const { page } = cp;
    await cp.login('degraded_op', PASSWORD);
    await page.waitForSelector('body[data-conn="online"]');
    expect(await page.$('#degraded-banner')).toBeNull();

    await stop(redis);
    await page.waitForSelector('#degraded-banner #degraded-redis', { timeout: 10_000 });
    expect(await page.textContent('#degraded-redis')).toContain('队列服务（Redis）中断');
    expect(await page.getAttribute('body', 'data-conn')).toBe('online'); // still live: alarms still arrive

    redis = await startRedis(redisPort);
    await page.waitForSelector('#degraded-banner', { state: 'detached', timeout: 15_000 });
  });
});

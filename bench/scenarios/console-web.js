'use strict';
/**
 * The web console (issue 13) in headless Chromium against the demo district:
 *  - initial JS, gzipped: what a first visit loads before anything lazy (the build measures it:
 *    dist/console-web/build-stats.json); here re-measured from what the service serves
 *    (index.html's entry script and its static imports, gzipped at level 9). Target ≤ 500 KB (issue 13).
 *  - console ready after login: from the click on "登录" until the operator surface is live —
 *    logged in, the snapshot shown (the device strip filled), the socket caught up (`online`).
 *    Target ≤ 1,500 ms (issue 13). Also from a reload of a logged-in tab (JS from cache).
 *  - for scale: bytes transferred from the click to ready, the JS heap when ready, the longest
 *    main-thread task while getting ready.
 * Medians of RUNS fresh browser contexts (cold caches) as operator1 (demo password).
 */
/* global window, document, PerformanceObserver -- functions passed to page.evaluate run in the browser */
const path = require('node:path');
const { gzipSync } = require('node:zlib');

const RUNS = Number(process.env.BENCH_CONSOLE_WEB_RUNS || 5);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x) => Math.round(x * 10) / 10;

/** The entry script of index.html and, transitively, its static imports; gzipped sizes. */
async function initialJs(baseUrl) {
  const html = await (await fetch(`${baseUrl}/console/`)).text();
  const entry = /<script type="module"[^>]*src="([^"]+)"/.exec(html);
  if (!entry) throw new Error('no module entry script in /console/');
  const seen = new Set();
  let raw = 0;
  let gz = 0;
  const visit = async (url) => {
    if (seen.has(url)) return;
    seen.add(url);
    const res = await fetch(new URL(url, `${baseUrl}/console/`));
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    const code = Buffer.from(await res.arrayBuffer());
    raw += code.length;
    gz += gzipSync(code, { level: 9 }).length;
    // Static imports only (`import … from "./x.js"` / `import "./x.js"`); dynamic import() is lazy.
    for (const m of code.toString('utf8').matchAll(/(?:^|[;\n}])\s*import\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+\.js)["']/g))
      await visit(new URL(m[1], res.url).pathname);
  };
  await visit(entry[1]);
  return { raw, gz, files: seen.size };
}

async function run(ctx) {
  const scenario = 'console-web';
  const rows = [];
  const { chromium } = require('playwright-core');
  const { loadConfig } = require(path.join(__dirname, '..', '..', 'dist', 'config', 'config.js'));
  const password = loadConfig({ ...process.env, NODE_ENV: 'development' }).demo.userPassword;

  const js = await initialJs(ctx.baseUrl);
  rows.push({ scenario, metric: 'initial_js.gzip', value: round(js.gz / 1024), unit: 'KB', target: '<= 500' });
  rows.push({ scenario, metric: 'initial_js.raw', value: round(js.raw / 1024), unit: 'KB', target: null });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const afterLogin = [];
  const afterReload = [];
  const bytes = [];
  const heaps = [];
  const longTasks = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
      await context.addInitScript(() => {
        window.__longest = 0;
        try {
          new PerformanceObserver((l) => l.getEntries().forEach((e) => (window.__longest = Math.max(window.__longest, e.duration)))).observe({
            type: 'longtask',
            buffered: true,
          });
        } catch {
          /* no long-task timing */
        }
      });
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      let transferred = 0;
      let counting = false;
      page.on('response', async (r) => {
        if (!counting) return;
        const len = Number(r.headers()['content-length']);
        transferred += Number.isFinite(len) ? len : (await r.body().catch(() => Buffer.alloc(0))).length;
      });
      await page.goto(`${ctx.baseUrl}/console/`);
      await page.fill('#username', 'operator1');
      await page.fill('#password', password);
      const ready = () =>
        page.waitForFunction(
          () => document.body.dataset.conn === 'online' && /\d/.test(document.querySelector('#stat-devices')?.textContent ?? ''),
          undefined,
          { timeout: 30000, polling: 'raf' },
        );
      counting = true;
      const t0 = performance.now();
      await page.click('#login-btn');
      await ready();
      afterLogin.push(performance.now() - t0);
      counting = false;
      bytes.push(transferred);
      const cdp = await context.newCDPSession(page);
      await cdp.send('Performance.enable');
      const { metrics } = await cdp.send('Performance.getMetrics');
      heaps.push((metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0) / 1048576);
      longTasks.push(await page.evaluate(() => window.__longest));
      const t1 = performance.now();
      await page.reload();
      await ready();
      afterReload.push(performance.now() - t1);
      if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
      await context.close();
    }
  } finally {
    await browser.close();
  }
  ctx.log(`console-web: ready after login ${afterLogin.map(Math.round).join(', ')} ms; after reload ${afterReload.map(Math.round).join(', ')} ms`);
  rows.push({ scenario, metric: 'ready_after_login.p50', value: Math.round(median(afterLogin)), unit: 'ms', target: '<= 1500' });
  rows.push({ scenario, metric: 'ready_after_login.max', value: Math.round(Math.max(...afterLogin)), unit: 'ms', target: null });
  rows.push({ scenario, metric: 'ready_after_reload.p50', value: Math.round(median(afterReload)), unit: 'ms', target: '<= 1500' });
  rows.push({ scenario, metric: 'login_to_ready.transferred', value: round(median(bytes) / 1024), unit: 'KB', target: null });
  rows.push({ scenario, metric: 'ready.js_heap', value: round(median(heaps)), unit: 'MB', target: null });
  rows.push({ scenario, metric: 'ready.longest_task', value: Math.round(median(longTasks)), unit: 'ms', target: null });
  return rows;
}

module.exports = { run };

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';

/**
 * Browser tests of the web console in real headless Chromium (Debian's /usr/bin/chromium, driven
 * by playwright-core). `openConsole` gives a page with the app's test hooks on and everything a
 * test must fail on collected: uncaught page errors, CSP violations (a `securitypolicyviolation`
 * listener installed before the app loads, and Chromium's console reports).
 *
 * Audio: playwright's waits and evaluations run in the page as user gestures, and Chromium carries
 * a click over to the next same-origin page; either lets a page start audio. A test of how the
 * console starts without a gesture waits on network events and time only (see the sound prompt test).
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const ARTIFACTS = join(__dirname, '..', 'artifacts');
export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 390, height: 844 };

/**
 * playwright gives every launch a fresh temporary profile (user-data dir) of its own. `extraArgs`:
 * e.g. a fake camera (`fakeCameraArgs`).
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** Chromium's camera is this video file (.y4m or .mjpeg, looped), and pages may use it without asking. */
export const fakeCameraArgs = (videoFile: string): string[] => [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  `--use-file-for-fake-video-capture=${videoFile}`,
];

/** What the page's `window.__consoleState` holds (web/src: App.vue and the mounted surfaces' parts). */
export interface ConsoleState {
  view: 'login' | 'console';
  conn: 'offline' | 'connecting' | 'online';
  lastSeq: number;
  seqs: (number | { snapshot: number })[];
  title: string;
  sound: { state: string; beeps: number };
  missingKeys: string[];
  sessionResources: number;
  incidents?: { id: string; status: string; priority: string; location: string }[];
  unacked?: number;
  alerting?: boolean;
  takeover?: string | null;
  selected?: string | null;
  patrol?: { total: number; items: { taskId: string; schoolId: string; check: string; findingCount: number }[] };
}

export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  /** Uncaught errors and CSP violations seen so far (a test expects none). */
  problems(): Promise<string[]>;
  state(): Promise<ConsoleState>;
  login(username: string, password: string): Promise<void>;
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

type Win = { __consoleState: ConsoleState; __cspViolations?: string[]; __SHOUHU_TEST__?: boolean };

export async function openConsole(
  browser: Browser,
  baseUrl: string,
  opts: {
    viewport?: { width: number; height: number };
    path?: string;
    isMobile?: boolean;
    fakeClock?: boolean;
    /** Browser permissions granted to the console's origin (e.g. 'geolocation', 'camera'). */
    permissions?: string[];
    /** Where the phone says it is (with the 'geolocation' permission). */
    geolocation?: { latitude: number; longitude: number; accuracy?: number };
  } = {},
): Promise<ConsolePage> {
  const context = await browser.newContext({
    viewport: opts.viewport ?? DESKTOP,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    isMobile: opts.isMobile,
    hasTouch: opts.isMobile,
    geolocation: opts.geolocation,
  });
  if (opts.permissions?.length) await context.grantPermissions(opts.permissions, { origin: baseUrl });
  // Timers the test can fast-forward (time still flows on its own until then).
  if (opts.fakeClock) await context.clock.install();
  await context.addInitScript(() => {
    const w = globalThis as unknown as Win & {
      document: {
        addEventListener: (n: string, f: (e: { violatedDirective: string; blockedURI: string; sourceFile: string; lineNumber: number }) => void) => void;
      };
    };
    w.__SHOUHU_TEST__ = true;
    w.__cspViolations = [];
    w.document.addEventListener('securitypolicyviolation', (e) =>
      w.__cspViolations!.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`),
    );
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  // What the page asked for and did not get: named when the app fails to start (a CI run once saw
  // no login form after 30 s and nothing else to go on).
  const failed: string[] = [];
  const pending = new Set<string>();
  page.on('request', (r) => pending.add(r.url()));
  page.on('requestfinished', (r) => pending.delete(r.url()));
  page.on('requestfailed', (r) => {
    pending.delete(r.url());
    failed.push(`${r.url()}: ${r.failure()?.errorText ?? 'failed'}`);
  });
  const started = Date.now();
  await page.goto(`${baseUrl}${opts.path ?? '/console/'}`);
  // The app has mounted once #app has content (the login form or the console); a slow CI machine
  // gets 40 s, and a failure says why.
  await page
    .waitForFunction(
      () =>
        ((globalThis as unknown as { document: { querySelector: (s: string) => { childElementCount: number } | null } }).document.querySelector('#app')
          ?.childElementCount ?? 0) > 0,
      null,
      {
        timeout: 40_000,
        polling: 100,
      },
    )
    .catch(async (e: Error) => {
      const html = await page.content().catch(() => '(no content)');
      throw new Error(
        `the console did not start in ${Date.now() - started} ms (${e.message.split('\n')[0]}); ` +
          `page errors: ${JSON.stringify(errors)}; failed requests: ${JSON.stringify(failed)}; still pending: ${JSON.stringify([...pending])}; ` +
          `page: ${html.slice(0, 600)}`,
      );
    });
  const cp: ConsolePage = {
    context,
    page,
    problems: async () => {
      const csp = await page.evaluate(() => (globalThis as unknown as Win).__cspViolations ?? []).catch(() => [] as string[]);
      return [...errors, ...csp.map((c) => `CSP: ${c}`)];
    },
    state: () => page.evaluate(() => (globalThis as unknown as Win).__consoleState),
    login: async (username, password) => {
      await page.fill('#username', username);
      await page.fill('#password', password);
      await page.click('#login-btn');
      await page.waitForSelector('body[data-view="console"]');
    },
    screenshot: async (name) => {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
    },
    close: () => context.close(),
  };
  return cp;
}

/**
 * Text on the page that looks like a message key or a raw code (`action.escalated`, `relay_late`,
 * `AUTH.TOKEN_EXPIRED`), outside elements marked `data-raw` (data as entered: names, notes, URLs).
 * Dialogs teleported to <body> are included. `allow`: data the test knows is on the page inside
 * messages (usernames such as duty_op).
 */
export function rawKeysOnPage(page: Page, allow: string[] = []): Promise<string[]> {
  return page.evaluate((allowList) => {
    type N = { nodeType: number; nodeValue: string | null; parentElement: { closest: (s: string) => unknown } | null };
    const doc = (globalThis as unknown as { document: { body: unknown; createTreeWalker: (root: unknown, what: number) => { nextNode: () => N | null } } })
      .document;
    const walker = doc.createTreeWalker(doc.body, 4 /* NodeFilter.SHOW_TEXT */);
    const found: string[] = [];
    const patterns = [/\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b/g, /\b[a-z][a-zA-Z0-9]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)+\b/g, /\b[A-Z][A-Z0-9]*(?:[._][A-Z0-9]+)+\b/g];
    const allowed = new Set(['e.g', ...allowList]);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest('[data-raw], script, style, noscript')) continue;
      const text = n.nodeValue ?? '';
      for (const re of patterns) for (const m of text.match(re) ?? []) if (!allowed.has(m)) found.push(m);
    }
    return found;
  }, allow);
}

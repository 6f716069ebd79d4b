import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The process-level guard of dist/main.js and npm start (src/infra/lifecycle/unhandled.ts): a promise
 * rejection nothing handled is logged and counted, and the service keeps running (Node's default
 * ends the process: attack pass 4 took every school's alarm intake down with one request).
 */
describe('unhandled promise rejections', () => {
  it('are logged at error with their stack and counted; the process keeps running', () => {
    // dist/ is built by the Jest global setup (test/support/global-setup.js).
    const script = `
      const { keepRunningOnUnhandledRejections } = require('./dist/infra/lifecycle/unhandled.js');
      const { metrics } = require('./dist/infra/observability/metrics.js');
      keepRunningOnUnhandledRejections();
      Promise.reject(new Error('a bug on one path'));
      setTimeout(async () => {
        const line = (await metrics.metrics()).split('\\n').find((l) => l.startsWith('shouhu_unhandled_rejections_total '));
        process.stdout.write('still running; ' + line + '\\n');
      }, 100);`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: join(__dirname, '..', '..'), encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('still running; shouhu_unhandled_rejections_total 1');
    expect(r.stderr).toMatch(/unhandled promise rejection \(a bug; the service keeps running\): Error: a bug on one path\n\s+at /);
  });
});

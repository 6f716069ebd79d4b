// Tests that spawn the service as a separate process (CLI, fault tests) run the compiled code, and
// browser tests load the built web console (dist/console-web): build both once, before any test
// file runs — the TypeScript incrementally, the web console only when its sources changed. Then
// the migrated template database that test files clone (test-databases.js).
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');
const { RUN_ENV, TEMPLATE_ENV, ensureTemplate } = require('./test-databases');

module.exports = async () => {
  const root = join(__dirname, '..', '..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.js'), '--if-stale'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, WEB_BUILD_LOG: 'warn' },
  });
  // Environment set here reaches every test file (in band, and Jest workers inherit it).
  process.env[RUN_ENV] = String(process.pid);
  process.env[TEMPLATE_ENV] = await ensureTemplate();
};

// Tests that spawn the service as a separate process (CLI, fault tests) run the compiled code, and
// browser tests load the built web console (dist/console-web): build both once, before any test
// file runs — the TypeScript incrementally, the web console only when its sources changed.
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = async () => {
  const root = join(__dirname, '..', '..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.js'), '--if-stale'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, WEB_BUILD_LOG: 'warn' },
  });
};

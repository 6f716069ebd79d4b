#!/usr/bin/env node
/*
 * Builds the web console (web/, Vue + Vite) into dist/console-web, which the api serves at /console:
 * type-checks it (vue-tsc), then bundles it (vite build; prints the initial JS size, gzipped, and
 * fails above its budget).
 *   node scripts/build-web.js             always (part of `npm run build`)
 *   node scripts/build-web.js --if-stale  only when an input is newer than the last build
 *                                         (`npm start` and the test suite's global setup)
 * Inputs: everything under web/ (but node_modules), the server files web/src/shared/server.ts
 * re-exports, and package-lock.json.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const web = path.join(root, 'web');
const out = path.join(root, 'dist', 'console-web', 'index.html');

function newestMtime(p) {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of fs.readdirSync(p)) if (e !== 'node_modules') m = Math.max(m, newestMtime(path.join(p, e)));
  return m;
}

/** The server source files the web app imports (types), from the one file that imports them, and theirs in turn. */
function sharedServerFiles() {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file) || !fs.existsSync(file)) return;
    seen.add(file);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/from\s+'(\.[^']+)'/g)) visit(path.resolve(path.dirname(file), m[1]) + '.ts');
  };
  const entry = path.join(web, 'src', 'shared', 'server.ts');
  for (const m of fs.readFileSync(entry, 'utf8').matchAll(/from\s+'(\.[^']+)'/g)) visit(path.resolve(path.dirname(entry), m[1]) + '.ts');
  return [...seen];
}

function stale() {
  const built = fs.statSync(out, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (!built) return 'no build yet';
  const inputs = [web, path.join(root, 'package-lock.json'), ...sharedServerFiles()];
  const changed = inputs.find((p) => newestMtime(p) > built);
  return changed ? `${path.relative(root, changed)} changed` : null;
}

const bin = (pkg, file) => path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);

function main() {
  if (process.argv.includes('--if-stale')) {
    const why = stale();
    if (!why) return;
    process.stdout.write(`[build-web] building the web console (${why})\n`);
  }
  execFileSync(process.execPath, [bin('vue-tsc', 'bin/vue-tsc.js'), '-p', path.join(web, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  execFileSync(
    process.execPath,
    [bin('vite', 'bin/vite.js'), 'build', '--config', path.join(web, 'vite.config.mts'), '--logLevel', process.env.WEB_BUILD_LOG ?? 'info'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}

main();

#!/usr/bin/env node
/*
 * `npm test` pre-step: the protocol tests need a real SIP peer (sipp, Debian package sip-tester)
 * and the browser tests Debian's chromium (+ a CJK font for readable screenshots). On a fresh
 * Debian machine where we are root, install what is missing; elsewhere say exactly what to do.
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const hasCjkFont = () => spawnSync('sh', ['-c', "fc-list 2>/dev/null | grep -qi 'wqy\\|wenquanyi\\|noto.*cjk'"], { stdio: 'ignore' }).status === 0;

const missing = [];
if (!has('sipp')) missing.push('sip-tester');
if (!existsSync('/usr/bin/chromium')) missing.push('chromium');
if (!hasCjkFont()) missing.push('fonts-wqy-zenhei');
if (missing.length === 0) process.exit(0);

const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (!root || !has('apt-get')) {
  const fatal = missing.filter((p) => p !== 'fonts-wqy-zenhei');
  process.stderr.write(
    `[test] missing system packages: ${missing.join(' ')}\n` +
      `       Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}\n` +
      `       (sipp plays GB/T 28181 cameras in test/protocol; chromium drives the console in test/browser)\n`,
  );
  process.exit(fatal.length ? 1 : 0);
}
process.stdout.write(`[test] installing ${missing.join(' ')} (Debian packages) for the protocol and browser tests…\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });

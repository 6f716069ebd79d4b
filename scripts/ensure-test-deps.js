#!/usr/bin/env node
/*
 * `npm test` pre-step: the protocol tests need a real SIP peer (sipp, Debian package sip-tester),
 * the video tests ffmpeg and an RTSP camera (GStreamer's RTSP server through Debian's python3-gi),
 * the browser tests Debian's chromium (+ a CJK font for readable screenshots), and the several-machines
 * test (test/ops/multinode.spec.ts) iproute2 and HAProxy. On a fresh
 * Debian machine where we are root, install what is missing; elsewhere say exactly what to do.
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
/** Also where Debian puts administrators' commands, outside a normal user's PATH. */
const hasSbin = (cmd) => has(cmd) || existsSync(`/usr/sbin/${cmd}`) || existsSync(`/sbin/${cmd}`);
const hasCjkFont = () => spawnSync('sh', ['-c', "fc-list 2>/dev/null | grep -qi 'wqy\\|wenquanyi\\|noto.*cjk'"], { stdio: 'ignore' }).status === 0;

/** GStreamer's RTSP server and the encoders the RTSP test camera uses, seen from Debian's python3. */
const hasGstRtsp = () =>
  spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0'); from gi.repository import Gst, GstRtspServer; Gst.init(None); import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in ['videotestsrc','x264enc','x265enc','rtph264pay','rtph265pay']) else 1)",
    ],
    { stdio: 'ignore' },
  ).status === 0;
const GST = [
  'python3-gi',
  'gir1.2-gst-rtsp-server-1.0',
  'gstreamer1.0-plugins-base',
  'gstreamer1.0-plugins-good',
  'gstreamer1.0-plugins-ugly',
  'gstreamer1.0-plugins-bad',
];

const missing = [];
if (!has('sipp')) missing.push('sip-tester');
if (!has('ffmpeg') || !has('ffprobe')) missing.push('ffmpeg');
if (!has('setpriv')) missing.push('util-linux');
// test/ops/multinode.spec.ts: machines in network namespaces (ip netns, veth, bridge) behind HAProxy.
if (!hasSbin('ip')) missing.push('iproute2');
if (!hasSbin('haproxy')) missing.push('haproxy');
if (!hasGstRtsp()) missing.push(...GST);
if (!existsSync('/usr/bin/chromium')) missing.push('chromium');
if (!hasCjkFont()) missing.push('fonts-wqy-zenhei');
if (missing.length === 0) process.exit(0);

const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (!root || !has('apt-get')) {
  const fatal = missing.filter((p) => p !== 'fonts-wqy-zenhei');
  process.stderr.write(
    `[test] missing system packages: ${missing.join(' ')}\n` +
      `       Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}\n` +
      `       (sipp plays GB/T 28181 cameras in test/protocol; ffmpeg and GStreamer's RTSP server serve the video tests;\n` +
      `        chromium drives the console in test/browser; haproxy and iproute2 run test/ops/multinode.spec.ts)\n`,
  );
  process.exit(fatal.length ? 1 : 0);
}
process.stdout.write(`[test] installing ${missing.join(' ')} (Debian packages) for the protocol, browser and several-machines tests…\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });

#!/usr/bin/env node
// Part of `npm run build`: the video module's stand-alone player (plain static files) goes next to
// the compiled module, which serves it at /console/player (the Docker image ships dist/ only).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const to = path.join(root, 'dist', 'modules', 'video', 'player');
fs.rmSync(to, { recursive: true, force: true });
fs.cpSync(path.join(root, 'src', 'modules', 'video', 'player'), to, { recursive: true });

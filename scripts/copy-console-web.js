#!/usr/bin/env node
// Part of `npm run build`: the web console (plain static files) goes to dist/console-web, which
// the service serves at /console (and the Docker image ships with dist/).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const from = path.join(root, 'src', 'console-web');
const to = path.join(root, 'dist', 'console-web');
fs.rmSync(to, { recursive: true, force: true });
fs.cpSync(from, to, { recursive: true });

'use strict';
/**
 * Self time per function from a V8 .cpuprofile (node --cpu-prof), optionally restricted to a
 * time window: node bench/tools/cpuprofile-top.js file.cpuprofile [top=40] [fromSec] [toSec]
 */
const { readFileSync } = require('node:fs');
const [file, topArg, fromArg, toArg] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const from = fromArg ? Number(fromArg) * 1e6 : -Infinity;
const to = toArg ? Number(toArg) * 1e6 : Infinity;
const self = new Map();
let t = 0;
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i];
  if (t < from || t > to) continue;
  const n = byId.get(prof.samples[i]);
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + 1);
  total++;
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 40));
console.log(`${total} samples, span ${(t / 1e6).toFixed(1)} s`);
for (const [k, v] of top) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);

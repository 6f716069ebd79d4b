'use strict';
/**
 * Filtered list queries on the seeded district, as the console and dashboards make them:
 * cameras by zone + area kind, cameras by school + status, schools by zone (sorted), and a deep
 * page of the camera list. Each kind: p50/p99 latency and requests/s at bounded concurrency.
 * Targets are ours (interactive lists should feel instant): p50 ≤ 50 ms, p99 ≤ 250 ms.
 */
const { runConcurrent, summarize, prng } = require('../lib');

const CONCURRENCY = 8;
const REQUESTS = 300; // per query kind: a few seconds in all on a 2-core machine
const AREA_KINDS = ['main_gate', 'side_gate', 'gatehouse', 'perimeter', 'stairwell', 'dormitory', 'canteen', 'playground', 'classroom_corridor'];
const TARGETS = { p50: '<= 50', p99: '<= 250' };

async function run(ctx) {
  const zones = (await ctx.http('GET', '/api/v1/zones?limit=100')).body.items;
  const schools = (await ctx.http('GET', '/api/v1/schools?limit=500')).body.items;
  if (!zones?.length || !schools?.length) throw new Error('the district is not seeded (no zones or schools)');
  const cameraTotal = (await ctx.http('GET', '/api/v1/cameras?limit=1')).body.total;
  const rand = prng(42);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];

  const kinds = {
    cameras_by_zone_area: () => `/api/v1/cameras?zoneId=${pick(zones).id}&areaKind=${pick(AREA_KINDS)}&sort=name&limit=50`,
    cameras_by_school_status: () => `/api/v1/cameras?schoolId=${pick(schools).id}&status=unknown&sort=-lastSeenAt&limit=50`,
    schools_by_zone_sorted: () => `/api/v1/schools?zoneId=${pick(zones).id}&sort=-studentCount,name&limit=20&offset=${Math.floor(rand() * 2) * 20}`,
    cameras_deep_page: () => `/api/v1/cameras?sort=deviceId,channelId&limit=100&offset=${Math.floor(rand() * Math.max(1, cameraTotal - 100))}`,
  };

  const rows = [];
  const all = [];
  for (const [name, url] of Object.entries(kinds)) {
    const urls = Array.from({ length: REQUESTS }, url); // chosen up front: the same inputs every run
    for (const u of urls.slice(0, 10)) await ctx.http('GET', u); // warm-up (plans, pools, JIT)
    const result = await runConcurrent({ concurrency: CONCURRENCY, total: urls.length }, async (i) => {
      const res = await ctx.http('GET', urls[i]);
      if (res.status !== 200 || !Array.isArray(res.body?.items)) throw new Error(`${urls[i]}: ${res.status}`);
      return res.ms;
    });
    if (result.errors) ctx.log(`${name}: ${result.errors} errors, first: ${result.firstError?.message}`);
    rows.push(...summarize('registry-list', name, result, TARGETS));
    all.push(result);
  }
  const elapsed = all.reduce((a, r) => a + r.elapsedMs, 0);
  const done = all.reduce((a, r) => a + r.latencies.length, 0);
  const rate = (done / elapsed) * 1000;
  rows.push({ scenario: 'registry-list', metric: 'all.rate', value: Math.round(rate), unit: 'req/s', target: '>= 100' });
  if (ctx.baselines.httpNoopPerSec)
    rows.push({
      scenario: 'registry-list',
      metric: 'all.rate_vs_http_noop',
      value: Math.round((rate / ctx.baselines.httpNoopPerSec) * 1000) / 1000,
      unit: 'ratio',
      target: null,
    });
  return rows;
}

module.exports = { run };

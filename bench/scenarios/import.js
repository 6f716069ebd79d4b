'use strict';
/* global FormData, Blob */
/**
 * Bench: bulk import of 4534 cameras (the size of the Banan district) as one CSV file over HTTP,
 * against a running service with the seeded district (ctx.baseUrl, ctx.adminToken).
 *
 * The cameras use a device-id range of their own (prefix 99…) spread over the seeded schools,
 * so the district's own cameras are untouched. Their names carry the run's stamp: the first run
 * on a database creates 4534 rows, later runs update all 4534 (the slower path). A second
 * upload of the same file measures the idempotent re-import (all unchanged).
 */
const CAMERAS = 4534;

async function api(ctx, path, init = {}) {
  const res = await fetch(`${ctx.baseUrl}/api/v1${path}`, { ...init, headers: { Authorization: `Bearer ${ctx.adminToken}`, ...(init.headers ?? {}) } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${JSON.stringify(body)?.slice(0, 500)}`);
  return body;
}

async function schoolCodes(ctx) {
  const codes = [];
  for (let offset = 0; ; offset += 500) {
    const page = await api(ctx, `/schools?limit=500&offset=${offset}&sort=code`);
    codes.push(...page.items.map((s) => s.code));
    if (codes.length >= page.total || page.items.length === 0) return codes;
  }
}

function csv(schools, stamp, n) {
  const lines = ['schoolCode,deviceId,channelId,name,areaKind,location,vendor'];
  const areas = ['main_gate', 'side_gate', 'perimeter', 'stairwell', 'playground', 'canteen', 'classroom_corridor'];
  for (let i = 0; i < n; i++) {
    const serial = String(i).padStart(7, '0');
    lines.push(
      [
        schools[i % schools.length],
        `9900000000132${serial}`,
        `9900000000131${serial}`,
        `基准摄像机${i}-${stamp}`,
        areas[i % areas.length],
        `基准位置${i}`,
        'bench',
      ].join(','),
    );
  }
  return '\uFEFF' + lines.join('\r\n') + '\r\n';
}

async function upload(ctx, body) {
  const form = new FormData();
  form.append('file', new Blob([body], { type: 'text/csv' }), 'cameras.csv');
  const t0 = process.hrtime.bigint();
  const result = await api(ctx, '/import/cameras', { method: 'POST', body: form });
  return { result, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function run(ctx) {
  const n = ctx.importCameras ?? CAMERAS;
  const schools = await schoolCodes(ctx);
  if (schools.length === 0) throw new Error('no schools: seed the district first (npm run seed)');
  const file = csv(schools, Date.now().toString(36), n);
  const first = await upload(ctx, file);
  const again = await upload(ctx, file);
  if (again.result.unchanged !== n) throw new Error(`re-import was not idempotent: ${JSON.stringify(again.result)}`);
  const scenario = `import ${n} cameras (CSV, ${(Buffer.byteLength(file) / 1024).toFixed(0)} KiB)`;
  return [
    { scenario, metric: 'seconds', value: round(first.seconds), unit: 's', target: '<= 30' },
    { scenario, metric: 'rows_per_s', value: Math.round(n / first.seconds), unit: 'rows/s', target: null },
    { scenario, metric: first.result.created ? 'created' : 'updated', value: first.result.created || first.result.updated, unit: 'rows', target: null },
    { scenario, metric: 'reimport_unchanged_seconds', value: round(again.seconds), unit: 's', target: '<= 30' },
  ];
}

const round = (x) => Math.round(x * 1000) / 1000;

module.exports = { run };

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildOpenApiDocument } from '../../src/tools/openapi';
import type { OpenApiDoc, OpenApiOperation } from '../support/openapi-schema';

/**
 * The OpenAPI document describes what every route answers, not only what it takes: a 2xx schema
 * (or a documented 204 / file / picture) on every operation, and the error envelope on the error
 * statuses. The response side is derived from the controllers' return types by
 * scripts/openapi-responses.js; these tests walk the document the api serves.
 */
const ERROR_REF = '#/components/schemas/ErrorEnvelope';
const SECRET_KEY = /password|hash|secret/i;
/** Where a secret is the point of the answer: a device credential's secret is shown once, when it is created. */
const SHOWN_ONCE = new Set(['DeviceCredentialsController_create']);

describe('OpenAPI document: responses', () => {
  let doc: OpenApiDoc;
  let ops: [string, OpenApiOperation][];
  beforeAll(async () => {
    doc = (await buildOpenApiDocument()) as unknown as OpenApiDoc;
    ops = Object.entries(doc.paths).flatMap(([path, byMethod]) =>
      Object.entries(byMethod).map(([m, op]) => [`${m.toUpperCase()} ${path}`, op] as [string, OpenApiOperation]),
    );
  });

  it('the generated response descriptions are current (else: node scripts/openapi-responses.js)', () => {
    const root = join(__dirname, '..', '..');
    let out = '';
    try {
      out = execFileSync(process.execPath, [join(root, 'scripts', 'openapi-responses.js'), '--check'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string };
      throw new Error(`${err.stderr ?? ''}${err.stdout ?? ''}`);
    }
    expect(out).toContain('is current');
  });

  it('every operation says what it is for: a summary (the first sentence of its doc comment) and the whole comment as its description', () => {
    const missing = ops.filter(([, op]) => !op.summary?.trim() || !op.description?.trim()).map(([key]) => key);
    expect(missing).toEqual([]);
    // Summaries are one short line; a generic controller's `{resource}` is filled in per route.
    expect(ops.filter(([, op]) => op.summary!.length > 121 || /\n/.test(op.summary!)).map(([key]) => key)).toEqual([]);
    expect(ops.filter(([, op]) => /\{resource\}/.test(`${op.summary} ${op.description}`)).map(([key]) => key)).toEqual([]);
    expect(doc.paths['/api/v1/schools'].get.summary).toBe('Lists schools (filters and paging as the query says)');
    expect(doc.paths['/api/v1/import/templates/cameras'].get.summary).toMatch(/^The import template of cameras/);
    expect(doc.paths['/api/v1/incidents/{id}/acknowledge'].post.summary).toMatch(/^Acknowledges an alarm \(first one wins/);
    expect(doc.paths['/api/v1/compliance/schools'].get.summary).toBe('Per school for one day, with reasons (worst first)');
  });

  it('every operation declares a 2xx answer with a schema, or a 204', () => {
    const missing: string[] = [];
    for (const [key, op] of ops) {
      const ok = Object.entries(op.responses).filter(([status]) => status.startsWith('2'));
      const described = ok.some(([status, r]) => status === '204' || Object.values(r.content ?? {}).some((c) => c.schema && Object.keys(c.schema).length > 0));
      if (!described) missing.push(key);
    }
    expect(missing).toEqual([]);
    expect(ops.length).toBeGreaterThan(150);
  });

  it('every answer object names its properties (no untyped `{}` bodies or items)', () => {
    const weak: string[] = [];
    const isWeak = (s: Record<string, unknown> | undefined) =>
      !!s && !s.$ref && !s.anyOf && (Object.keys(s).length === 0 || (s.type === 'object' && !Object.keys((s.properties as object) ?? {}).length));
    for (const [key, op] of ops)
      for (const [status, r] of Object.entries(op.responses)) {
        if (!status.startsWith('2')) continue;
        const s = r.content?.['application/json']?.schema as Record<string, unknown> | undefined;
        const items = (s?.properties as Record<string, Record<string, unknown>> | undefined)?.items?.items as Record<string, unknown> | undefined;
        if (isWeak(s) || (s?.type === 'array' && isWeak(s.items as Record<string, unknown>)) || isWeak(items)) weak.push(key);
      }
    expect(weak).toEqual([]);
  });

  it('errors are documented with the error envelope: 401 and 403 where credentials are needed, 400 where input is validated, 404 on records by id', () => {
    const wrong: string[] = [];
    const envelope = (op: OpenApiOperation, status: string) =>
      (op.responses[status]?.content?.['application/json']?.schema as { $ref?: string } | undefined)?.$ref === ERROR_REF;
    for (const [key, op] of ops) {
      if (op.security?.length) for (const s of ['401', '403']) if (!envelope(op, s)) wrong.push(`${key} ${s}`);
      if ((op.parameters?.length || op.requestBody) && !envelope(op, '400')) wrong.push(`${key} 400`);
      if (/\{(id|deviceId)\}$/.test(key) && key.startsWith('GET') && !envelope(op, '404')) wrong.push(`${key} 404`);
      for (const [status, r] of Object.entries(op.responses))
        if (Number(status) >= 400 && !envelope(op, status)) wrong.push(`${key} ${status}: ${JSON.stringify(r).slice(0, 80)}`);
    }
    expect(wrong).toEqual([]);
    // The codes a route's own code can give are named: a conflict of the alarm lifecycle, a taken username.
    expect(doc.paths['/api/v1/users'].post.responses['409'].description).toContain('USER.USERNAME_TAKEN');
    expect(doc.paths['/api/v1/patrol-rounds'].post.responses['409'].description).toContain('PATROL_ROUND.NO_CAMERAS');
  });

  it('no documented answer carries a password, hash or secret (answers are allow-lists)', () => {
    const found: string[] = [];
    const schemas = doc.components.schemas as Record<string, unknown>;
    const walk = (s: unknown, where: string, seen: Set<string>): void => {
      if (!s || typeof s !== 'object') return;
      const o = s as Record<string, unknown>;
      if (typeof o.$ref === 'string') {
        const name = o.$ref.split('/').pop()!;
        if (!seen.has(name)) walk(schemas[name], `${where}→${name}`, new Set([...seen, name]));
        return;
      }
      for (const [k, v] of Object.entries((o.properties as Record<string, Record<string, unknown>>) ?? {})) {
        // A flag saying whether a secret is set (gb devices' ownPassword) is not the secret.
        if (SECRET_KEY.test(k) && v.type !== 'boolean') found.push(`${where}.${k}`);
        walk(v, `${where}.${k}`, seen);
      }
      for (const k of ['items', 'additionalProperties']) walk(o[k], where, seen);
      for (const k of ['anyOf', 'allOf', 'oneOf']) for (const x of (o[k] as unknown[]) ?? []) walk(x, where, seen);
    };
    for (const [key, op] of ops) {
      if (SHOWN_ONCE.has(op.operationId)) continue;
      for (const [status, r] of Object.entries(op.responses)) if (status.startsWith('2')) walk(r.content?.['application/json']?.schema, key, new Set());
    }
    expect(found).toEqual([]);
  });
});

import { ModulesContainer } from '@nestjs/core';
import { ACCESS_KEY } from '../../src/infra/access/decorators';
import { auth, startApp, TestApp } from '../support/harness';

/**
 * Every route, present and future, declares who may call it, and refuses a caller without
 * credentials. Routes are discovered, not listed by hand, so a new route cannot slip through.
 */
describe('route access', () => {
  let t: TestApp;
  let doc: { paths: Record<string, Record<string, unknown>> };
  beforeAll(async () => {
    t = await startApp();
    doc = (await t.http().get('/api/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  it('every controller method declares its access rule', () => {
    const modules = [...t.app.get(ModulesContainer).values()];
    const undeclared: string[] = [];
    let methods = 0;
    for (const wrapper of modules.flatMap((m) => [...m.controllers.values()])) {
      const cls = wrapper.metatype as (new () => unknown) | null;
      if (!cls) continue;
      for (const name of Object.getOwnPropertyNames(cls.prototype)) {
        const fn = (cls.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof fn !== 'function' || Reflect.getMetadata('path', fn) === undefined) continue;
        methods++;
        if (!Reflect.getMetadata(ACCESS_KEY, fn) && !Reflect.getMetadata(ACCESS_KEY, cls)) undeclared.push(`${cls.name}.${name}`);
      }
    }
    expect(undeclared).toEqual([]);
    expect(methods).toBeGreaterThan(30);
  });

  it('answers 401 without credentials on every non-public route', async () => {
    const PUBLIC = new Set(['POST /api/v1/auth/login', 'POST /api/v1/auth/refresh', 'GET /health/live', 'GET /health/ready', 'GET /metrics']);
    const id = '00000000-0000-4000-8000-000000000000';
    const wrong: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const key = `${method.toUpperCase()} ${path}`;
        if (PUBLIC.has(key)) continue;
        const url = path.replace(/\{[^}]+\}/g, id);
        const res = await t.http()[method as 'get'](url).send({});
        checked++;
        if (res.status !== 401) wrong.push(`${key} → ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(30);
  });

  it('refuses write routes to the read-only auditor with 403', async () => {
    // POSTs that only read (start watching a camera the auditor may see).
    const READ_POSTS = new Set(['POST /api/v1/cameras/{id}/stream']);
    const auditor = (await t.userToken('auditor')).token;
    const id = '00000000-0000-4000-8000-000000000000';
    const allowed: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (path.startsWith('/api/v1/auth/') || path.startsWith('/api/v1/device/')) continue;
      for (const method of Object.keys(ops).filter((m) => m !== 'get' && !READ_POSTS.has(`${m.toUpperCase()} ${path}`))) {
        const http = t.http();
        const res = await http[method as 'post'](path.replace(/\{[^}]+\}/g, id))
          .set(auth(auditor))
          .send({});
        const deviceRoute = res.status === 401 && String(res.body.error?.code).startsWith('AUTH.DEVICE_');
        if (res.status !== 403 && !deviceRoute) allowed.push(`${method.toUpperCase()} ${path} → ${res.status}`);
      }
    }
    expect(allowed).toEqual([]);
  });

  it('answers 400 with field errors to a malformed body on every route that takes one', async () => {
    const admin = (await t.userToken('admin')).token;
    const id = '00000000-0000-4000-8000-000000000000';
    const wrong: string[] = [];
    let checked = 0;
    type Op = { requestBody?: { content?: Record<string, unknown> } };
    for (const [path, ops] of Object.entries(doc.paths) as [string, Record<string, Op>][]) {
      for (const [method, op] of Object.entries(ops)) {
        if (!['post', 'put', 'patch'].includes(method) || !op.requestBody?.content?.['application/json']) continue;
        const http = t.http();
        const res = await http[method as 'post'](path.replace(/\{[^}]+\}/g, id))
          .set(auth(admin))
          .send({ unexpectedField: { nested: [1, 2] } });
        if (res.status === 401 && String(res.body.error?.code).startsWith('AUTH.DEVICE_')) continue; // device route
        checked++;
        if (res.status !== 400 || !Array.isArray(res.body.error?.details?.fields))
          wrong.push(`${method.toUpperCase()} ${path} → ${res.status} ${res.body.error?.code}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(15);
  });

  it('serves the OpenAPI UI and document', async () => {
    await t.http().get('/api/docs').redirects(1).expect(200);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/schools', '/api/v1/cameras/{id}', '/api/v1/auth/login']));
  });
});

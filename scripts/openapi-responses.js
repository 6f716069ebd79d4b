#!/usr/bin/env node
/*
 * The response side of the OpenAPI document, derived from the code instead of written twice:
 *   node scripts/openapi-responses.js          write src/infra/http/openapi-responses.generated.ts (part of `npm run build`)
 *   node scripts/openapi-responses.js --check  exit 1 if the committed file is not what the code gives now
 *
 * For every controller method (a class decorated @Controller, a method decorated @Get/@Post/…) it
 * reads, with the TypeScript checker:
 *   - the type the method returns (awaited) and turns it into an OpenAPI 3.0 schema: named
 *     interfaces and classes become components, Date becomes a date-time string, `T | null` a
 *     nullable, string-literal unions enums, StreamableFile a CSV/XLSX file. A route returning an
 *     @Entity class fails the generation: answers are built from allow-lists (infra/http/views.ts).
 *   - the errors it can give: the `Errors.*` / `new DomainError(HttpStatus.*)` / Nest HttpException
 *     calls reachable from its body through calls into src/ (a static over-approximation, depth
 *     bounded), with the codes named, so 403/404/409/410/429… are documented with the codes a
 *     client may meet.
 *   - what it is for: its doc comment — the first sentence becomes the operation's summary, the whole its
 *     description (issue 13: every route with a summary); `{resource}` in a generic controller's comment
 *     stands for the resource's path segment (openapi.ts fills it in per route).
 * The registry's generic controllers (resource.controller.ts, import.controller.ts) are expanded per
 * resource definition (resources.ts): each one's answer is its `view` allow-list of its entity.
 * src/infra/http/openapi.ts merges the result into the document (and adds the error envelope for
 * 400 / 401 / 403 that every validated / authenticated route can give).
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.join(__dirname, '..');
const OUT = path.join(root, 'src', 'infra', 'http', 'openapi-responses.generated.ts');
const SRC = path.join(root, 'src') + path.sep;
const HTTP_METHODS = new Set(['Get', 'Post', 'Put', 'Patch', 'Delete']);
const MAX_CALL_DEPTH = 6;

/** `Errors.<name>(…)` → status (infra/http/errors.ts). */
const ERRORS_STATUS = {
  validation: 400,
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  outOfScope: 403,
  notFound: 404,
  conflict: 409,
  gone: 410,
  tooMany: 429,
  payloadTooLarge: 413,
};
const DEFAULT_CODE = {
  validation: 'VALIDATION_FAILED',
  outOfScope: 'AUTH.OUT_OF_SCOPE',
  forbidden: 'AUTH.FORBIDDEN',
  unauthorized: 'AUTH.UNAUTHENTICATED',
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
};
const HTTP_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE_ENTITY: 422,
  TOO_MANY_REQUESTS: 429,
  SERVICE_UNAVAILABLE: 503,
  BAD_GATEWAY: 502,
  GATEWAY_TIMEOUT: 504,
};
const NEST_EXCEPTIONS = {
  BadRequestException: 400,
  UnauthorizedException: 401,
  ForbiddenException: 403,
  NotFoundException: 404,
  ConflictException: 409,
  GoneException: 410,
  PayloadTooLargeException: 413,
  UnsupportedMediaTypeException: 415,
};

function program() {
  const cfg = ts.getParsedCommandLineOfConfigFile(
    path.join(root, 'tsconfig.build.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  return ts.createProgram({ rootNames: cfg.fileNames.filter((f) => path.resolve(f) !== OUT), options: { ...cfg.options, noEmit: true } });
}

const decoratorName = (d) => {
  const e = ts.isCallExpression(d.expression) ? d.expression.expression : d.expression;
  return ts.isIdentifier(e) ? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : undefined;
};
const decorators = (node) => (ts.canHaveDecorators(node) ? (ts.getDecorators(node) ?? []) : []);
const hasDecorator = (node, name) => decorators(node).some((d) => decoratorName(d) === name);

function generate() {
  const prog = program();
  const checker = prog.getTypeChecker();
  const components = {};
  const componentOf = new Map(); // symbol → component name
  const problems = [];

  // ---- types → schemas
  const isEntityClass = (sym) => (sym?.declarations ?? []).some((d) => ts.isClassDeclaration(d) && hasDecorator(d, 'Entity'));
  const symName = (t) => t.aliasSymbol?.name ?? t.symbol?.name;

  function namedSymbol(t) {
    // A named, non-generic interface / class / alias becomes a component; instantiations of generics stay inline.
    if (t.aliasSymbol) return t.aliasTypeArguments?.length ? undefined : t.aliasSymbol;
    const s = t.symbol;
    if (!s || !(s.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class))) return undefined;
    if (t.objectFlags & ts.ObjectFlags.Reference && checker.getTypeArguments(t).length) return undefined;
    const decl = s.declarations?.[0];
    if (!decl || !decl.getSourceFile().fileName.startsWith(SRC)) return undefined;
    return s;
  }

  function toSchema(t, where, depth = 0) {
    if (depth > 40) throw new Error(`${where}: type nested too deep`);
    const f = t.flags;
    if (f & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) {
      problems.push(`${where}: answers an untyped value (any/unknown)`);
      return {};
    }
    if (f & ts.TypeFlags.StringLiteral) return { type: 'string', enum: [t.value] };
    if (f & ts.TypeFlags.NumberLiteral) return { type: 'number', enum: [t.value] };
    if (f & ts.TypeFlags.BooleanLiteral) return { type: 'boolean', enum: [t.intrinsicName === 'true'] };
    if (f & ts.TypeFlags.StringLike) return { type: 'string' };
    if (f & ts.TypeFlags.NumberLike) return { type: 'number' };
    if (f & ts.TypeFlags.BooleanLike) return { type: 'boolean' };
    if (f & ts.TypeFlags.BigIntLike) return { type: 'string', description: 'a 64-bit integer, as a decimal string' };
    if (f & ts.TypeFlags.Null) return { nullable: true };
    if (f & ts.TypeFlags.Union) return unionSchema(t, where, depth);
    if (f & ts.TypeFlags.Object || f & ts.TypeFlags.Intersection) return objectSchema(t, where, depth);
    if (f & ts.TypeFlags.NonPrimitive) return { type: 'object' };
    problems.push(`${where}: cannot describe type ${checker.typeToString(t)}`);
    return {};
  }

  function unionSchema(t, where, depth) {
    let parts = t.types.filter((x) => !(x.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)));
    const nullable = parts.some((x) => x.flags & ts.TypeFlags.Null);
    parts = parts.filter((x) => !(x.flags & ts.TypeFlags.Null));
    let out;
    if (parts.length && parts.every((x) => x.flags & ts.TypeFlags.BooleanLiteral)) out = { type: 'boolean' };
    else if (parts.length && parts.every((x) => x.flags & ts.TypeFlags.StringLiteral)) out = { type: 'string', enum: parts.map((x) => x.value).sort() };
    else if (parts.length && parts.every((x) => x.flags & ts.TypeFlags.NumberLiteral))
      out = { type: 'number', enum: parts.map((x) => x.value).sort((a, b) => a - b) };
    else {
      // `true | false | 'x'` arrives as three members: fold the booleans back into one.
      const bools = parts.filter((x) => x.flags & ts.TypeFlags.BooleanLiteral);
      const rest = parts.filter((x) => !(x.flags & ts.TypeFlags.BooleanLiteral));
      const schemas = rest.map((x) => toSchema(x, where, depth + 1));
      if (bools.length) schemas.push({ type: 'boolean' });
      const unique = [];
      for (const s of schemas) if (!unique.some((u) => JSON.stringify(u) === JSON.stringify(s))) unique.push(s);
      out = unique.length === 1 ? unique[0] : unique.length === 0 ? {} : { anyOf: unique };
    }
    if (!nullable) return out;
    if (out.$ref || out.anyOf) return { ...(out.$ref ? { allOf: [out] } : out), nullable: true };
    return { ...out, nullable: true, ...(out.enum ? { enum: [...out.enum, null] } : {}) };
  }

  function objectSchema(t, where, depth) {
    const name = symName(t);
    if (name === 'Date' && !t.aliasSymbol) return { type: 'string', format: 'date-time' };
    if (name === 'StreamableFile') return { type: 'string', format: 'binary' };
    if (['Buffer', 'Uint8Array', 'ArrayBuffer'].includes(name)) return { type: 'string', format: 'binary' };
    if (checker.isArrayType(t) || checker.isTupleType(t)) {
      const args = checker.getTypeArguments(t);
      if (checker.isTupleType(t)) {
        const items = args.map((a) => toSchema(a, where, depth + 1));
        return { type: 'array', items: items.length === 1 ? items[0] : { anyOf: items }, minItems: args.length, maxItems: args.length };
      }
      return { type: 'array', items: toSchema(args[0], `${where}[]`, depth + 1) };
    }
    if (isEntityClass(t.symbol)) {
      problems.push(`${where}: answers the entity ${t.symbol.name}: build the answer from an allow-list (infra/http/views.ts)`);
      return {};
    }
    const named = namedSymbol(t);
    if (named) {
      let comp = componentOf.get(named);
      if (!comp) {
        comp = uniqueName(named.name);
        componentOf.set(named, comp);
        components[comp] = {}; // placeholder: a type that refers to itself gets a $ref
        components[comp] = plainObject(t, `${comp}`, depth);
      }
      return { $ref: `#/components/schemas/${comp}` };
    }
    return plainObject(t, where, depth);
  }

  function uniqueName(base) {
    let n = base;
    for (let i = 2; components[n] !== undefined; i++) n = `${base}${i}`;
    return n;
  }

  function plainObject(t, where, depth) {
    const properties = {};
    const required = [];
    for (const p of checker.getPropertiesOfType(t)) {
      const decl = p.valueDeclaration ?? p.declarations?.[0];
      if (decl && (ts.isMethodDeclaration(decl) || ts.isMethodSignature(decl))) continue;
      const pt = checker.getTypeOfSymbol(p);
      if (pt.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)) continue; // never in the JSON
      if (pt.getCallSignatures().length && !(pt.flags & ts.TypeFlags.Union)) continue;
      const optional = !!(p.flags & ts.SymbolFlags.Optional) || (pt.flags & ts.TypeFlags.Union && pt.types.some((x) => x.flags & ts.TypeFlags.Undefined));
      const s = toSchema(pt, `${where}.${p.name}`, depth + 1);
      properties[p.name] = s;
      if (!optional) required.push(p.name);
    }
    const out = { type: 'object', properties };
    if (required.length) out.required = required;
    const index = checker.getIndexInfosOfType(t).find((i) => i.keyType.flags & ts.TypeFlags.String);
    if (index)
      out.additionalProperties = index.type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown) ? true : toSchema(index.type, `${where}[key]`, depth + 1);
    return out;
  }

  /** A method's answer: awaited return type → { schema } or { file } or { empty }. */
  function answerOf(method, where) {
    const sig = checker.getSignatureFromDeclaration(method);
    let t = checker.getReturnTypeOfSignature(sig);
    t = checker.getAwaitedType(t) ?? t;
    if (t.flags & (ts.TypeFlags.Void | ts.TypeFlags.Undefined)) return { empty: true };
    if (symName(t) === 'StreamableFile') return { file: true };
    return { schema: toSchema(t, where) };
  }

  // ---- errors reachable from a method body
  const errorCache = new Map();
  function errorsOf(fn, depth) {
    if (errorCache.has(fn)) return errorCache.get(fn);
    const found = {}; // status → Set(code)
    errorCache.set(fn, found); // cycles: an empty contribution while this one is computed
    const add = (status, code) => (found[status] ??= new Set()).add(code ?? '');
    const codeText = (arg) => {
      if (!arg) return undefined;
      if (!arg.getText().startsWith('ErrorCode.')) return undefined;
      // The code's value (the catalogue is \`as const\`): a key path is not the code (ErrorCode.HTTP.NOT_FOUND is 'NOT_FOUND').
      const t = checker.getTypeAtLocation(arg);
      return t.isStringLiteral() ? t.value : undefined;
    };
    const visit = (node) => {
      if (ts.isCallExpression(node)) {
        const callee = node.expression;
        if (ts.isPropertyAccessExpression(callee) && callee.expression.getText() === 'Errors' && ERRORS_STATUS[callee.name.text]) {
          const n = callee.name.text;
          add(ERRORS_STATUS[n], codeText(node.arguments[0]) ?? DEFAULT_CODE[n]);
        } else if (depth < MAX_CALL_DEPTH) {
          const decl = checker.getResolvedSignature(node)?.declaration;
          if (decl && decl.body && decl.getSourceFile().fileName.startsWith(SRC)) merge(found, errorsOf(decl, depth + 1));
        }
      } else if (ts.isNewExpression(node)) {
        const name = node.expression.getText();
        if (name === 'DomainError' && node.arguments?.length) {
          const st = node.arguments[0].getText().replace(/^HttpStatus\./, '');
          const status = HTTP_STATUS[st] ?? Number(st);
          if (status >= 400) add(status, codeText(node.arguments[1]));
        } else if (NEST_EXCEPTIONS[name]) add(NEST_EXCEPTIONS[name], undefined);
      }
      ts.forEachChild(node, visit);
    };
    if (fn.body) visit(fn.body);
    return found;
  }
  const merge = (into, from) => {
    for (const [s, codes] of Object.entries(from)) for (const c of codes) (into[s] ??= new Set()).add(c);
  };
  const errorsJson = (found) =>
    Object.fromEntries(
      Object.entries(found)
        .filter(([s]) => Number(s) !== 500)
        .map(([s, codes]) => [s, [...codes].filter(Boolean).sort()]),
    );

  // ---- the registry's resource definitions (resources.ts): path, entity, view allow-list
  const defs = [];
  const resourcesFile = prog.getSourceFile(path.join(root, 'src', 'modules', 'registry', 'resources.ts'));
  resourcesFile.forEachChild(function walk(n) {
    if (ts.isVariableDeclaration(n) && n.type && n.type.getText().startsWith('ResourceDef<') && n.initializer && ts.isObjectLiteralExpression(n.initializer)) {
      const prop = (k) => n.initializer.properties.find((p) => p.name?.getText() === k)?.initializer;
      const entityType = checker.getTypeFromTypeNode(n.type.typeArguments[0]);
      defs.push({ path: prop('path').text, entityType, entity: n.type.typeArguments[0].getText(), view: prop('view').elements.map((e) => e.text) });
    }
    ts.forEachChild(n, walk);
  });
  const pascal = (s) => s.replace(/(^|[-_])([a-z])/g, (_, __, c) => c.toUpperCase());

  function viewSchema(def) {
    const comp = `${def.entity}View`;
    if (!components[comp]) {
      const properties = {};
      const required = [];
      for (const k of def.view) {
        const p = def.entityType.getProperty(k);
        if (!p) throw new Error(`resources.ts: ${def.path} view names ${k}, not a property of ${def.entity}`);
        const pt = checker.getTypeOfSymbol(p);
        properties[k] = toSchema(pt, `${comp}.${k}`);
        required.push(k);
      }
      components[comp] = { type: 'object', properties, required };
    }
    return { $ref: `#/components/schemas/${comp}` };
  }
  const pageOf = (items) => ({
    type: 'object',
    properties: { items: { type: 'array', items }, total: { type: 'number' }, limit: { type: 'number' }, offset: { type: 'number' } },
    required: ['items', 'total', 'limit', 'offset'],
  });

  // ---- what each route is for: its doc comment (the first sentence the summary, the whole the description)
  function docOf(m) {
    const jsdoc = ts.getJSDocCommentsAndTags(m).filter(ts.isJSDoc).pop();
    const text = jsdoc ? (ts.getTextOfJSDocComment(jsdoc.comment) ?? '').trim() : '';
    if (!text) return {};
    const flat = text.replace(/\s+/g, ' ');
    const summary = (/^(.+?[.。])(?:\s|$)/.exec(flat)?.[1] ?? flat).split(': `')[0].replace(/[.。:]$/, '');
    return { summary, description: text };
  }

  // ---- every controller method
  const operations = {};
  for (const sf of prog.getSourceFiles()) {
    if (!sf.fileName.startsWith(SRC) || sf.isDeclarationFile) continue;
    sf.forEachChild(function walk(n) {
      if (ts.isClassDeclaration(n) && hasDecorator(n, 'Controller') && n.name) {
        const cls = n.name.text;
        const factory = cls === 'ResourceController' || cls === 'ImportController';
        for (const m of n.members) {
          if (!ts.isMethodDeclaration(m) || !decorators(m).some((d) => HTTP_METHODS.has(decoratorName(d)))) continue;
          const method = m.name.getText();
          const errors = errorsJson(errorsOf(m, 0));
          const doc = docOf(m);
          if (cls === 'ResourceController') {
            for (const def of defs) {
              const view = viewSchema(def);
              const answer = method === 'list' ? { schema: pageOf(view) } : method === 'remove' ? { empty: true } : { schema: view };
              // Postgres' unique and foreign keys answer 409 CONFLICT.* on writes (pg-errors.ts).
              const errs =
                method === 'list' || method === 'get'
                  ? errors
                  : { ...errors, 409: [...new Set([...(errors[409] ?? []), 'CONFLICT.DUPLICATE', 'CONFLICT.REFERENCE'])].sort() };
              operations[`${pascal(def.path)}Controller_${method}`] = { ...doc, ...answer, errors: errs };
            }
          } else {
            const key = factory ? `*${cls}_${method}` : `${cls}_${method}`;
            operations[key] = { ...doc, ...answerOf(m, key), errors };
          }
        }
      }
      if (!ts.isClassDeclaration(n) || !hasDecorator(n, 'Controller')) ts.forEachChild(n, walk);
    });
  }
  if (problems.length) throw new Error(`cannot describe every answer:\n  ${[...new Set(problems)].join('\n  ')}`);
  const sorted = (o) =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  return { components: sorted(components), operations: sorted(operations) };
}

async function render(data) {
  const prettier = require('prettier');
  const text =
    `/* Generated by scripts/openapi-responses.js from the controllers' return types and the errors their code can throw: do not edit; run \`npm run build\`. */\n` +
    `import type { OpenApiResponses } from './openapi';\n\n` +
    `export const OPENAPI_RESPONSES: OpenApiResponses = ${JSON.stringify(data)};\n`;
  const options = (await prettier.resolveConfig(OUT)) ?? {};
  return prettier.format(text, { ...options, filepath: OUT });
}

async function main() {
  const text = await render(generate());
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${path.relative(root, OUT)} is not what the code gives now: run \`node scripts/openapi-responses.js\` and commit it\n`);
      process.exit(1);
    }
    process.stdout.write(`${path.relative(root, OUT)} is current\n`);
    return;
  }
  fs.writeFileSync(OUT, text);
  process.stdout.write(`wrote ${path.relative(root, OUT)}\n`);
}

if (require.main === module)
  main().catch((e) => {
    process.stderr.write(`${e.stack || e.message}\n`);
    process.exit(1);
  });
module.exports = { generate };

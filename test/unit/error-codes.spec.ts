import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ErrorCode } from '../../src/infra/http/error-codes';
import { Errors } from '../../src/infra/http/errors';
import { toActionError } from '../../src/modules/console/console-actions';

/** Every [key path, code] of the catalogue. */
function entries(node: object, path: string[] = []): [string[], string][] {
  return Object.entries(node).flatMap(([k, v]) => (typeof v === 'string' ? [[[...path, k], v] as [string[], string]] : entries(v as object, [...path, k])));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error code catalogue', () => {
  const all = entries(ErrorCode);

  it('spells each code by its key path (framework fallbacks: by their key), each code once', () => {
    const misnamed = all.filter(([path, code]) => code !== (path[0] === 'HTTP' ? path[1] : path.join('.')));
    expect(misnamed).toEqual([]);
    const codes = all.map(([, code]) => code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('is the only place a code is written: throw sites name the catalogue, not a string', () => {
    const codes = new Set(all.map(([, code]) => code));
    const root = join(__dirname, '..', '..');
    const literals: string[] = [];
    for (const file of sourceFiles(join(root, 'src'))) {
      if (file.endsWith(join('infra', 'http', 'error-codes.ts'))) continue;
      // Generated from the throw sites (scripts/openapi-responses.js): its codes are checked against the catalogue below.
      if (file.endsWith('.generated.ts')) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const [, s] of line.matchAll(/['"]([A-Z][A-Z0-9_.]+)['"]/g)) if (codes.has(s)) literals.push(`${relative(root, file)}:${i + 1} '${s}'`);
        });
    }
    expect(literals).toEqual([]);
  });

  it('documents only catalogued codes in the generated OpenAPI answers', () => {
    const codes = new Set(all.map(([, code]) => code));
    const generated = readFileSync(join(__dirname, '..', '..', 'src', 'infra', 'http', 'openapi-responses.generated.ts'), 'utf8');
    const named = [...generated.matchAll(/errors: \{([^}]*)\}/g)].flatMap(([, body]) => [...body.matchAll(/'([A-Z][A-Z0-9_.]+)'/g)].map(([, c]) => c));
    expect(named.length).toBeGreaterThan(100);
    expect(named.filter((c) => !codes.has(c))).toEqual([]);
  });

  it('accepts only catalogued codes, and keeps the not-found message', () => {
    // Compile-time half (npm run typecheck fails if any of these lines stops being an error):
    // @ts-expect-error a misspelled code does not compile
    const _typo = () => Errors.conflict('ALARM.ALREADY_ACKNOWLEGED', 'x');
    // @ts-expect-error nor a not-found code of an entity the catalogue does not list
    const _unknownEntity = () => Errors.notFound('SCHOOLS.NOT_FOUND');
    // @ts-expect-error nor a catalogued code that is not a not-found code
    const _notANotFound = () => Errors.notFound(ErrorCode.ALARM.LATCHED);
    expect(Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND, 'p1')).toMatchObject({
      status: 404,
      code: 'PROTECTION_POST.NOT_FOUND',
      message: 'protection_post p1 not found',
    });
    expect(Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND).message).toBe('incident not found');
  });
});

describe('errors over the console socket', () => {
  it('are bounded like HTTP answers: long messages and details cut, lists capped (issue 12: no route echoes unbounded input)', () => {
    const huge = 'x'.repeat(200_000);
    const e = Errors.validation(Array.from({ length: 5000 }, (_, i) => ({ field: `f${i}`, reason: huge })));
    e.message = huge;
    const answer = toActionError(e);
    expect(answer).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect(answer.message.length).toBeLessThan(1100);
    const fields = (answer.details as { fields: ({ reason: string } | { truncated: number })[] }).fields;
    expect(fields).toHaveLength(1001);
    expect(fields.at(-1)).toEqual({ truncated: 4000 });
    expect(Math.max(...fields.slice(0, -1).map((f) => (f as { reason: string }).reason.length))).toBeLessThan(250);
  });
});

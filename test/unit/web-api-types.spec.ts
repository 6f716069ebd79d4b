import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The web console's REST types (web/src/shared/api-schema.d.ts) are generated from the api's
 * OpenAPI document and committed. They must be what the api generates now: a DTO changed
 * without regenerating them would let the web app compile against an api that no longer exists.
 * Runs scripts/web-api-types.js --check on the compiled api (the test suite's global setup builds it).
 */
describe('web console API types', () => {
  it('are current with the OpenAPI document (else: npm run web:api-types)', () => {
    const root = join(__dirname, '..', '..');
    let out = '';
    try {
      out = execFileSync(process.execPath, [join(root, 'scripts', 'web-api-types.js'), '--check'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string };
      throw new Error(`${err.stderr ?? ''}${err.stdout ?? ''}`);
    }
    expect(out).toContain('is current');
  });
});

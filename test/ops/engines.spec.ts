/**
 * One Node line everywhere (issue 17 §2): the `engines` we declare, every locked package's own
 * `engines.node`, the Dockerfile's base image, @types/node, the README and the Node that runs CI
 * (this process) must agree — else `npm ci` prints EBADENGINE lines and the image runs a Node the
 * packages were not built for. Reads package.json, package-lock.json, Dockerfile and README.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as semver from 'semver';

const root = join(__dirname, '..', '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; devDependencies: Record<string, string> };
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
const declared = pkg.engines.node;
const floor = semver.minVersion(declared)!;

describe('Node version agreement', () => {
  it('declares a valid range whose floor is a Node LTS line', () => {
    expect(semver.validRange(declared)).not.toBeNull();
    expect(floor.major % 2).toBe(0);
  });

  it('runs (locally and in CI) on a Node the package declares', () => {
    expect({ node: process.version, satisfies: semver.satisfies(process.version, declared) }).toEqual({ node: process.version, satisfies: true });
  });

  it('locks no package whose engines.node refuses the declared floor or the running Node (zero EBADENGINE)', () => {
    const refused: string[] = [];
    for (const [path, meta] of Object.entries(lock.packages)) {
      if (path === '' || !meta.engines || Array.isArray(meta.engines) || !meta.engines.node) continue;
      const range = meta.engines.node;
      for (const node of [floor.version, process.version]) {
        if (!semver.satisfies(node, range)) refused.push(`${path.replace(/^.*node_modules\//, '')} wants node ${range}, refuses ${node}`);
      }
    }
    expect(refused).toEqual([]);
  });

  it('builds and runs the image on the same Node major', () => {
    const froms = [...read('Dockerfile').matchAll(/^FROM\s+node:(\d+)[^\s]*/gm)].map((m) => Number(m[1]));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(new Set(froms)).toEqual(new Set([floor.major]));
  });

  it('types the Node API of that major and states the floor in the README', () => {
    expect(semver.minVersion(pkg.devDependencies['@types/node'])!.major).toBe(floor.major);
    expect(read('README.md')).toContain(`Node.js ≥ ${floor.major}.${floor.minor}`);
  });
});

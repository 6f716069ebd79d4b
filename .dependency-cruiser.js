/**
 * The layers of src/ and the rules that keep them (npm run lint runs this after ESLint; the
 * diagram in docs/ARCHITECTURE.md is drawn from the same LAYERS (scripts/architecture/layers.js) by
 * `npm run arch:diagram`
 * and test/unit/architecture.spec.ts keeps the two equal).
 *
 *   config ← infra ← modules (in the layers below, lower first) ← app.module / bootstrap / cli / tools
 *
 * - A module imports a lower-layer module only through its index.ts (its public surface), never
 *   its entities, queries or other internals; modules in the same layer do not import each other.
 * - infra and config never import modules; nothing imports the app or the tools.
 * - A new module must be placed in a layer (scripts/architecture/layers.js) before it may import another module.
 */
'use strict';

const { LAYERS } = require('./scripts/architecture/layers');

const ALL = LAYERS.flat();
const any = (names) => `^src/modules/(${names.join('|')})/`;

const layerRules = LAYERS.flatMap((layer, i) => {
  const notBelow = LAYERS.slice(i).flat();
  return layer.map((name) => ({
    name: `layer:${name}`,
    comment: `${name} may import only modules of lower layers (see scripts/architecture/layers.js)`,
    severity: 'error',
    from: { path: `^src/modules/${name}/` },
    to: { path: any(notBelow.filter((n) => n !== name)) },
  }));
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles make load order and responsibilities unclear.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'config-is-the-floor',
      comment: 'The typed configuration imports nothing of ours above it.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: '^src/(infra|modules|tools)/|^src/[^/]+\\.ts$' },
    },
    {
      name: 'infra-below-modules',
      comment: 'Infrastructure (database, queue, redis, http, access, observability) never imports a capability module.',
      severity: 'error',
      from: { path: '^src/infra/' },
      to: { path: '^src/(modules|tools)/|^src/[^/]+\\.ts$' },
    },
    {
      name: 'module-through-index',
      comment: 'Another module is reached only through its index.ts (or a *.catalogue.ts of event types): never its entities, queries or internals.',
      severity: 'error',
      from: { path: '^src/modules/([^/]+)/' },
      to: { path: '^src/modules/[^/]+/', pathNot: ['^src/modules/$1/', '^src/modules/[^/]+/(index|[^/]+\\.catalogue)\\.ts$'] },
    },
    {
      name: 'catalogues-are-pure',
      comment: 'A *.catalogue.ts holds types and constants only (the web console imports it too): it imports only other catalogues.',
      severity: 'error',
      from: { path: '\\.catalogue\\.ts$' },
      to: { path: '^src/', pathNot: '\\.catalogue\\.ts$' },
    },
    {
      name: 'app-through-index',
      comment: 'The app, the CLI and the tools reach modules through their index.ts too.',
      severity: 'error',
      from: { path: '^src/(tools/|[^/]+\\.ts$)' },
      to: { path: '^src/modules/[^/]+/', pathNot: '^src/modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'entities-stay-home',
      comment: "A module's public surface does not hand out its tables.",
      severity: 'error',
      from: { path: '^src/modules/([^/]+)/index\\.ts$' },
      to: { path: '^src/modules/$1/(entities/|.*\\.entity\\.ts$)' },
    },
    {
      name: 'nothing-imports-the-top',
      comment: 'Nothing below imports the app module, the boot code or the tools.',
      severity: 'error',
      from: { path: '^src/(config|infra|modules)/' },
      to: { path: '^src/(tools/|[^/]+\\.ts$)' },
    },
    {
      name: 'module-in-a-layer',
      comment: 'Place a new module in LAYERS (scripts/architecture/layers.js) before it imports another module.',
      severity: 'error',
      from: { path: '^src/modules/', pathNot: any(ALL) },
      to: { path: '^src/modules/' },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

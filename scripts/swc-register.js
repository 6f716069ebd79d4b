'use strict';
/**
 * Loads TypeScript sources in a child process of a test (node -r scripts/swc-register.js file.ts):
 * the SIP helper processes (src/modules/gb28181/sip-workers.ts) are forked from src/ when the
 * primary runs under Jest; a built service forks dist/…/sip-worker.js and never needs this.
 * Same swc options as jest.config.js.
 */
const { readFileSync } = require('node:fs');
const swc = require('@swc/core');

const options = {
  jsc: { parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true }, target: 'es2023' },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(readFileSync(filename, 'utf8'), { ...options, filename });
  module._compile(code, filename);
};

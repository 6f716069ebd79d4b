import js from '@eslint/js';
import pluginVue from 'eslint-plugin-vue';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-explicit-any': 'error',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'class-validator',
              importNames: ['IsISO8601', 'IsDateString', 'IsDate', 'MinDate', 'MaxDate'],
              message:
                'Dates go through the one strict validator: IsStrictDate / IsStrictDateTime (an instant) / IsStrictDateTimeOrDay (the bound of a range filter) from src/infra/http/dates.ts.',
            },
          ],
        },
      ],
    },
  },
  // Layer and module boundaries are checked by dependency-cruiser (.dependency-cruiser.js), also part of npm run lint.
  // The web console (web/): Vue single-file components and browser TypeScript.
  ...pluginVue.configs['flat/essential'],
  {
    files: ['web/**/*.{ts,mts,vue}'],
    languageOptions: { globals: { ...globals.browser }, parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.vue'], sourceType: 'module' } },
    rules: {
      // Text is always text: no markup from data.
      'vue/no-v-html': 'error',
      'vue/multi-word-component-names': 'off',
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(\\.\\./){2,}src/', message: 'The web app imports server code only through web/src/shared/server.ts.' }] },
      ],
    },
  },
  { files: ['web/src/shared/server.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['web/vite.config.mts', 'web/build/**'], languageOptions: { globals: { ...globals.node } } },
);

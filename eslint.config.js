import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-results/**', '.venv/**', 'bench/results/**', '**/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { paths: [{ name: 'electron', message: 'electron is imported only in electron/main.ts and electron/preload.cts' }] }],
    },
  },
  {
    files: ['electron/main.ts', 'electron/preload.cts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['engine/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/renderer/**', '**/electron/**', '**/host/**', 'electron', 'react', 'react-dom'], message: 'the engine imports nothing from the UI, the host or Electron' }] }],
    },
  },
  {
    // The node host (services, web host, CLI) reaches the engine through its facade only, and never the UI or Electron.
    files: ['host/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'electron is imported only in electron/main.ts and electron/preload.cts' }],
          patterns: [
            { group: ['**/engine/**', '!**/engine/host-api.ts'], message: 'the host imports the engine through engine/host-api.ts only' },
            { group: ['**/renderer/**', '**/electron/**', 'react', 'react-dom'], message: 'the host imports nothing from the UI or the Electron shell' },
          ],
        },
      ],
    },
  },
  {
    // The contract both sides share: plain data and its zod schemas, so neither side's code can leak into the other.
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/engine/**', '**/electron/**', '**/host/**', '**/renderer/**', 'node:*', 'electron', 'react', 'react-dom'], message: 'common/ holds the shared contract: zod and plain TypeScript only' }] }],
    },
  },
  {
    files: ['renderer/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/engine/**', '**/electron/**', '**/host/**', 'node:*', 'electron'], message: 'the renderer talks to the services only through common/protocol.ts' }] }],
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);

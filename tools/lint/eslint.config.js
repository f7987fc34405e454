// eslint for the whole repository (run from the root: `npm run lint`). Type-aware, so floating promises
// (a forgotten await: a write that may not have happened when the run reports success) are errors.
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default tseslint.config(
  {
    basePath: root,
    ignores: ['**/node_modules/**', '**/dist/**', 'core/create/templates/**', '**/fixtures/**', 'tools/**', 'runs/**'],
  },
  {
    basePath: root,
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // The codebase's conventions, deliberately: `_unused` names, `as never` in tests, non-null assertions after checks.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    basePath: root,
    files: ['**/test/**/*.ts', 'test/**/*.ts'],
    // chai's property assertions (`expect(x).to.exist`) are expressions by design
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);

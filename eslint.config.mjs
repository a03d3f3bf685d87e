// Type-aware ESLint for every package and app. The domain package may not import frameworks or
// infrastructure (ARCHITECTURE: packages/domain is pure TypeScript).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/*.js',
      '**/*.mjs',
      'bench/**',
      'docs/**',
      'test/e2e/openapi-client/generated/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*/src/*', '../../../packages/*'], message: 'Import packages by name (@entitle/...).' },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@nestjs/*', 'typeorm', 'bullmq', 'ioredis', 'pg', 'zod', '@entitle/*'],
              message: 'packages/domain is pure TypeScript: no frameworks, no infrastructure, no workspace packages.',
            },
          ],
        },
      ],
    },
  },
  {
    // The receiver kit is published on its own for webhook authors: it may use Node alone (its tests
    // may use the server's packages, to check it against what the system really sends).
    files: ['packages/receiver/src/**/*.ts'],
    ignores: ['**/*.spec.ts', 'packages/receiver/src/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '@entitle/*',
                '../../*',
                '@nestjs/*',
                'typeorm',
                'bullmq',
                'ioredis',
                'pg',
                'zod',
                'jose',
                'undici',
              ],
              message: 'packages/receiver has no runtime dependencies and imports no workspace package.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', '**/*.integration-spec.ts', '**/*.e2e-spec.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);

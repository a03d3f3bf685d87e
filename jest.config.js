/**
 * Jest projects: unit (`*.spec.ts` beside the code, and `scripts/*.spec.mjs`), integration (`*.integration-spec.ts`, real
 * PostgreSQL and Redis, one cloned database and queue prefix per file) and e2e (`test/e2e`, the
 * five built apps as processes). Tests stay CommonJS; Nest 12, jose and openid-client (with oauth4webapi) are ESM, so SWC turns them
 * into CJS on the way in (DEPENDENCIES.md pitfall 2).
 */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];
const common = {
  transform: { '^.+\\.ts$': swc, '^.+\\.m?js$': ['@swc/jest', { module: { type: 'commonjs' } }] },
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm|@nestjs|jose|openid-client|oauth4webapi)/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  testEnvironment: 'node',
};

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      // The repository's own scripts (start:all's log formatting) are plain ESM; SWC takes them too.
      testMatch: ['<rootDir>/{apps,packages,examples}/*/src/**/*.spec.ts', '<rootDir>/scripts/**/*.spec.mjs'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,packages}/*/{src,test}/**/*.integration-spec.ts'],
      globalSetup: '<rootDir>/test/global-setup.js',
      setupFilesAfterEnv: ['<rootDir>/test/timeout-long.js'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/global-setup.js',
      setupFilesAfterEnv: ['<rootDir>/test/timeout-long.js'],
    },
  ],
};

// ESM TypeScript under jest: ts-jest compiles test files and the modules
// they import; integration tests run the built binary (dist/) instead.
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testTimeout: 60000,
  globalTeardown: '<rootDir>/test/helpers/kill-leftovers.mjs',
};

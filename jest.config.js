/**
 * Unit specs beside the code, and the end-to-end suites in test/, which run twice: once on each
 * HTTP adapter the service supports (HTTP_ADAPTER), so both stay correct.
 */
const base = {
  rootDir: '.',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testEnvironment: '<rootDir>/test/jest-environment.js',
};

const e2e = (adapter) => ({
  ...base,
  displayName: `e2e ${adapter}`,
  testRegex: ['test/.*\\.e2e-spec\\.ts$'],
  globals: { TEST_HTTP_ADAPTER: adapter },
});

/** @type {import('jest').Config} */
module.exports = {
  // Real models, worker threads and child processes: generous, since these machines are shared.
  testTimeout: 60000,
  // Model sessions and servers are heavy; two workers match the two cores these machines have.
  maxWorkers: 2,
  projects: [{ ...base, displayName: 'unit', testRegex: ['src/.*\\.spec\\.ts$'] }, e2e('express'), e2e('fastify')],
};

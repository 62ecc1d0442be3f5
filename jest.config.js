/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  moduleFileExtensions: ['js', 'json', 'ts'],
  testRegex: ['src/.*\\.spec\\.ts$', 'test/.*\\.e2e-spec\\.ts$'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testEnvironment: '<rootDir>/test/jest-environment.js',
  testTimeout: 60000,
  // Model sessions and servers are heavy; two workers match the two cores these machines have.
  maxWorkers: 2,
};

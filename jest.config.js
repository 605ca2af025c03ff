// Tests run one file at a time: the integration suites start real Kafka brokers, Slurm
// daemons and jobcompd processes, and this machine has 2 cores. Type checking is done
// by `tsc` in the build step, so ts-jest only transpiles.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Real Slurm releases built from source: `make conformance` (jest.conformance.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/third-party/'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  maxWorkers: 1,
  testTimeout: 30000,
  verbose: true,
};

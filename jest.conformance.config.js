// `make conformance`: the suite against Slurm releases built from source (issue 12), kept
// out of `make test` because it needs the Slurm source archives (../shared/slurm-src by
// default, SLURM_SRC to change it). One file at a time, like the main suite.
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/test/third-party'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 600000,
};

// Jest's defaults (babel-jest transform, a worker per file, a module registry
// and a vm context per test file), only the test folder set.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/jest'],
  testTimeout: 120000,
};

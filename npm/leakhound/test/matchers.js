'use strict';
// Matchers for Jest and Vitest (same expect.extend shape):
//   await expect(fn).not.toLeak(options)
//   await expect(fn).toRestoreListeners()
//   await expect(fn).toCloseHandles()
// A matcher reports pass/fail and never flips pass for `.not` itself.

const { expectNoLeak, expectListenersRestored, expectHandlesClosed } = require('./index.js');

function isOurFailure(err) {
  return err && err.code === 'ERR_ASSERTION' && err.leakhound !== undefined;
}

const matchers = {
  async toLeak(received, options) {
    try {
      const report = await expectNoLeak(received, options);
      return {
        pass: false,
        message: () =>
          `expected the function to leak, but leakhound found nothing that grew in every round ` +
          `(${report.diagnosis.snapshots.length} snapshots, threshold ${report.diagnosis.min_growth_bytes_per_step} B per round)`,
      };
    } catch (err) {
      if (!isOurFailure(err)) throw err;
      return { pass: true, message: () => err.message };
    }
  },
  async toRestoreListeners(received) {
    try {
      await expectListenersRestored(received);
      return { pass: true, message: () => 'expected some listener to stay added, but every listener count is back to its baseline' };
    } catch (err) {
      if (!isOurFailure(err)) throw err;
      return { pass: false, message: () => err.message };
    }
  },
  async toCloseHandles(received, options) {
    try {
      await expectHandlesClosed(received, options);
      return { pass: true, message: () => 'expected a handle to stay open, but the function closed every handle it opened' };
    } catch (err) {
      if (!isOurFailure(err)) throw err;
      return { pass: false, message: () => err.message };
    }
  },
};

module.exports = { matchers };

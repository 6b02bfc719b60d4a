// Jest's module registry: a module loaded again in a fresh registry on
// every call (jest.isolateModules) is released with that registry, so it is
// not a leak per call.
const { expectNoLeak } = require('leakhound/test');

test('re-requiring through jest.isolateModules is not a leak per call', async () => {
  const report = await expectNoLeak(() => {
    jest.isolateModules(() => {
      require('../subjects.cjs');
    });
  }, { iterations: 20, rounds: 2 });
  expect(report.verdict).toBe('no-leak');
});

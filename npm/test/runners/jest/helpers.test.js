// leakhound's matchers under Jest (CommonJS, babel-jest, a vm context and a
// module registry per test file): each fails on the leaky function with
// leakhound's explanation and passes on the clean one.
const path = require('path');
require('leakhound/jest');
const s = require('../subjects.cjs');
const checks = require('../checks.cjs');

const subjects = path.join(__dirname, '..', 'subjects.cjs');
afterAll(() => s.cleanupLeaks());

test('not.toLeak fails on a leak and names the line', async () => {
  const err = await expect(s.leakyRemember).not.toLeak({ rounds: 2 }).then(() => null, (e) => e);
  checks.assertLeakMessage(err, subjects, true);
  console.log(`failure message under Jest:\n${err.message}`);
});

test('not.toLeak passes on clean code', async () => {
  await expect(s.cleanRemember).not.toLeak({ rounds: 2 });
});

test('toRestoreListeners fails on a listener left, passes with teardown', async () => {
  const err = await expect(s.leakyMount).toRestoreListeners().then(() => null, (e) => e);
  checks.assertListenersMessage(err, subjects, true);
  await expect(s.cleanMount).toRestoreListeners();
});

test('toCloseHandles fails on an interval left, passes when closed', async () => {
  const err = await expect(s.leakyPoll).toCloseHandles().then(() => null, (e) => e);
  checks.assertHandlesMessage(err, subjects, true);
  await expect(s.cleanServer).toCloseHandles();
});

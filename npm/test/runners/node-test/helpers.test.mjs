// leakhound/test under node:test, ESM: each helper fails on the leaky
// function (naming the user's line) and passes on the clean one.
import { test, after } from 'node:test';
import assert from 'node:assert';
import { fileURLToPath } from 'node:url';
import { expectNoLeak, expectListenersRestored, expectHandlesClosed } from 'leakhound/test';
import * as s from '../subjects.mjs';
import checks from '../checks.cjs';

const subjects = fileURLToPath(new URL('../subjects.mjs', import.meta.url));
after(() => s.cleanupLeaks());

test('expectNoLeak fails on a leak and names the line', async () => {
  const err = await expectNoLeak(s.leakyRemember).then(() => null, (e) => e);
  checks.assertLeakMessage(err, subjects);
  console.log(`# failure message:\n${err.message}`);
});

test('expectNoLeak passes on clean code', async () => {
  const report = await expectNoLeak(s.cleanRemember);
  assert.strictEqual(report.verdict, 'no-leak');
  assert.strictEqual(report.diagnosis.snapshots.length, 4);
  console.log(`# expectNoLeak took ${report.seconds.toFixed(1)} s`);
});

test('expectListenersRestored fails on a listener left behind', async () => {
  const err = await expectListenersRestored(s.leakyMount).then(() => null, (e) => e);
  checks.assertListenersMessage(err, subjects);
  console.log(`# listeners failure message:\n${err.message}`);
});

test('expectListenersRestored passes when the teardown removes it', async () => {
  await expectListenersRestored(s.cleanMount);
});

test('expectHandlesClosed fails on an interval left running', async () => {
  const err = await expectHandlesClosed(s.leakyPoll).then(() => null, (e) => e);
  checks.assertHandlesMessage(err, subjects);
});

test('expectHandlesClosed passes when the server and timer are closed', async () => {
  await expectHandlesClosed(s.cleanServer);
});

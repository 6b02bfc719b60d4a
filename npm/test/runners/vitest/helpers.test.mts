// leakhound/test under Vitest, in TypeScript: the matchers (typed through
// 'leakhound/vitest') and the helpers, on the threads and the forks pool.
import { test, expect, afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import 'leakhound/vitest';
import { expectNoLeak, expectHandlesClosed, type NoLeakReport } from 'leakhound/test';
import * as s from '../subjects.mjs';
import checks from '../checks.cjs';

const subjects = fileURLToPath(new URL('../subjects.mjs', import.meta.url));
afterAll(() => s.cleanupLeaks());

test('not.toLeak fails on a leak with leakhound\'s explanation', async () => {
  const err: unknown = await expect(s.leakyRemember).not.toLeak({ iterations: 100, rounds: 2 }).then(() => null, (e: unknown) => e);
  checks.assertLeakMessage(err, subjects, true, true);
  console.log(`failure message under Vitest:\n${(err as Error).message}`);
});

test('expectNoLeak passes on clean code, with a typed report', async () => {
  const report: NoLeakReport = await expectNoLeak(s.cleanRemember, { iterations: 100, rounds: 2 });
  expect(report.verdict).toBe('no-leak');
  expect(report.diagnosis.command).toBe('diagnose');
});

test('toRestoreListeners: fails on a listener left, passes with teardown', async () => {
  const err: unknown = await expect(s.leakyMount).toRestoreListeners().then(() => null, (e: unknown) => e);
  checks.assertListenersMessage(err, subjects, true, true);
  await expect(s.cleanMount).toRestoreListeners();
});

test('toCloseHandles: fails on an interval left, passes when closed', async () => {
  const err: unknown = await expect(s.leakyPoll).toCloseHandles().then(() => null, (e: unknown) => e);
  checks.assertHandlesMessage(err, subjects, true);
  await expect(s.cleanServer).toCloseHandles();
  await expectHandlesClosed(s.cleanServer);
});

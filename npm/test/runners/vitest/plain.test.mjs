// leakhound/test helpers called directly (not through the matchers) from an ESM Vitest file.
import { test, afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { expectListenersRestored } from 'leakhound/test';
import * as s from '../subjects.mjs';
import checks from '../checks.cjs';

const subjects = fileURLToPath(new URL('../subjects.mjs', import.meta.url));
afterAll(() => s.cleanupLeaks());

test('expectListenersRestored rejects with an AssertionError naming the line', async () => {
  checks.assertListenersMessage(await expectListenersRestored(s.leakyMount).then(() => null, (e) => e), subjects, false, true);
});

test('expectListenersRestored passes with teardown', async () => {
  await expectListenersRestored(s.cleanMount);
});

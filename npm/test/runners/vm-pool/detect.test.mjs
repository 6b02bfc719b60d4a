// Under Vitest's vmThreads/vmForks pools every test file's context stays
// alive, so in-process snapshots would blame the runner: the helper refuses
// and says what to configure.
import { test, expect } from 'vitest';
import { expectNoLeak } from 'leakhound/test';

test('expectNoLeak explains the vm pool instead of measuring it', async () => {
  const err = await expectNoLeak(() => {}).then(() => null, (e) => e);
  expect(err).toBeInstanceOf(Error);
  expect(err.message).toMatch(/vmThreads pool runs every test file in a vm context/);
  expect(err.message).toMatch(/pool: 'forks' or 'threads'/);
});

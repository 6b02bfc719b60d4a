// Type-only check of the Jest declarations: the matchers on @jest/globals' expect.
import { expect } from '@jest/globals';
import { matchers } from 'leakhound/jest';
import type { NoLeakOptions } from 'leakhound/test';

expect.extend(matchers);
const options: NoLeakOptions = { iterations: 50, rounds: 3, minGrowth: '4kB', maxGrowth: 1_000_000, keep: false };
export async function typed(fn: () => void): Promise<void> {
  await expect(fn).not.toLeak(options);
  await expect(fn).toRestoreListeners();
  await expect(fn).toCloseHandles({ settle: 10 });
}

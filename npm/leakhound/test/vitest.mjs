// import 'leakhound/vitest' in a test or in setupFiles: adds the matchers to
// Vitest's expect (or import { matchers } and call expect.extend yourself).
import { expect } from 'vitest';
import cjs from './matchers.js';

export const { matchers } = cjs;
expect.extend(matchers);

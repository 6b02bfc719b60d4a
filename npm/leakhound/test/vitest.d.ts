import type { LeakMatchers } from './matchers.js';
export { matchers } from './matchers.js';

declare module 'vitest' {
  interface Matchers<T = any> extends LeakMatchers<void> {}
}

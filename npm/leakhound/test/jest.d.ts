import type { LeakMatchers } from './matchers.js';
export { matchers } from './matchers.js';

// `expect` from '@jest/globals'.
declare module 'expect' {
  interface Matchers<R extends void | Promise<void>, T = unknown> extends LeakMatchers<void> {}
}
// The global `expect` of @types/jest.
declare global {
  namespace jest {
    interface Matchers<R, T = {}> extends LeakMatchers<void> {}
  }
}

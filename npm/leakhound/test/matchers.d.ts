import type { NoLeakOptions, HandlesOptions } from './index.js';

export interface LeakMatchers<R = unknown> {
  /** `await expect(fn).not.toLeak(options)`: fails with leakhound's explanation when fn leaks. */
  toLeak(options?: NoLeakOptions): Promise<R>;
  /** `await expect(fn).toRestoreListeners()`: every EventEmitter's listener counts back to baseline. */
  toRestoreListeners(): Promise<R>;
  /** `await expect(fn).toCloseHandles()`: no timer, socket, server or watcher left open. */
  toCloseHandles(options?: HandlesOptions): Promise<R>;
}

type MatcherResult = Promise<{ pass: boolean; message: () => string }>;
export declare const matchers: {
  toLeak(received: unknown, options?: NoLeakOptions): MatcherResult;
  toRestoreListeners(received: unknown): MatcherResult;
  toCloseHandles(received: unknown, options?: HandlesOptions): MatcherResult;
};

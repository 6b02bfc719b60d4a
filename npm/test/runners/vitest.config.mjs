import { defineConfig } from 'vitest/config';

// The pool is chosen on the command line (run.sh runs threads and forks).
export default defineConfig({
  test: { testTimeout: 120_000, hookTimeout: 60_000 },
});

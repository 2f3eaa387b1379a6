import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Worker-thread tests are CPU-bound on small machines; two files at a time is enough.
    maxWorkers: 2,
  },
});

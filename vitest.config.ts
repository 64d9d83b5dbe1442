import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // The machines are 2-core: more workers only add contention.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Starts one private redis-server for the run; tests read it with inject('redisUrl').
    globalSetup: ['test/support/global-setup.ts'],
  },
});

import { defineConfig } from 'vitest/config';

// Integration and end-to-end tests share one Docker engine, PostgreSQL server and Redis:
// files run one after another; a test that waits for a real build needs minutes, not seconds.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    env: {
      DATABASE_URL: process.env.DATABASE_URL ?? 'postgresql://berth:berth@127.0.0.1:5432/berth_test',
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    },
  },
});

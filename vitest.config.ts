import { defineConfig } from 'vitest/config';

/**
 * Three projects, each runnable alone (`npx vitest run --project unit`); `npm test` runs all.
 *
 * - unit: pure code, no Docker, PostgreSQL or Redis (the fake GitHub is an in-process server)
 * - integration: one part of Berth against the real PostgreSQL, Redis and Docker engine
 * - e2e: a whole Berth (or `npm start`) against the fake GitHub and the real services
 *
 * Integration and end-to-end tests share one Docker engine, PostgreSQL server and Redis:
 * files run one after another; a test that waits for a real build needs minutes, not seconds.
 * Only they get the global setup that builds the test base image (it needs Docker).
 * `npm test` runs the projects one after another (groupOrder; vitest would run them at once).
 */
const services = ['test/global-setup.ts'];

export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    env: {
      DATABASE_URL: process.env.DATABASE_URL ?? 'postgresql://berth:berth@127.0.0.1:5432/berth_test',
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], globalSetup: services, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], globalSetup: services, sequence: { groupOrder: 2 } } },
    ],
  },
});

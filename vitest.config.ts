import { defineConfig } from 'vitest/config';

// Three tiers (STYLE.md 10). `npm test` runs all of them; each tier is a vitest project.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['packages/*/test/**/*.test.ts', 'apps/*/test/unit/**/*.test.ts', 'scripts/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['apps/*/test/integration/**/*.test.ts', 'packages/db/test/**/*.itest.ts', 'packages/relay/test/**/*.itest.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: ['test-support/postgres-global-setup.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

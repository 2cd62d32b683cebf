import { defineConfig } from 'vitest/config';

// Three tiers (docs/style.md 10) and the fuzz tier. `npm test` runs all of them; each tier is a vitest project.
// Every tier runs with a TMPDIR of its own that must be empty at the end (tests clean up after themselves).
const tempDirCheck = 'test-support/temp-dir-global-setup.ts';
// The tiers that start many servers on new embedded databases copy one made by initdb once per run.
const pgliteTemplate = 'test-support/pglite-template.ts';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'apps/*/test/unit/**/*.test.ts', 'scripts/**/*.test.ts'],
          globalSetup: [tempDirCheck],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['apps/*/test/integration/**/*.test.ts', 'packages/db/test/**/*.itest.ts', 'packages/relay/test/**/*.itest.ts'],
          // Two files at a time whatever the core count (vitest's default is cores - 1, one on a
          // 2-core CI machine): a file mostly waits on the servers it starts. Each file has its own
          // data dirs, ports and Postgres database, so files never share state.
          maxWorkers: 2,
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: [tempDirCheck, pgliteTemplate, 'test-support/postgres-global-setup.ts'],
        },
      },
      {
        // Generated and mutated input against a live server (fixed seed here; `npm run fuzz` for a
        // random seed and more cases).
        test: {
          name: 'fuzz',
          include: ['apps/*/test/fuzz/**/*.test.ts'],
          testTimeout: 1_800_000,
          hookTimeout: 120_000,
          globalSetup: [tempDirCheck],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          testTimeout: 120_000,
          // A lab's beforeAll starts a server (its /readyz wait alone is bounded at 120 s) and agents.
          hookTimeout: 240_000,
          // Two lab files at a time: each lab has its own namespaces (wl-<lab>-*), interface names
          // and lock (e2e/lab/lock.ts, per lab name), and a lab mostly waits on timers, so two
          // overlap without sharing anything; the suite stays well under 30 minutes.
          maxWorkers: 2,
          globalSetup: [tempDirCheck, pgliteTemplate],
        },
      },
    ],
  },
});

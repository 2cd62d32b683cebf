/**
 * vitest globalSetup for the integration project: one throwaway Postgres 15 cluster for the whole run,
 * its URL provided to tests as inject('weftPostgresUrl'). Tests call createTestDatabase() for a fresh
 * database of their own on it. Set WEFT_TEST_POSTGRES_URL to use an existing server instead (a
 * superuser URL; databases are created on it).
 */
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    weftPostgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.WEFT_TEST_POSTGRES_URL;
  if (external) {
    project.provide('weftPostgresUrl', external);
    return async () => {};
  }
  const cluster = await startPostgres();
  project.provide('weftPostgresUrl', cluster.url);
  return () => cluster.stop();
}

/** Per-test-file isolation on the integration run's shared Postgres cluster. */
import { inject } from 'vitest';
import { createDatabaseOn } from './postgres.js';
import type {} from './postgres-global-setup.js';

/** URL of the integration run's Postgres cluster (a superuser on its `weft` database). */
export function testPostgresUrl(): string {
  const url = inject('weftPostgresUrl') ?? process.env.WEFT_TEST_POSTGRES_URL;
  if (!url) throw new Error('no test Postgres: run through the vitest "integration" project (its globalSetup starts one)');
  return url;
}

/** A new, empty database on the test cluster; returns its postgres:// URL. */
export function createTestDatabase(): Promise<string> {
  return createDatabaseOn(testPostgresUrl());
}

/**
 * vitest globalSetup: one embedded database made by initdb for the whole run, which every new PGlite
 * data directory in the run (servers in the test processes and the processes they spawn) starts as
 * a copy of, instead of running initdb again (packages/db/src/pglite-init.ts, PGLITE_TEMPLATE_ENV).
 * Only initdb is shared: each copy still applies the migrations itself, as a new database does.
 *
 * Listed after the temp-dir check, so the template lives in the run's TMPDIR and is gone before
 * that check looks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initPGliteDir, PGLITE_TEMPLATE_ENV } from '../packages/db/src/pglite-init.js';
import { silentLog } from '../packages/db/src/log.js';

export default async function setup(): Promise<() => void> {
  const saved = process.env[PGLITE_TEMPLATE_ENV];
  // Made by initdb itself, never copied from a template an outer run left in the environment.
  delete process.env[PGLITE_TEMPLATE_ENV];
  const root = mkdtempSync(join(tmpdir(), 'weft-pglite-template-'));
  const template = join(root, 'db');
  try {
    await initPGliteDir(template, silentLog);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  process.env[PGLITE_TEMPLATE_ENV] = template;
  return () => {
    if (saved === undefined) delete process.env[PGLITE_TEMPLATE_ENV];
    else process.env[PGLITE_TEMPLATE_ENV] = saved;
    rmSync(root, { recursive: true, force: true });
  };
}

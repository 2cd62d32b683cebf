import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { makeOwnerOnly } from './data-dir-mode.js';
import { DbError } from './errors.js';
import type { Log } from './log.js';
import { repoRoot } from './paths.js';

/**
 * Creates a new embedded database in `dir` in a short-lived child process, if there is none yet.
 *
 * PGlite runs initdb in a second WASM instance that it never releases: a server that created its
 * data directory in-process held ~670 MB RSS, one that opened an existing directory ~230 MB
 * (measured). A child's memory goes back to the system when it exits. Costs ~5 s, once.
 * The database is built beside `dir` and renamed into place, so an interrupted creation never
 * leaves a half-made database behind.
 */
export async function initPGliteDir(dir: string, log: Log): Promise<void> {
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new DbError('DATABASE_INIT_FAILED', `${dir} is not empty but holds no database (no PG_VERSION); move it away or point --data-dir elsewhere`);
  }
  const building = `${dir}.creating`;
  rmSync(building, { recursive: true, force: true });
  const template = process.env[PGLITE_TEMPLATE_ENV];
  let childPid: number | undefined;
  if (template) copyTemplate(template, building);
  else childPid = await createInChild(dir, building, log);
  // Under umask 077 (the caller's, inherited) directories come out 0700, but initdb sets its files 0666 itself.
  makeOwnerOnly(building);
  rmSync(dir, { recursive: true, force: true }); // empty, checked above
  renameSync(building, dir);
  if (template) log.info({ dir, template }, 'created the embedded database from the test template');
  else log.info({ dir, childPid }, 'created the embedded database in a child process');
}

/**
 * Tests only: the path of a database that initPGliteDir created (and nothing opened since), copied
 * instead of running initdb again. The test tiers make one per run (test-support/pglite-template.ts):
 * initdb is the same every time, and it was most of a fresh server's start-up (~5 s idle, 35 s
 * under load). Migrations still run on the copy as on any new database.
 */
export const PGLITE_TEMPLATE_ENV = 'WEFT_TEST_PGLITE_TEMPLATE';

function copyTemplate(template: string, building: string): void {
  if (!existsSync(join(template, 'PG_VERSION'))) {
    throw new DbError('DATABASE_INIT_FAILED', `${PGLITE_TEMPLATE_ENV}=${template} holds no database (no PG_VERSION)`);
  }
  cpSync(template, building, { recursive: true });
}

/** Runs initdb into `building` in a child process; returns the child's pid. */
async function createInChild(dir: string, building: string, log: Log): Promise<number | undefined> {
  // Resolved from this package, so the child loads the same PGlite version the server does.
  const entry = createRequire(join(repoRoot, 'packages/db/package.json')).resolve('@electric-sql/pglite');
  const script = 'const { PGlite } = require(process.argv[1]); PGlite.create({ dataDir: process.argv[2] }).then((db) => db.close());';
  log.info({ dir }, 'creating the embedded database (first start; a few seconds)');
  const child = spawn(process.execPath, ['-e', script, entry, building], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0 || !existsSync(join(building, 'PG_VERSION'))) {
    rmSync(building, { recursive: true, force: true });
    throw new DbError('DATABASE_INIT_FAILED', `could not create the embedded database in ${dir} (exit ${code}): ${stderr.trim() || 'no output'}`);
  }
  return child.pid;
}

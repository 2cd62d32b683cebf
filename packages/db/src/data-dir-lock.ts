/**
 * One process per embedded database: PGlite has no locking of its own, and two servers writing one
 * data directory corrupt it. The lock is a pid file beside the database, `<dataDir>/db.lock`.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DbError } from './errors.js';

/** Lock files this process holds; a file naming our pid that is not in here is left over from a previous run. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock or throws DbError DATA_DIR_IN_USE; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'db.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      held.add(path);
      return () => {
        held.delete(path);
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    const ours = pid === process.pid;
    if ((ours && held.has(path)) || (!ours && Number.isInteger(pid) && pid > 0 && alive(pid))) {
      throw new DbError(
        'DATA_DIR_IN_USE',
        `the embedded database in ${dataDir} is in use by ${ours ? 'this process' : `process ${pid}`}; ` +
          `run one server per data directory (several replicas need Postgres: DATABASE_URL)`,
      );
    }
    // Left behind by a process that died: take it over.
    unlinkSync(path);
  }
  throw new DbError('DATA_DIR_IN_USE', `could not lock ${path}`);
}

/**
 * The data directory is the server's alone: it holds the embedded database (whose WAL carries key
 * prefixes), the lock and the admin socket. It must be owner-only (0700), everything under it 0600
 * files and 0700 directories. PGlite does not do that by itself: its initdb leaves files 0666 and
 * directories follow the process umask, so the embedded database runs under umask 077 and its
 * files are brought to owner-only at every open (which also repairs a database an older version made).
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { DbError } from './errors.js';

/** Creates `dir` (0700) if it does not exist; refuses one that group or others can reach, changing nothing in it. */
export function prepareDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new DbError('DATA_DIR_NOT_PRIVATE', `the data directory ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) {
    throw new DbError(
      'DATA_DIR_NOT_PRIVATE',
      `the data directory ${dir} is open to group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `it holds the database and the admin socket and must be owner-only: run chmod 700 ${dir}`,
    );
  }
}

/** Takes group and other permissions off `root` and everything under it (symlinks are left alone, not followed). */
export function makeOwnerOnly(root: string): void {
  const st = lstatSync(root);
  if (st.isSymbolicLink()) return;
  if ((st.mode & 0o077) !== 0) chmodSync(root, st.mode & 0o700);
  if (st.isDirectory()) for (const name of readdirSync(root)) makeOwnerOnly(join(root, name));
}

let umaskHolders = 0;
let savedUmask = 0;

/**
 * Sets the process umask to 077 while at least one embedded database is open (PGlite creates WAL
 * segments and relation files at any time, in this process); returns the release. Worker threads
 * cannot change the umask: there only the chmod at open applies.
 */
export function holdOwnerOnlyUmask(): () => void {
  if (!isMainThread) return () => {};
  if (umaskHolders++ === 0) savedUmask = process.umask(0o077);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--umaskHolders === 0) process.umask(savedUmask);
  };
}

/**
 * One process per embedded database: PGlite has no locking of its own, and two servers writing one
 * data directory corrupt it. The lock is a directory beside the database, `<dataDir>/db.lock/`,
 * holding one owner file, `owner-<pid>-<random>`, that says who holds it: pid, the process's start
 * time and the boot id.
 *
 * Why taking the lock, and taking it over from a holder that died, is atomic (several processes
 * started together on a stale lock: exactly one gets it):
 * - A lock is only ever installed whole: the owner file is written into a private directory, which
 *   is then rename(2)d onto `db.lock`. rename onto a directory succeeds only when that directory is
 *   absent or empty, and is atomic: of any number of racers, one installs its lock, the others get
 *   ENOTEMPTY/EEXIST. So a lock is never seen half-written, and a lock in place is never replaced.
 * - A lock in place stays non-empty until its owner releases it: nobody else removes an owner file
 *   except one they have judged dead, and only by that file's exact name.
 * - Taking over = removing the dead owner's file (leaving `db.lock` empty), then racing to rename
 *   like anyone else. A late taker's unlink finds nothing (ENOENT: already removed) or touches
 *   nothing of the winner's (the winner's file has another name), and its rename fails on the
 *   winner's non-empty lock; it then reads the winner's owner file and reports the lock in use.
 * No interleaving of read, judge, unlink and rename displaces a live holder or lets two hold it.
 *
 * Liveness: a holder is alive when its pid exists *and* (on Linux) that process started when the
 * owner file says and the machine has not rebooted since. A pid reused by an unrelated process
 * after the holder died is therefore recognised as stale and taken over. Elsewhere (no /proc) only
 * the pid is checked: a reused pid keeps the lock refused, with a message saying what to remove.
 *
 * Earlier versions wrote `db.lock` as a plain pid file; one left by a dead process is taken over
 * (its unlink cannot hit a new-style lock: unlink of a directory fails).
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DbError } from './errors.js';

export const LOCK_NAME = 'db.lock';

/** Who holds a lock, as its owner file records it. `start` and `boot` are null where unknown (no /proc). */
interface Owner {
  pid: number;
  start: string | null;
  boot: string | null;
}

/** Lock directories this process holds; an owner file naming this very process that is not in here is left over. */
const held = new Set<string>();

/** Rounds of look-and-retry before giving up; each lost round means another process changed the lock meanwhile. */
const MAX_ATTEMPTS = 20;

/** Takes the lock or throws DbError DATA_DIR_IN_USE; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_NAME);
  const me = ownerOf(process.pid);
  const ownerName = `owner-${process.pid}-${randomBytes(6).toString('hex')}`;
  const staging = join(dataDir, `${LOCK_NAME}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  sweepStaging(dataDir);
  mkdirSync(staging, { mode: 0o700 });
  try {
    writeFileSync(join(staging, ownerName), JSON.stringify(me) + '\n', { mode: 0o600 });
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (install(staging, path)) {
        held.add(path);
        return once(() => {
          held.delete(path);
          tryRemove(() => unlinkSync(join(path, ownerName)));
          // Fails harmlessly (ENOTEMPTY) if another process has already installed its lock.
          tryRemove(() => rmdirSync(path));
        });
      }
      const found = inspect(path);
      if (found === 'changed') continue;
      if (found.kind === 'legacy') {
        if (found.pid !== null && found.pid !== process.pid && pidExists(found.pid)) throw inUse(dataDir, found.pid, path);
        // Dead (or unreadable): remove it. Racing takers' unlinks fail harmlessly once one has installed a directory.
        tryRemove(() => unlinkSync(path));
        continue;
      }
      for (const [name, owner] of found.owners) {
        if (owner === null) {
          throw new DbError('DATA_DIR_IN_USE', `cannot tell who holds ${path} (unreadable ${name}); if no weft-server uses ${dataDir}, remove ${path}`);
        }
        const ours = owner.pid === process.pid && owner.start === me.start;
        if (ours ? held.has(path) : alive(owner)) throw inUse(dataDir, ours ? 'this process' : owner.pid, path);
        // Left behind by a process that died: remove its owner file, by name, and race to install ours.
        tryRemove(() => unlinkSync(join(path, name)));
      }
    }
    throw new DbError('DATA_DIR_IN_USE', `could not lock ${path}: it kept changing under ${MAX_ATTEMPTS} attempts (other processes starting on ${dataDir}?)`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** rename(2) the staged lock onto `path`; false when a lock (or a legacy pid file) is already there. */
function install(staging: string, path: string): boolean {
  try {
    renameSync(staging, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') return false;
    throw err;
  }
}

type Found =
  | { kind: 'legacy'; pid: number | null }
  | { kind: 'dir'; owners: [name: string, owner: Owner | null][] }
  /** It vanished or changed while being read: look again. */
  | 'changed';

function inspect(path: string): Found {
  try {
    if (!lstatSync(path).isDirectory()) {
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
      return { kind: 'legacy', pid: Number.isInteger(pid) && pid > 0 ? pid : null };
    }
    const owners = readdirSync(path).map((name): [string, Owner | null] => [name, parseOwner(readFileSync(join(path, name), 'utf8'))]);
    return { kind: 'dir', owners };
  } catch (err) {
    // Gone, or replaced between the lstat and the read (a legacy file by a racer's lock directory,
    // or the reverse): look again.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return 'changed';
    throw err;
  }
}

function parseOwner(text: string): Owner | null {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (!Number.isInteger(o.pid) || (o.pid as number) <= 0) return null;
    return { pid: o.pid as number, start: typeof o.start === 'string' ? o.start : null, boot: typeof o.boot === 'string' ? o.boot : null };
  } catch {
    return null;
  }
}

function ownerOf(pid: number): Owner {
  return { pid, start: processStart(pid), boot: bootId() };
}

function alive(owner: Owner): boolean {
  if (owner.boot !== null && bootId() !== null && owner.boot !== bootId()) return false;
  const start = processStart(owner.pid);
  if (owner.start !== null && start !== null) return start === owner.start;
  // No /proc here (or the owner file has no start time): all we can check is that the pid exists.
  return pidExists(owner.pid);
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot (/proc/PID/stat field 22); null without /proc or process. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let cachedBootId: string | null | undefined;
function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}

/** Staging directories left by processes that died between mkdir and rename. Only the dead one's own name is removed. */
function sweepStaging(dataDir: string): void {
  for (const name of readdirSync(dataDir)) {
    const m = /^db\.lock\.(\d+)-[0-9a-f]+\.tmp$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !pidExists(Number(m[1]))) rmSync(join(dataDir, name), { recursive: true, force: true });
  }
}

function inUse(dataDir: string, by: number | 'this process', path: string): DbError {
  return new DbError(
    'DATA_DIR_IN_USE',
    `the embedded database in ${dataDir} is in use by ${by === 'this process' ? by : `process ${by}`}; ` +
      `run one server per data directory (several replicas need Postgres: DATABASE_URL)` +
      (by === 'this process' ? '' : `; if process ${by} is not a weft-server, remove ${path}`),
  );
}

function tryRemove(fn: () => void): void {
  try {
    fn();
  } catch {
    // already gone, or (rmdir) no longer ours to remove
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/**
 * vitest globalSetup for every tier: the run gets a TMPDIR of its own, a fresh directory that must be
 * empty when the run ends. A test, or a process it started, that leaves a temp file or directory behind
 * (a data dir, a wg-quick file with a private key) fails the run, naming what it left; the directory is
 * removed either way. Each run has its own directory, so runs in parallel (other worktrees, other
 * tiers) never see, or blame each other for, their temp files. With WEFT_LAB_KEEP=1 (keep the lab's
 * files for a look) the directory is kept and its path printed instead.
 *
 * A run that was killed before its teardown leaves its directory; a later run removes it once it is a
 * day old (its name carries the dead run's pid), as the e2e lab sweeps a crashed lab's.
 *
 * Listed first in each project's globalSetup, so the other setups (the test Postgres) run inside it.
 * When several projects run in one vitest invocation, the first makes the directory and the others reuse it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set to the run's directory by the setup that made it. */
const RUN_TMPDIR = 'WEFT_TEST_RUN_TMPDIR';
export const SHARED_CACHES = [`tsx-${process.geteuid?.() ?? 'user'}`, 'node-compile-cache'];

export default function setup(): (() => void) | undefined {
  if (process.env[RUN_TMPDIR] !== undefined && process.env[RUN_TMPDIR] === process.env.TMPDIR) return undefined;
  sweepDeadRuns();
  // A short name: unix socket paths (the e2e agents', under lab dirs under this one) are limited to 107 bytes.
  const dir = mkdtempSync(join(tmpdir(), `weft-run-${process.pid}-`));
  // Others may pass through but not list it: the test Postgres runs as an unprivileged user when we are root.
  chmodSync(dir, 0o711);
  // Compile caches kept in TMPDIR (tsx's tsx-<uid>; Node 22+'s node-compile-cache, which npm and
  // npx turn on): point them at the usual ones, so runs share them as before and they are not leaks.
  for (const cache of SHARED_CACHES) {
    mkdirSync(join(tmpdir(), cache), { recursive: true, mode: 0o700 });
    symlinkSync(join(tmpdir(), cache), join(dir, cache));
  }
  const saved = { TMPDIR: process.env.TMPDIR, [RUN_TMPDIR]: process.env[RUN_TMPDIR], NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE };
  // Every Node process the tests start (each CLI run, server, agent) reuses the code compiled by the
  // ones before: a `weft-server` CLI run took ~20% less CPU to start with it (0.64 s instead of 0.85 s under load).
  process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache');
  process.env.TMPDIR = dir;
  process.env[RUN_TMPDIR] = dir;
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const left = readdirSync(dir).filter((name) => !SHARED_CACHES.includes(name)).sort();
    if (process.env.WEFT_LAB_KEEP === '1') {
      process.stderr.write(`WEFT_LAB_KEEP=1: kept the run's temp dir ${dir}\n`);
      return;
    }
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) {
      // vitest reports an error thrown from a teardown but still exits 0: fail the run ourselves.
      process.stderr.write(
        `\nFAIL temp-dir check: the tests left ${left.length} temp entr${left.length === 1 ? 'y' : 'ies'} behind in TMPDIR: ` +
          `${left.join(', ')}. Remove what a test creates (afterEach/afterAll or finally), including on failure.\n`,
      );
      process.exitCode = 1;
    }
  };
}

/** A killed run's directory is removed once it is this old: younger, it may be a live run we cannot see. */
const DEAD_RUN_AGE_MS = 24 * 3600_000;

/**
 * Removes what runs that were killed (no teardown ran) left: directories naming a pid that does not
 * exist and untouched for a day. Both, because /tmp may be shared with runs in other pid namespaces.
 */
function sweepDeadRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^weft-run-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    const path = join(tmpdir(), name);
    try {
      if (Date.now() - statSync(path).mtimeMs < DEAD_RUN_AGE_MS) continue;
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(path, { recursive: true, force: true });
    }
  }
}

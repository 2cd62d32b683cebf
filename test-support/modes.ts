/** File-mode checks for tests of what a process leaves in a directory. */
import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every entry under `root` (root included) that is not owner-only, as "path mode" lines: a
 * directory must be 0700, anything else 0600. Empty when all is as it should be. Symlinks are
 * listed whatever their mode (nothing here should make one).
 */
export function notOwnerOnly(root: string): string[] {
  const bad: string[] = [];
  const walk = (path: string) => {
    const st = lstatSync(path);
    const mode = st.mode & 0o777;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if (st.isSymbolicLink() || mode !== want) bad.push(`${relative(root, path) || '.'} ${mode.toString(8).padStart(4, '0')}`);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(root);
  return bad;
}

/** How many entries there are under `root`, root excluded: a walk that found nothing proves nothing. */
export function countEntries(root: string): number {
  let n = 0;
  for (const name of readdirSync(root)) {
    n++;
    const path = join(root, name);
    if (lstatSync(path).isDirectory()) n += countEntries(path);
  }
  return n;
}

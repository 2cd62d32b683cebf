#!/usr/bin/env node
// `npm run install-bin [-- --prefix DIR]`: puts `weft` and `weft-server` on PATH as symlinks to
// this checkout's bin/*.mjs (default /usr/local/bin; $PREFIX/bin or DIR/bin when given). Node
// follows the symlink, so the programs find their bundles and scripts/launch.mjs from any cwd,
// and an edit or `git pull` in the checkout is what they run next. Re-running replaces the links;
// a file there that is not a symlink is left alone and reported.
import { lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PROGRAMS = { weft: 'apps/agent/bin/weft.mjs', 'weft-server': 'apps/server/bin/weft-server.mjs' };

let values;
try {
  ({ values } = parseArgs({ options: { prefix: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
} catch (err) {
  console.error(`install-bin: ${err.message}\nusage: npm run install-bin [-- --prefix DIR]`);
  process.exit(2);
}
if (values.help) {
  console.log('usage: npm run install-bin [-- --prefix DIR]\n\nSymlinks weft and weft-server into DIR/bin (default: $PREFIX, else /usr/local).');
  process.exit(0);
}
const binDir = join(resolve(values.prefix ?? process.env.PREFIX ?? '/usr/local'), 'bin');
mkdirSync(binDir, { recursive: true });

let failed = false;
for (const [name, target] of Object.entries(PROGRAMS)) {
  const link = join(binDir, name);
  const to = join(root, target);
  let existing;
  try {
    existing = lstatSync(link);
  } catch {
    /* nothing there yet */
  }
  if (existing && !existing.isSymbolicLink()) {
    console.error(`install-bin: ${link} exists and is not a symlink; remove it or pass --prefix DIR`);
    failed = true;
    continue;
  }
  if (existing) {
    if (readlinkSync(link) === to) {
      console.log(`${link} -> ${to} (already)`);
      continue;
    }
    unlinkSync(link);
  }
  symlinkSync(to, link);
  console.log(`${link} -> ${to}`);
}
const onPath = (process.env.PATH ?? '').split(delimiter).map((d) => resolve(d)).includes(binDir);
if (!onPath) console.log(`note: ${binDir} is not on PATH; add it, or call ${join(binDir, 'weft')} by its full path`);
process.exit(failed ? 1 : 0);

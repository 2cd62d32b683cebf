#!/usr/bin/env node
// `weft`: runs the esbuild bundle in ../dist (scripts/build.mjs) when it is there and built from
// the sources as they are now; otherwise the TypeScript sources through tsx (about 0.5 s slower
// to start), so an edit is never run stale. Works from any cwd by absolute path.
import { readFileSync, statSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);

/** True when dist/inputs.json exists and every source it lists still has the mtime it was built from. */
function bundleCurrent() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('inputs.json', dist), 'utf8'));
  } catch {
    return false;
  }
  const base = new URL('../', import.meta.url);
  for (const { path, mtimeMs } of manifest.inputs) {
    try {
      if (statSync(new URL(path, base)).mtimeMs !== mtimeMs) return false;
    } catch {
      return false;
    }
  }
  return true;
}

if (process.env.WEFT_NO_BUNDLE !== '1' && bundleCurrent()) {
  await import(new URL('weft.mjs', dist).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}

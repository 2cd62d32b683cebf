#!/usr/bin/env node
// Bundles the `weft` agent (apps/agent/src/main.ts with the @weft/* workspace code and its npm
// deps) into apps/agent/dist/, so the CLI starts on plain Node instead of compiling TypeScript
// through tsx on every run (~540 ms -> ~60 ms). Run by `npm ci`/`npm install` (postinstall) and
// by `npm test` before any tier, so tests never run a stale bundle.
//
// dist/weft.mjs is the entry; the daemon's code sits in chunks that the quick commands (status,
// up) never load. dist/inputs.json lists the workspace sources that went in, with their mtimes:
// bin/weft.mjs uses the bundle only while none of them changed, else falls back to tsx.
import { build } from 'esbuild';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const agent = join(root, 'apps/agent');
const outdir = join(agent, 'dist');

const t0 = performance.now();
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { weft: join(agent, 'src/main.ts') },
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  // ws loads these native speed-ups only if installed; they are optional and not bundleable.
  external: ['bufferutil', 'utf-8-validate'],
  // CommonJS deps bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __weftCreateRequire } from 'node:module'; const require = __weftCreateRequire(import.meta.url);" },
});

// Workspace sources only: node_modules changes go through npm, whose postinstall rebuilds.
const inputs = Object.keys(result.metafile.inputs)
  .filter((p) => !p.includes('node_modules/'))
  .map((p) => resolve(root, p));
const builtAt = Date.now();
writeFileSync(join(outdir, 'inputs.json'), JSON.stringify({
  builtAt,
  inputs: inputs.map((p) => ({ path: relative(agent, p), mtimeMs: statSync(p).mtimeMs })),
}, null, 1) + '\n');
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`built apps/agent/dist (${inputs.length} workspace sources, ${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - t0).toFixed(0)} ms`);

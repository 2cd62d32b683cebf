#!/usr/bin/env node
// Bundles the three programs with esbuild, so they start on plain Node instead of compiling
// TypeScript through tsx on every run. Run by `npm ci`/`npm install` (postinstall) and by
// `npm test` before any tier, so tests never run a stale bundle.
//
// - apps/agent/dist: `weft`, with its npm dependencies inside (CLI start ~540 ms -> ~60 ms). The
//   daemon's code sits in chunks that the quick commands (status, up) never load.
// - apps/relay/dist: `weft-relay`, the standalone relay region (STUN, and the packet relay with --server).
// - apps/web/dist: the admin UI (React, built by Vite), which weft-server serves at `/`
//   (apps/server/src/web-ui.ts reads it at start-up; a server started before a rebuild serves the
//   build it read).
// - apps/server/dist: `weft-server`, the workspace code only; npm packages stay in node_modules
//   (PGlite and Prisma load their WASM from beside their own files). tsx held ~80 MB of the
//   server's memory (measured: importing PGlite through tsx 124 MB RSS, plain Node 44 MB).
//
// - packages/relay/native/build/udp_batch.node: StunServer's batched UDP socket (recvmmsg and
//   sendmmsg, packages/relay/native/udp-batch.c), compiled with gcc against this Node's headers and
//   copied beside the weft, weft-server and weft-relay bundles, which load it from there (the agent
//   for one call: raising wireguard-go's socket buffers, apps/agent/src/wg-socket-buffers.ts). Without gcc
//   (or off Linux) it is not built and StunServer uses node:dgram: this says so and goes on.
//
// dist/inputs.json lists the workspace sources that went in, with their mtimes: bin/*.mjs
// (scripts/launch.mjs) uses a bundle only while none of them changed, else falls back to tsx.
import { build } from 'esbuild';
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// CommonJS deps bundled into ESM still call require() for Node built-ins.
const requireBanner = "import { createRequire as __weftCreateRequire } from 'node:module'; const require = __weftCreateRequire(import.meta.url);";

/**
 * Leaves npm packages out of the bundle, imported by a path relative to the output directory:
 * the very file Node would have loaded from the importing source (two packages may pin different
 * versions of one dependency; a bare name would find whichever npm hoisted to the root).
 */
function externalPackages(outdir) {
  const builtins = new Set(builtinModules);
  return {
    name: 'external-packages',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.path.startsWith('node:') || builtins.has(args.path)) return { path: args.path, external: true };
        if (args.path.startsWith('@weft/') || args.pluginData === 'resolving') return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'resolving' });
        if (r.errors.length) return { errors: r.errors };
        let rel = relative(outdir, r.path);
        if (!rel.startsWith('.')) rel = `./${rel}`;
        return { path: rel, external: true };
      });
    },
  };
}

async function bundle({ app, name, bundlePackages }) {
  const appDir = join(root, 'apps', app);
  const outdir = join(appDir, 'dist');
  const t0 = performance.now();
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { [name]: join(appDir, 'src/main.ts') },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: bundlePackages,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    // ws loads these native speed-ups only if installed; they are optional and not bundleable.
    external: ['bufferutil', 'utf-8-validate'],
    plugins: bundlePackages ? [] : [externalPackages(outdir)],
    banner: { js: requireBanner },
  });

  // Workspace sources only: node_modules changes go through npm, whose postinstall rebuilds.
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.includes('node_modules/'))
    .map((p) => resolve(root, p));
  writeFileSync(join(outdir, 'inputs.json'), JSON.stringify({
    builtAt: Date.now(),
    inputs: inputs.map((p) => ({ path: relative(appDir, p), mtimeMs: statSync(p).mtimeMs })),
  }, null, 1) + '\n');
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`built apps/${app}/dist (${inputs.length} workspace sources, ${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - t0).toFixed(0)} ms`);
}

/** Compiles udp-batch.c when it changed; returns the .node file, or undefined when it could not. */
function buildUdpAddon() {
  const dir = join(root, 'packages/relay/native');
  const src = join(dir, 'udp-batch.c');
  const out = join(dir, 'build/udp_batch.node');
  const skip = (why) => console.log(`packages/relay/native: ${why}; the STUN socket uses node:dgram`);
  if (process.platform !== 'linux') return skip('recvmmsg/sendmmsg are Linux only'), undefined;
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  // The headers ship with the Node binary (bin/node -> include/node); Node-API's ABI is stable,
  // so a distribution's copy of them does as well.
  const include = [join(dirname(process.execPath), '../include/node'), '/usr/include/node'].find((d) => existsSync(join(d, 'node_api.h')));
  if (!include) return skip(`no node_api.h beside ${process.execPath}`), undefined;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const t0 = performance.now();
  const r = spawnSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', `-I${include}`, '-o', tmp, src], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    return skip(r.error?.code === 'ENOENT' ? 'gcc not found (apt-get install gcc libc6-dev)' : `gcc failed:\n${r.stderr}`), undefined;
  }
  // A rename, so a process that already loaded the old file keeps it whole.
  renameSync(tmp, out);
  console.log(`built packages/relay/native/build/udp_batch.node in ${(performance.now() - t0).toFixed(0)} ms`);
  return out;
}

const udpAddon = buildUdpAddon();
await bundle({ app: 'agent', name: 'weft', bundlePackages: true });
await bundle({ app: 'server', name: 'weft-server', bundlePackages: false });
// Its one npm dependency (ws) bundled in: one self-contained file.
await bundle({ app: 'relay', name: 'weft-relay', bundlePackages: true });
// packages/relay/src/native-udp.ts looks beside the bundle for it. Copied then renamed: a running
// weft-relay has the file mapped, and writing into it would pull its code from under it.
for (const app of ['agent', 'server', 'relay']) {
  if (!udpAddon) break;
  const to = join(root, 'apps', app, 'dist/udp_batch.node');
  copyFileSync(udpAddon, `${to}.${process.pid}.tmp`);
  renameSync(`${to}.${process.pid}.tmp`, to);
}

// The admin UI. Vite is imported only here, so the bundles above do not wait for it to load.
{
  const t0 = performance.now();
  const { build: viteBuild } = await import('vite');
  await viteBuild({ configFile: join(root, 'apps/web/vite.config.ts'), logLevel: 'warn' });
  console.log(`built apps/web/dist (the admin UI) in ${(performance.now() - t0).toFixed(0)} ms`);
}

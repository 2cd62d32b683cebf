// Starts one of Weft's programs from its esbuild bundle (scripts/build.mjs) when the bundle is
// there and was built from the sources as they are now; otherwise from the TypeScript sources
// through tsx (slower to start, and ~80 MB more memory), so an edit is never run stale.
// WEFT_NO_BUNDLE=1 forces the sources.
import { readFileSync, statSync } from 'node:fs';

/** True when `dist/inputs.json` exists and every source it lists still has the mtime it was built from. */
export function bundleCurrent(appDir) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('dist/inputs.json', appDir), 'utf8'));
  } catch {
    return false;
  }
  for (const { path, mtimeMs } of manifest.inputs) {
    try {
      if (statSync(new URL(path, appDir)).mtimeMs !== mtimeMs) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** `appDir`: the app's directory URL, with a trailing slash; `name`: its bundle's entry name. */
export async function launch(appDir, name) {
  if (process.env.WEFT_NO_BUNDLE !== '1' && bundleCurrent(appDir)) {
    await import(new URL(`dist/${name}.mjs`, appDir).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(new URL('src/main.ts', appDir).href);
  }
}

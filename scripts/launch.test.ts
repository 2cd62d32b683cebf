import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { bundleCurrent } from './launch.mjs';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An app directory with one source and a dist/inputs.json that recorded it as it is now. */
function builtApp(): { appDir: URL; source: string } {
  dir = mkdtempSync(join(tmpdir(), 'weft-launch-'));
  const source = join(dir, 'src', 'main.ts');
  mkdirSync(join(dir, 'src'));
  mkdirSync(join(dir, 'dist'));
  writeFileSync(source, 'export {};\n');
  writeFileSync(join(dir, 'dist', 'inputs.json'), JSON.stringify({ inputs: [{ path: 'src/main.ts', mtimeMs: statSync(source).mtimeMs }] }));
  return { appDir: pathToFileURL(`${dir}/`), source };
}

describe('bundleCurrent', () => {
  it('uses a bundle built from the sources as they are', () => {
    expect(bundleCurrent(builtApp().appDir)).toBe(true);
  });

  it('falls back to the sources once one of them changed after the build', () => {
    const { appDir, source } = builtApp();
    const later = new Date(Date.now() + 5000);
    utimesSync(source, later, later);
    expect(bundleCurrent(appDir)).toBe(false);
  });

  it('falls back when a source the bundle was built from is gone', () => {
    const { appDir, source } = builtApp();
    rmSync(source);
    expect(bundleCurrent(appDir)).toBe(false);
  });

  it('falls back when there is no bundle manifest', () => {
    const { appDir } = builtApp();
    rmSync(join(dir, 'dist', 'inputs.json'));
    expect(bundleCurrent(appDir)).toBe(false);
  });
});

/**
 * The admin UI under a real browser: Debian's Chromium (`apt-get install chromium`; Playwright's
 * own browser builds cannot be downloaded here) driven through playwright-core's library API,
 * against a real `weft-server` process. Shared by e2e/ui/*.test.ts and bench/ui.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { cli, type ServerProcess } from '../../apps/server/test/support/process.js';

const root = resolve(import.meta.dirname, '../..');
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of a run (gitignored). */
export const ARTIFACTS = join(root, 'e2e/ui/artifacts');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (scripts/install-test-deps.sh installs it)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The UI build the server will read: rebuilt when a source is newer than it (`npm test` builds
 * first; a single file run right after an edit must not test the previous UI).
 */
export function ensureWebBuilt(): void {
  const web = join(root, 'apps/web');
  const built = join(web, 'dist/index.html');
  const sources = Math.max(newest(join(web, 'src')), statSync(join(web, 'index.html')).mtimeMs, statSync(join(web, 'vite.config.ts')).mtimeMs, statSync(join(root, 'packages/protocol/src/ui-paths.ts')).mtimeMs);
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return;
  const r = spawnSync('npx', ['vite', 'build', '--config', join(web, 'vite.config.ts')], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
}

export function screenshotPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, `${name}.png`);
}

/** An admin API key of a spawned server, made through its admin socket (what an operator does). */
export async function adminKey(s: ServerProcess): Promise<string> {
  const created = await cli(['apikeys', 'create', '--scopes', 'admin', '--description', 'admin ui', '--json', '--data-dir', s.dataDir]);
  if (created.code !== 0) throw new Error(`apikeys create failed: ${created.stderr}`);
  return (JSON.parse(created.stdout) as { key: string }).key;
}

/** Admin-authorised JSON call. */
export async function rest<T = any>(s: ServerProcess, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(s.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

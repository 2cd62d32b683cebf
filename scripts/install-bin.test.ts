/**
 * `npm run install-bin`: weft and weft-server land on PATH and run from any directory in a fresh
 * shell; running it again is harmless; a file it did not make is left alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'weft-install-bin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const install = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [join(root, 'scripts/install-bin.mjs'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
const fresh = (prefix: string, command: string) =>
  spawnSync('env', ['-i', `PATH=${prefix}/bin:/usr/bin:/bin`, `HOME=${dir}`, 'bash', '-c', `cd / && ${command}`], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });

describe('install-bin', { timeout: 60_000 }, () => {
  it('puts both programs on PATH; they run from / in a fresh non-interactive shell', () => {
    const prefix = join(dir, 'p1');
    const r = install(['--prefix', prefix]);
    expect(r.status, r.stderr).toBe(0);
    const version = fresh(prefix, 'weft --version');
    const { version: pkg } = JSON.parse(readFileSync(join(root, 'apps/agent/package.json'), 'utf8')) as { version: string };
    expect({ code: version.status, out: version.stdout }).toMatchObject({ code: 0, out: expect.stringContaining(`weft ${pkg}`) });
    const server = fresh(prefix, 'weft-server --help');
    expect(server.stderr).not.toMatch(/command not found/);
    expect(server.stdout + server.stderr).toContain('weft-server serve');
  });

  it('takes $PREFIX, and a second run changes nothing', () => {
    const prefix = join(dir, 'p2');
    expect(install([], { PREFIX: prefix }).status).toBe(0);
    const again = install([], { PREFIX: prefix });
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('(already)');
  });

  it('leaves a file that is not its symlink alone and exits 1, naming it', () => {
    const prefix = join(dir, 'p3');
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    writeFileSync(join(prefix, 'bin', 'weft'), 'mine\n');
    const r = install(['--prefix', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(prefix, 'bin', 'weft')} exists and is not a symlink`);
    expect(readFileSync(join(prefix, 'bin', 'weft'), 'utf8')).toBe('mine\n');
  });
});

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretFile } from '../../src/cli/add-peer.js';
import { reachFlags, shellWord, startHint } from '../../src/cli/hints.js';

describe('printed next steps carry the flags that reach the same server', () => {
  it('repeats --data-dir (absolute), --socket or --server as given; the environment needs nothing', () => {
    expect(reachFlags({})).toBe('');
    expect(reachFlags({ dataDir: 'srv' })).toBe(` --data-dir ${resolve('srv')}`);
    expect(reachFlags({ socket: '/run/w.sock', dataDir: 'x' })).toBe(' --socket /run/w.sock');
    expect(reachFlags({ server: 'https://w.example', apiKeyFlag: true })).toBe(' --server https://w.example --api-key KEY');
    expect(reachFlags({ server: 'https://w.example' })).toBe(' --server https://w.example');
  });

  it('quotes a path the shell would split or expand', () => {
    expect(shellWord('/var/lib/weft')).toBe('/var/lib/weft');
    expect(shellWord("/tmp/my data/it's")).toBe(`'/tmp/my data/it'\\''s'`);
    expect(shellWord('$HOME')).toBe(`'$HOME'`);
  });

  it('the start-up hint offers the first user only when there are none', () => {
    expect(startHint(0, 0, '/d')).toContain('Add the first user');
    expect(startHint(0, 0, '/d')).toContain('weft-server users create alice --data-dir /d');
    const later = startHint(1, 3, '/d');
    expect(later).not.toContain('Add the first user');
    expect(later).toMatch(/^1 user, 3 nodes\./);
    expect(later).toContain('weft-server nodes pending --data-dir /d');
  });

  it('tells how to set the web sign-in password while no local account exists, and not after', () => {
    expect(startHint(0, 0, '/d', false)).toContain('weft-server admin set-password --user admin --data-dir /d');
    expect(startHint(2, 1, '/d', false)).toContain('weft-server admin set-password --user admin --data-dir /d');
    expect(startHint(2, 1, '/d', true)).not.toContain('set-password');
  });
});

describe('the file that holds an add-peer private key', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is 0600, replaces an existing file instead of writing through a symlink, and leaves no temporary file', () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-secret-'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep me\n');
    const path = join(dir, 'phone.conf');
    symlinkSync(victim, path);
    const f = SecretFile.open(path);
    f.commit('PrivateKey = x\n');
    f.discard();
    expect(readFileSync(path, 'utf8')).toBe('PrivateKey = x\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
    expect(readdirSync(dir).sort()).toEqual(['phone.conf', 'victim']);
  });

  it('discarded before commit, leaves nothing behind and the old file untouched', () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-secret-'));
    const path = join(dir, 'phone.conf');
    writeFileSync(path, 'old\n');
    SecretFile.open(path).discard();
    expect(readdirSync(dir)).toEqual(['phone.conf']);
    expect(readFileSync(path, 'utf8')).toBe('old\n');
  });
});

import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodePublicKeyOf } from '@weft/crypto';
import { StateStore } from '../../src/state-store.js';
import { peer, self } from './fixtures.js';

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('StateStore', () => {
  let base: string;
  beforeEach(async () => { base = await mkdtemp(join(tmpdir(), 'weft-state-')); });
  afterEach(async () => { await rm(base, { recursive: true, force: true }); });

  it('creates the state dir 0700 and key files 0600, even under a permissive umask', async () => {
    const dir = join(base, 'state');
    const old = process.umask(0);
    try {
      const store = new StateStore(dir);
      await store.init();
      await store.loadOrCreateKeys();
      await store.saveState({ phase: 'running', serverUrl: 'http://x', caFile: null, hostname: 'h', self, peers: [] });
    } finally {
      process.umask(old);
    }
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, 'node.key'))).toBe(0o600);
    expect(await mode(join(dir, 'machine.key'))).toBe(0o600);
    expect(await mode(join(dir, 'state.json'))).toBe(0o600);
  });

  it('tightens a pre-existing loose dir and key file', async () => {
    const dir = join(base, 'loose');
    const store = new StateStore(dir);
    await store.init();
    const keys = await store.loadOrCreateKeys();
    await chmod(dir, 0o755);
    await chmod(join(dir, 'node.key'), 0o644);
    await store.init();
    const again = await store.loadOrCreateKeys();
    expect(again.nodePrivateKey).toBe(keys.nodePrivateKey);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, 'node.key'))).toBe(0o600);
  });

  it('keeps the same keys across restarts and stores only the private key text', async () => {
    const store = new StateStore(join(base, 's'));
    await store.init();
    const a = await store.loadOrCreateKeys();
    const b = await new StateStore(join(base, 's')).loadOrCreateKeys();
    expect(b).toEqual(a);
    expect(nodePublicKeyOf(a.nodePrivateKey)).toBe(a.nodePublicKey);
    expect((await readFile(join(base, 's', 'node.key'), 'utf8')).trim()).toBe(a.nodePrivateKey);
  });

  it('round-trips the last netmap and wipes everything on logout', async () => {
    const store = new StateStore(join(base, 'r'));
    await store.init();
    await store.loadOrCreateKeys();
    await Promise.all([
      store.saveState({ phase: 'running', serverUrl: 'http://a', caFile: null, hostname: 'h', self, peers: [] }),
      store.saveState({ phase: 'stopped', serverUrl: 'http://a', caFile: null, hostname: 'h', self, peers: [peer(2)] }),
    ]);
    const loaded = await store.loadState();
    expect(loaded).toMatchObject({ phase: 'stopped', serverUrl: 'http://a', self, peers: [peer(2)] });
    await store.wipe();
    expect((await store.loadState()).phase).toBe('needs-login');
    await expect(stat(join(base, 'r', 'node.key'))).rejects.toThrow();
  });

  it('rejects a corrupted key file instead of silently replacing it', async () => {
    const store = new StateStore(join(base, 'c'));
    await store.init();
    await writeFile(join(base, 'c', 'node.key'), 'garbage\n', { mode: 0o600 });
    await expect(store.loadOrCreateKeys()).rejects.toThrow(/node private key/);
  });
});

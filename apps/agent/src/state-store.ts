/**
 * What survives a daemon restart, in the state dir (0700):
 * - `node.key` (0600): WireGuard X25519 private key, "privkey:<hex>".
 * - `machine.key` (0600): Ed25519 machine private key, "mprivkey:<hex>".
 * - `state.json` (0600): server URL and the CA file it is verified with, hostname, phase, and the last netmap (self + peers), so a
 *   restarted daemon brings the interface back with its last peers before the server answers,
 *   and its packet filter, so the restored peers are filtered as they were.
 * Keys are generated here, on the device, and never leave it. Writes are atomic (temp + rename).
 */
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  generateMachineKey, generateNodeKey, machinePublicKeyOf, nodePublicKeyOf, parseMachinePrivateKey,
  parseNodePrivateKey, type MachinePrivateKey, type MachinePublicKey, type NodePrivateKey, type NodePublicKey,
} from '@weft/crypto';
import type { Peer, SelfNode } from '@weft/protocol';
import type { WireFilter } from './firewall/filter.js';

/**
 * Where the node stands. `needs-login`: no registration (fresh, logged out, or login pending);
 * `running`: joined and meant to be up; `stopped`: joined, `weft down`; `revoked`: the server
 * deleted the node; `expired`: the node key expired, log in again.
 */
export type Phase = 'needs-login' | 'running' | 'stopped' | 'revoked' | 'expired';

export interface PersistedState {
  version: 1;
  phase: Phase;
  serverUrl: string | null;
  /** `weft up --ca-file`: extra CA for an https server URL; null = the system store only. */
  caFile: string | null;
  hostname: string | null;
  self: SelfNode | null;
  peers: Peer[];
  /** The last netmap's packet filter; absent = none (tunnel traffic not filtered). */
  packetFilter?: WireFilter;
  updatedAt: string;
}

export interface Keys {
  nodePrivateKey: NodePrivateKey;
  nodePublicKey: NodePublicKey;
  machinePrivateKey: MachinePrivateKey;
  machinePublicKey: MachinePublicKey;
}

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export const emptyState = (): PersistedState => ({
  version: 1, phase: 'needs-login', serverUrl: null, caFile: null, hostname: null, self: null, peers: [], updatedAt: new Date().toISOString(),
});

export class StateStore {
  constructor(readonly dir: string) {}

  private path(name: string): string {
    return join(this.dir, name);
  }

  /** Creates the dir 0700, and tightens it if it already existed looser. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: DIR_MODE });
    const st = await stat(this.dir);
    if ((st.mode & 0o777) !== DIR_MODE) await chmod(this.dir, DIR_MODE);
  }

  /** Loads the keys, generating and saving any that are missing. */
  async loadOrCreateKeys(): Promise<Keys> {
    const node = await this.readKey('node.key', parseNodePrivateKey, () => generateNodeKey().privateKey);
    const machine = await this.readKey('machine.key', parseMachinePrivateKey, () => generateMachineKey().privateKey);
    return {
      nodePrivateKey: node,
      nodePublicKey: nodePublicKeyOf(node),
      machinePrivateKey: machine,
      machinePublicKey: machinePublicKeyOf(machine),
    };
  }

  private async readKey<T extends string>(name: string, parse: (t: string) => T, generate: () => T): Promise<T> {
    const text = await this.readOptional(name);
    if (text !== null) {
      await this.tighten(name);
      return parse(text.trim());
    }
    const key = generate();
    await this.writeAtomic(name, key + '\n');
    return key;
  }

  async loadState(): Promise<PersistedState> {
    const text = await this.readOptional('state.json');
    if (text === null) return emptyState();
    await this.tighten('state.json');
    const parsed = JSON.parse(text) as Partial<PersistedState>;
    return { ...emptyState(), ...parsed, version: 1 };
  }

  /** Saves are serialised so two quick changes cannot interleave their temp files. */
  saveState(state: Omit<PersistedState, 'version' | 'updatedAt'>): Promise<void> {
    const full: PersistedState = { version: 1, ...state, updatedAt: new Date().toISOString() };
    const next = this.saving.then(() => this.writeAtomic('state.json', JSON.stringify(full, null, 2) + '\n'));
    this.saving = next.catch(() => {});
    return next;
  }
  private saving: Promise<void> = Promise.resolve();

  /** `weft logout`: forget keys and state. The next join generates fresh keys. */
  async wipe(): Promise<void> {
    for (const name of ['node.key', 'machine.key', 'state.json']) await rm(this.path(name), { force: true });
  }

  private async readOptional(name: string): Promise<string | null> {
    try {
      return await readFile(this.path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  private async tighten(name: string): Promise<void> {
    const st = await stat(this.path(name));
    if ((st.mode & 0o777) !== FILE_MODE) await chmod(this.path(name), FILE_MODE);
  }

  private async writeAtomic(name: string, content: string): Promise<void> {
    const tmp = this.path(`.${name}.${process.pid}.tmp`);
    // mode applies at creation only; the umask cannot widen 0600, and chmod makes it exact.
    await writeFile(tmp, content, { mode: FILE_MODE, flush: true });
    await chmod(tmp, FILE_MODE);
    await rename(tmp, this.path(name));
  }
}

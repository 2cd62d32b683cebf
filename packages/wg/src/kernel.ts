/**
 * Kernel WireGuard backend: `ip link add NAME type wireguard`, programmed with `wg set` and read
 * back with `wg show NAME dump`. Same incremental peer logic as userspace (peer-diff.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toWireGuardBase64 } from '@weft/crypto';
import type { NodePrivateKey } from '@weft/crypto';
import type { Driver } from './managed-device.js';
import { runner } from './exec.js';
import type { Runner } from './exec.js';
import type { PeerOp } from './peer-diff.js';
import { linkDelete, linkExists } from './routes.js';
import type { InterfaceSet, DeviceState } from './uapi.js';
import { parseWgDump } from './wg-dump.js';

/**
 * `wg set` argv for interface settings and peer ops. The private key is read from `keyPath`
 * (a 0600 file we write and delete) so it never appears in argv. Not /dev/stdin: Node's stdio
 * pipes are socketpairs, which `wg` cannot fopen.
 */
export function wgSetCommand(name: string, iface: InterfaceSet, ops: PeerOp[], keyPath?: string): string[] {
  const argv = ['wg', 'set', name];
  if (iface.listenPort !== undefined) argv.push('listen-port', String(iface.listenPort));
  if (iface.privateKey !== undefined) {
    if (!keyPath) throw new TypeError('wgSetCommand: a private key needs keyPath');
    argv.push('private-key', keyPath);
  }
  for (const op of ops) {
    argv.push('peer', toWireGuardBase64(op.publicKey));
    if (op.kind === 'remove') {
      argv.push('remove');
      continue;
    }
    if (op.endpoint !== undefined) argv.push('endpoint', op.endpoint);
    if (op.persistentKeepalive !== undefined) {
      argv.push('persistent-keepalive', op.persistentKeepalive ? String(op.persistentKeepalive) : 'off');
    }
    // `allowed-ips` replaces the peer's whole set; "" clears it.
    if (op.allowedIps !== undefined) argv.push('allowed-ips', op.allowedIps.join(','));
  }
  return argv;
}

/** Runs `fn` with the key in a fresh 0600 file inside a 0700 directory, removed afterwards. */
async function withKeyFile<T>(privateKey: NodePrivateKey | undefined, fn: (path?: string) => Promise<T>): Promise<T> {
  if (privateKey === undefined) return fn();
  const dir = await mkdtemp(join(tmpdir(), 'weft-wg-'));
  try {
    const path = join(dir, 'key');
    await writeFile(path, toWireGuardBase64(privateKey) + '\n', { mode: 0o600 });
    return await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function kernelLinkAddCommand(name: string): string[] {
  return ['ip', 'link', 'add', 'dev', name, 'type', 'wireguard'];
}

export class KernelDriver implements Driver {
  readonly backend = 'kernel' as const;
  private readonly run: Runner;

  constructor(readonly name: string, netns?: string) {
    this.run = runner(netns);
  }

  get runner(): Runner {
    return this.run;
  }

  async ensure(): Promise<boolean> {
    if (await linkExists(this.run, this.name)) return false;
    await this.run(kernelLinkAddCommand(this.name));
    return true;
  }

  async read(): Promise<DeviceState> {
    return parseWgDump(await this.run(['wg', 'show', this.name, 'dump']));
  }

  async write(iface: InterfaceSet, ops: PeerOp[]): Promise<void> {
    if (iface.privateKey === undefined && iface.listenPort === undefined && ops.length === 0) return;
    await withKeyFile(iface.privateKey, (keyPath) => this.run(wgSetCommand(this.name, iface, ops, keyPath)));
  }

  async destroy(): Promise<void> {
    await linkDelete(this.run, this.name);
  }
}

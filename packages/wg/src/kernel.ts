/**
 * Kernel WireGuard backend: `ip link add NAME type wireguard`, programmed with `wg set` and read
 * back with `wg show NAME dump`. Same incremental peer logic as userspace (peer-diff.ts).
 */
import { toWireGuardBase64 } from '@weft/crypto';
import type { Driver } from './managed-device.js';
import { runner } from './exec.js';
import type { Runner } from './exec.js';
import type { PeerOp } from './peer-diff.js';
import { linkDelete, linkExists } from './routes.js';
import type { InterfaceSet, DeviceState } from './uapi.js';
import { parseWgDump } from './wg-dump.js';

/**
 * `wg set` argv for interface settings and peer ops. The private key is read from stdin
 * (`/dev/stdin`) so it never appears in argv; `input` is what to feed it.
 */
export function wgSetCommand(name: string, iface: InterfaceSet, ops: PeerOp[]): { argv: string[]; input?: string } {
  const argv = ['wg', 'set', name];
  if (iface.listenPort !== undefined) argv.push('listen-port', String(iface.listenPort));
  if (iface.privateKey !== undefined) argv.push('private-key', '/dev/stdin');
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
  return iface.privateKey !== undefined ? { argv, input: toWireGuardBase64(iface.privateKey) + '\n' } : { argv };
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
    const { argv, input } = wgSetCommand(this.name, iface, ops);
    await this.run(argv, input !== undefined ? { input } : {});
  }

  async destroy(): Promise<void> {
    await linkDelete(this.run, this.name);
  }
}

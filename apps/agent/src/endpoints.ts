/**
 * Endpoint candidates this node reports to the server: its non-loopback, non-tunnel IPv4
 * addresses with WireGuard's own listen port. (Reflexive STUN addresses come with NAT traversal.)
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export function localEndpoints(
  port: number,
  exclude: { interfaceName: string; addresses: string[] },
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): string[] {
  const out = new Set<string>();
  for (const [name, infos] of Object.entries(interfaces)) {
    if (name === exclude.interfaceName) continue;
    for (const info of infos ?? []) {
      if (info.family !== 'IPv4' || info.internal) continue;
      if (exclude.addresses.includes(info.address)) continue;
      out.add(`${info.address}:${port}`);
    }
  }
  return [...out].sort().slice(0, 16);
}

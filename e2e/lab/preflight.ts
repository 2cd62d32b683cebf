/**
 * Checks that the lab can run at all: root, /dev/net/tun, and the binaries it shells out to. A
 * missing prerequisite is a loud failure that names the Debian package to install, never a skip
 * (the e2e tier must not pass by doing nothing).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Binary -> Debian package that provides it. */
export const PACKAGES = {
  ip: 'iproute2',
  ping: 'iputils-ping',
  flock: 'util-linux',
  'wireguard-go': 'wireguard-go',
  wg: 'wireguard-tools',
  nft: 'nftables',
  iperf3: 'iperf3',
  conntrack: 'conntrack',
  sysctl: 'procps',
} as const;
export type Binary = keyof typeof PACKAGES;

/** What every lab needs; `Lab.create` checks these. Others are checked where they are used. */
export const LAB_BINARIES: Binary[] = ['ip', 'ping', 'flock', 'wireguard-go', 'wg'];

export class LabPrerequisiteError extends Error {
  override name = 'LabPrerequisiteError';
}

export function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export function requireBinaries(bins: readonly Binary[]): void {
  const missing = bins.filter((b) => which(b) === null);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((b) => PACKAGES[b]))].join(' ');
    throw new LabPrerequisiteError(
      `the real-network lab needs ${missing.join(', ')} on PATH; install with: apt-get install -y ${pkgs}`,
    );
  }
}

export function requireRoot(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new LabPrerequisiteError(
      'the real-network lab needs root (network namespaces, veth, TUN devices); run the e2e tier as root, e.g. `sudo npm run test:e2e`',
    );
  }
  if (!existsSync('/dev/net/tun')) {
    throw new LabPrerequisiteError('the real-network lab needs /dev/net/tun (modprobe tun, or run the container with --device /dev/net/tun)');
  }
}

export function preflight(bins: readonly Binary[] = LAB_BINARIES): void {
  requireRoot();
  requireBinaries(bins);
}

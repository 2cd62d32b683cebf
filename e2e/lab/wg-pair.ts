/**
 * A hand-configured wireguard-go pair between two hosts: the baseline Weft is measured against (same
 * lab, same run), and a check that the machine can run userspace WireGuard at all. Configured the way
 * a person would with wireguard-tools: `wg genkey`, `wg set`, `ip addr`, `ip link`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Host } from './host.js';
import type { LabProcess } from './process.js';
import { requireBinaries } from './preflight.js';
import { GiveUp, waitFor } from './wait.js';

export interface WgPairOptions {
  /** Interface name prefix (see `Host.ifname`). Default "wgb". */
  prefix?: string;
  /** First three octets of the tunnel /24; a gets .1, b gets .2. Default "10.99.0". */
  subnet?: string;
  /** UDP port on both hosts. Default 51820. */
  listenPort?: number;
  /** Default 1280, the agent's default, so throughput comparisons are like for like. */
  mtu?: number;
  /** Seconds; default off. */
  persistentKeepalive?: number;
}

export interface WgPairEnd {
  host: Host;
  ifname: string;
  /** Address inside the tunnel, without prefix length. */
  tunnelIp: string;
  publicKey: string;
  listenPort: number;
  /** The wireguard-go process (foreground, tracked by the lab). */
  process: LabProcess;
}

export interface WgPair {
  a: WgPairEnd;
  b: WgPairEnd;
  mtu: number;
  /** Stops both wireguard-go processes; their interfaces go with them. */
  close(): Promise<void>;
}

export const uapiSocket = (ifname: string) => `/var/run/wireguard/${ifname}.sock`;

/** Starts wireguard-go in the host and waits until its UAPI socket answers. */
export async function startWireguardGo(host: Host, ifname: string, timeoutMs = 10_000): Promise<LabProcess> {
  // WG_PROCESS_FOREGROUND=1 silences the "kernel has WireGuard, you don't need me" banner that
  // would otherwise fill every log tail.
  const proc = host.spawn('wireguard-go', ['-f', ifname], { logName: `wireguard-go-${ifname}`, env: { WG_PROCESS_FOREGROUND: '1' } });
  await waitFor(
    async () => {
      if (!proc.running) throw new GiveUp(`wireguard-go exited (${proc.exitStatus?.code ?? proc.exitStatus?.signal}):\n${proc.tail(10)}`);
      if (!existsSync(uapiSocket(ifname))) return false;
      return (await host.exec('wg', ['show', ifname, 'listen-port'], { timeoutMs: 3000 })).code === 0;
    },
    { timeoutMs, intervalMs: 20, what: `wireguard-go ${ifname} in ${host.name}` },
  );
  return proc;
}

export async function startWgPair(a: Host, b: Host, opts: WgPairOptions = {}): Promise<WgPair> {
  requireBinaries(['wireguard-go', 'wg', 'ip']);
  const prefix = opts.prefix ?? 'wgb';
  const subnet = opts.subnet ?? '10.99.0';
  const port = opts.listenPort ?? 51820;
  const mtu = opts.mtu ?? 1280;

  const ends = await Promise.all(
    [a, b].map(async (host, i) => {
      const ifname = host.ifname(prefix);
      const priv = (await host.execOk('wg', ['genkey'])).stdout.trim();
      const pub = (await host.execOk('wg', ['pubkey'], { input: priv + '\n' })).stdout.trim();
      const keyPath = host.tmpPath(`${ifname}.key`);
      writeFileSync(keyPath, priv + '\n', { mode: 0o600 });
      const process = await startWireguardGo(host, ifname);
      return { host, ifname, tunnelIp: `${subnet}.${i + 1}`, publicKey: pub, listenPort: port, process, keyPath };
    }),
  );
  const [ea, eb] = ends as [(typeof ends)[0], (typeof ends)[0]];
  for (const [self, peer] of [
    [ea, eb],
    [eb, ea],
  ] as const) {
    const peerArgs = ['peer', peer.publicKey, 'endpoint', `${peer.host.ip}:${peer.listenPort}`, 'allowed-ips', `${peer.tunnelIp}/32`];
    if (opts.persistentKeepalive) peerArgs.push('persistent-keepalive', String(opts.persistentKeepalive));
    await self.host.execOk('wg', ['set', self.ifname, 'private-key', self.keyPath, 'listen-port', String(self.listenPort), ...peerArgs]);
    await self.host.execOk('ip', ['addr', 'add', `${self.tunnelIp}/24`, 'dev', self.ifname]);
    await self.host.execOk('ip', ['link', 'set', self.ifname, 'mtu', String(mtu), 'up']);
  }
  const strip = ({ keyPath: _k, ...end }: (typeof ends)[0]): WgPairEnd => end;
  return {
    a: strip(ea),
    b: strip(eb),
    mtu,
    async close() {
      await Promise.all([ea.process.kill(), eb.process.kill()]);
    },
  };
}

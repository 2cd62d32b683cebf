/**
 * The contract between the agent and a WireGuard interface on this host. Two backends implement
 * it: kernel WireGuard (via `ip`/`wg`) and userspace wireguard-go (spawned, configured over its
 * UAPI socket, supervised). The agent codes against this interface only.
 */
import type { NodePrivateKey, NodePublicKey } from '@weft/crypto';

export type Backend = 'kernel' | 'userspace';
export type BackendChoice = Backend | 'auto';

export interface PeerConfig {
  publicKey: NodePublicKey;
  /** "ip:port"; absent = none known (the peer may still reach us). */
  endpoint?: string;
  /** CIDRs, e.g. "100.64.0.2/32", "fd7a:...::2/128". */
  allowedIps: string[];
  /** Seconds; absent = off. */
  persistentKeepalive?: number;
}

export interface PeerStats {
  publicKey: NodePublicKey;
  endpoint: string | null;
  /** Null = never. */
  lastHandshake: Date | null;
  rxBytes: number;
  txBytes: number;
}

export interface InterfaceConfig {
  privateKey: NodePrivateKey;
  /** UDP port; absent or 0 = random. */
  listenPort?: number;
  /** CIDRs assigned to the interface, e.g. "100.64.0.1/10", "fd7a:...::1/48". */
  addresses: string[];
  /** Default 1280. */
  mtu?: number;
  /**
   * CIDRs routed via the interface, e.g. the mesh ranges "100.64.0.0/10" and the tailnet's IPv6
   * ULA /48. Absent = none. Routes dropped from this list on a later `configure` are removed.
   */
  routes?: string[];
}

export interface Device {
  readonly name: string;
  readonly backend: Backend;
  /** Sets key, port, MTU and addresses and brings the link up. Idempotent. */
  configure(config: InterfaceConfig): Promise<void>;
  /**
   * Makes the peer set exactly `peers`, touching only what differs: unchanged peers keep their
   * sessions, the link is never taken down.
   */
  setPeers(peers: PeerConfig[]): Promise<void>;
  upsertPeer(peer: PeerConfig): Promise<void>;
  removePeer(publicKey: NodePublicKey): Promise<void>;
  stats(): Promise<PeerStats[]>;
  /** The UDP port WireGuard actually listens on. */
  listenPort(): Promise<number>;
  /** Link down, configuration kept in memory so `configure` + `setPeers` bring it back. */
  down(): Promise<void>;
  /** Removes the interface and stops wireguard-go if it was ours. */
  close(): Promise<void>;
}

export interface OpenOptions {
  name: string;
  backend: BackendChoice;
  /** Called with human-readable events: wireguard-go restarted, etc. */
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Create the interface inside this network namespace (tests). Normally absent: the agent is
   * itself started inside the namespace it should program.
   */
  netns?: string;
  /** Path of the wireguard-go binary; default "wireguard-go" from PATH. Userspace only. */
  wireguardGo?: string;
}

/**
 * Netmap -> WireGuard. The engine owns the Device: a full netmap configures the interface and
 * makes the peer set exact (setPeers, which keeps unchanged peers' sessions); deltas touch only
 * the peers they name (upsertPeer / removePeer), so adding or removing one peer never disturbs
 * another. Calls are serialised: WireGuard sees changes in the order the server sent them.
 *
 * Addressing: the interface gets the node's IPv4 with the /10 of 100.64.0.0/10 and its IPv6 with
 * the /48 of the deployment's ULA. The prefix makes the kernel install the on-link routes to the
 * whole tailnet together with the address, so there is no separate route table to keep in sync
 * (the Device contract has addresses, not routes) and nothing to clean up when the link goes.
 * WireGuard's allowed IPs, not the route, decide which peer a packet goes to. The cost: the host
 * cannot also use other parts of 100.64.0.0/10 (CGNAT) on another link; /32 + explicit routes
 * would be the answer then, and needs route support in @weft/wg.
 */
import type { Peer, SelfNode } from '@weft/protocol';
import type { NodePrivateKey, NodePublicKey } from '@weft/crypto';
import { parseNodePublicKey } from '@weft/crypto';
import type { BackendChoice, Device, OpenOptions, PeerConfig, PeerStats } from '@weft/wg';
import type { NetmapChange } from './netmap.js';
import type { Logger } from './log.js';
import { PERSISTENT_KEEPALIVE_S } from './tunables.js';

export const IPV4_PREFIX = 10;
export const IPV6_PREFIX = 48;

export type OpenDevice = (opts: OpenOptions) => Device | Promise<Device>;

export interface EngineOptions {
  openDevice: OpenDevice;
  interfaceName: string;
  backend: BackendChoice;
  privateKey: NodePrivateKey;
  listenPort: number;
  mtu: number;
  log: Logger;
}

const bare = (addr: string) => addr.split('/')[0]!;

export function interfaceAddresses(self: SelfNode): string[] {
  return [`${bare(self.ipv4)}/${IPV4_PREFIX}`, `${bare(self.ipv6)}/${IPV6_PREFIX}`];
}

/**
 * Keepalive only with an endpoint: a keepalive to a peer with none makes WireGuard attempt a
 * handshake it cannot send, and it then holds off new attempts for RekeyTimeout (5 s). Two
 * nodes joining together each get the other before its endpoint, so both stalled for 5 s.
 * Turned on together with the endpoint, keepalive starts the handshake at once instead.
 */
export function peerConfig(peer: Peer, relayEndpoint?: string): PeerConfig {
  const allowedIps = peer.allowedIps.length > 0 ? peer.allowedIps : [`${bare(peer.ipv4)}/32`, `${bare(peer.ipv6)}/128`];
  const config: PeerConfig = { publicKey: parseNodePublicKey(peer.nodeKey), allowedIps };
  // A relayed peer's endpoint is this host's local socket for it (relay-path.ts), whatever the netmap says.
  const endpoint = relayEndpoint ?? peer.endpoints[0];
  if (endpoint) {
    config.endpoint = endpoint;
    config.persistentKeepalive = PERSISTENT_KEEPALIVE_S;
  }
  return config;
}

/** Whether a change to a peer needs WireGuard reprogramming (name or online flips do not). */
function wireguardDiffers(a: Peer, b: Peer): boolean {
  return a.nodeKey !== b.nodeKey || a.endpoints[0] !== b.endpoints[0] || a.allowedIps.join() !== b.allowedIps.join()
    || a.ipv4 !== b.ipv4 || a.ipv6 !== b.ipv6;
}

function sameExceptEndpoint(a: Peer, b: Peer): boolean {
  return !wireguardDiffers({ ...a, endpoints: b.endpoints }, b);
}

export class Engine {
  private device: Device | undefined;
  private configuredFor: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Peers carried over the relay: node key -> the local socket WireGuard sends them to. */
  private readonly relayed = new Map<string, string>();

  constructor(private readonly opts: EngineOptions) {}

  private configOf(peer: Peer): PeerConfig {
    return peerConfig(peer, this.relayed.get(peer.nodeKey));
  }

  /** Forgets every relay override (the relay path stopped); the next netmap programs netmap endpoints. */
  clearRelayed(): void {
    this.relayed.clear();
  }

  /** The local relay socket this peer is pointed at, if it is relayed. */
  relayEndpointOf(nodeKey: string): string | undefined {
    return this.relayed.get(nodeKey);
  }

  /**
   * Points `peer` at `endpoint` (its local relay socket), or back at its netmap endpoint with
   * null. Kept across netmaps and deltas until changed again.
   */
  setRelayEndpoint(peer: Peer, endpoint: string | null): Promise<void> {
    return this.serial(async () => {
      if (endpoint === null) this.relayed.delete(peer.nodeKey);
      else this.relayed.set(peer.nodeKey, endpoint);
      if (!this.configuredFor || !this.device) return;
      await this.device.upsertPeer(this.configOf(peer));
      this.opts.log('info', endpoint ? 'peer relayed' : 'peer direct', { peer: peer.name, endpoint: endpoint ?? peer.endpoints[0] ?? null });
    });
  }

  /** True while the interface is configured and up. */
  get up(): boolean {
    return this.configuredFor !== undefined;
  }

  get deviceInfo(): { name: string; backend: string } | undefined {
    return this.device && { name: this.device.name, backend: this.device.backend };
  }

  /** Runs `fn` after every earlier engine call has finished. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private async openDevice(): Promise<Device> {
    if (!this.device) {
      this.device = await this.opts.openDevice({ name: this.opts.interfaceName, backend: this.opts.backend, log: this.opts.log });
      this.opts.log('info', 'WireGuard device opened', { name: this.device.name, backend: this.device.backend });
    }
    return this.device;
  }

  /**
   * Creates the interface (starts wireguard-go) without configuring it, so that work overlaps
   * with registration; the first `applyFull` configures it.
   */
  open(): Promise<void> {
    return this.serial(async () => {
      await this.openDevice();
    });
  }

  private async ensureConfigured(self: SelfNode): Promise<Device> {
    await this.openDevice();
    const device = this.device!;
    const addresses = interfaceAddresses(self);
    const key = addresses.join(',');
    if (this.configuredFor !== key) {
      await device.configure({ privateKey: this.opts.privateKey, listenPort: this.opts.listenPort, addresses, mtu: this.opts.mtu });
      this.configuredFor = key;
      this.opts.log('info', 'interface configured', { addresses, mtu: this.opts.mtu });
    }
    return device;
  }

  /**
   * Full netmap (or the persisted last one at start-up): interface up, peer set exact. When the
   * interface is not configured for `self` yet, peers go in before the addresses: nothing sent
   * the moment an address appears is blackholed for want of a peer (it waits for the handshake).
   */
  applyFull(self: SelfNode, peers: Peer[]): Promise<void> {
    return this.serial(async () => {
      const configured = this.configuredFor === interfaceAddresses(self).join(',');
      if (!configured) await (await this.openDevice()).setPeers(peers.map((p) => this.configOf(p)));
      const device = await this.ensureConfigured(self);
      if (configured) await device.setPeers(peers.map((p) => this.configOf(p)));
      this.opts.log('info', 'netmap applied', { peers: peers.length });
    });
  }

  applyChange(change: Extract<NetmapChange, { kind: 'delta' }>, self: SelfNode): Promise<void> {
    return this.serial(async () => {
      if (!this.configuredFor) return; // down: the next `up` applies the whole netmap
      const device = change.self ? await this.ensureConfigured(self) : this.device!;
      for (const peer of change.removed) {
        this.relayed.delete(peer.nodeKey);
        await device.removePeer(parseNodePublicKey(peer.nodeKey));
      }
      for (const { peer, previous } of change.upserted) {
        if (previous && previous.nodeKey !== peer.nodeKey) {
          this.relayed.delete(previous.nodeKey);
          await device.removePeer(parseNodePublicKey(previous.nodeKey));
        }
        if (!previous || wireguardDiffers(previous, peer)) await device.upsertPeer(this.configOf(peer));
      }
      for (const { peer, previous } of change.patched) {
        // A relayed peer's new netmap endpoint changes nothing on WireGuard.
        if (wireguardDiffers(previous, peer) && !(this.relayed.has(peer.nodeKey) && sameExceptEndpoint(previous, peer))) await device.upsertPeer(this.configOf(peer));
      }
      this.opts.log('debug', 'delta applied', {
        removed: change.removed.length, upserted: change.upserted.length, patched: change.patched.length,
      });
    });
  }

  /** `weft down`: link down, device kept so `applyFull` brings it back. */
  down(): Promise<void> {
    return this.serial(async () => {
      if (this.device && this.configuredFor) await this.device.down();
      this.configuredFor = undefined;
    });
  }

  /** Revoked, expired, logged out, daemon exit: interface removed, wireguard-go stopped. */
  close(): Promise<void> {
    return this.serial(async () => {
      const device = this.device;
      this.device = undefined;
      this.configuredFor = undefined;
      this.relayed.clear();
      if (device) await device.close();
    });
  }

  async stats(): Promise<Map<NodePublicKey, PeerStats>> {
    if (!this.device || !this.configuredFor) return new Map();
    const list = await this.device.stats();
    return new Map(list.map((s) => [s.publicKey, s]));
  }

  async listenPort(): Promise<number | undefined> {
    if (!this.device || !this.configuredFor) return undefined;
    return this.device.listenPort();
  }
}

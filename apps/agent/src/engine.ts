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
import type { Peer, ResponderPeer, SelfNode } from '@weft/protocol';
import type { NodePrivateKey, NodePublicKey } from '@weft/crypto';
import { parseNodePublicKey } from '@weft/crypto';
import type { BackendChoice, Device, OpenOptions, PeerConfig, PeerStats } from '@weft/wg';
import type { Firewall } from './firewall/firewall.js';
import type { WireFilter } from './firewall/filter.js';
import type { NetmapChange } from './netmap.js';
import type { Logger } from './log.js';
import { ANSWERING_SIDE_GRACE_MS, PERSISTENT_KEEPALIVE_S, RESPONDER_KEEPALIVE_S, WG_SOCKET_BUFFER_BYTES } from './tunables.js';
import { raiseWireguardGoBuffers } from './wg-socket-buffers.js';

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
  /** Enforces the netmap's packet filter; absent = tunnel traffic is not filtered (unit tests). */
  firewall?: Firewall;
}

const bare = (addr: string) => addr.split('/')[0]!;

export function interfaceAddresses(self: SelfNode): string[] {
  return [`${bare(self.ipv4)}/${IPV4_PREFIX}`, `${bare(self.ipv6)}/${IPV6_PREFIX}`];
}

/**
 * Which side of a pair handshakes first: the node whose key sorts lower. Both sides decide from
 * the netmap alone, so when two nodes learn each other's endpoint in the same moment only one
 * sends an initiation at once. Crossing initiations while one side also recreated its peer cost
 * a direction its session for WireGuard's RekeyTimeout (5 s): the stall this rule removes.
 */
export function initiatesTo(selfKey: string, peerKey: string): boolean {
  return selfKey < peerKey;
}

/**
 * Keepalive only with an endpoint: a keepalive to a peer with none makes WireGuard attempt a
 * handshake it cannot send, and it then holds off new attempts for RekeyTimeout (5 s). Two
 * nodes joining together each get the other before its endpoint, so both stalled for 5 s.
 * Turned on together with the endpoint, keepalive starts the handshake at once instead; the
 * answering side of a pair (`keepalive` false) gets the endpoint alone until its grace is over.
 */
export function peerConfig(peer: Peer, keepalive: boolean | number = true, endpointOverride?: string): PeerConfig {
  const allowedIps = peer.allowedIps.length > 0 ? peer.allowedIps : [`${bare(peer.ipv4)}/32`, `${bare(peer.ipv6)}/128`];
  const config: PeerConfig = { publicKey: parseNodePublicKey(peer.nodeKey), allowedIps };
  // The path PeerPaths chose (a local relay socket, or the candidate that punched through) wins over the netmap's first endpoint.
  const endpoint = endpointOverride ?? peer.endpoints[0];
  if (endpoint) {
    config.endpoint = endpoint;
    const seconds = keepalive === true ? PERSISTENT_KEEPALIVE_S : keepalive === false ? 0 : keepalive;
    if (seconds > 0) config.persistentKeepalive = seconds;
  }
  return config;
}

/**
 * Where WireGuard sends a peer's packets, as PeerPaths chose: `endpoint` instead of the netmap's,
 * and `keepaliveS` when set (probes), else the one-initiator rule's keepalive. `relay`: the
 * endpoint is this host's local relay socket for the peer.
 */
export interface PathOverride {
  endpoint: string;
  relay: boolean;
  keepaliveS?: number;
}

/**
 * The server's responder as a WireGuard peer: no allowed IPs (nothing is ever routed to it, and
 * nothing it could send is accepted), an endpoint and a keepalive, so WireGuard keeps sending it
 * handshake initiations from its own port: how the server learns this node's NAT mapping.
 */
export function responderConfig(r: ResponderPeer): PeerConfig {
  return { publicKey: parseNodePublicKey(r.publicKey), allowedIps: [], endpoint: r.endpoint, persistentKeepalive: RESPONDER_KEEPALIVE_S };
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
  private selfKey: string | undefined;
  /** Every peer of the last netmap, by node key: what a grace timer reprograms. */
  private readonly wanted = new Map<string, Peer>();
  /** Peers this node answers whose grace is over: they get keepalive like the ones it initiates to. */
  private readonly graceOver = new Set<string>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  /** Peers whose path PeerPaths chose: node key -> where WireGuard sends them (relay socket or punched candidate). */
  private readonly overrides = new Map<string, PathOverride>();
  /** How many times each peer was aimed somewhere (`setPath`): `pathChanges`. */
  private readonly aimed = new Map<string, number>();
  /** The responders of the last netmap (refreshResponders re-adds them). */
  private responders: ResponderPeer[] = [];
  /** The interface MTU now: --mtu, then what adaptive MTU (mtu-probe.ts) sets. */
  private mtuNow: number;
  /** Peers PeerPaths found idle (path-choice.ts `inUse`): no keepalive, so an idle pair sends nothing. */
  private readonly idle = new Set<string>();

  constructor(private readonly opts: EngineOptions) {
    this.mtuNow = opts.mtu;
  }

  get mtu(): number {
    return this.mtuNow;
  }

  /**
   * Sets the interface MTU (adaptive MTU): `ip link set dev IFACE mtu N` through `setLink`, kept
   * for a later reconfigure. Serialised with the rest, so it never races a configure.
   */
  setMtu(mtu: number, setLink: (name: string, mtu: number) => Promise<void>): Promise<void> {
    return this.serial(async () => {
      if (mtu === this.mtuNow) return;
      this.mtuNow = mtu;
      if (this.device && this.configuredFor) await setLink(this.device.name, mtu);
    });
  }


  /** Forgets every path override (the relay path stopped); the next netmap programs netmap endpoints. */
  clearRelayed(): void {
    this.overrides.clear();
  }

  /**
   * Marks `peer` idle (no keepalive: WireGuard then sends it nothing until there is a packet for
   * it, and handshakes for that packet at once) or in use again (keepalive back per the
   * one-initiator rule; wireguard-go sends one when it turns on). Only a change reprograms it.
   */
  setIdle(peer: Peer, idle: boolean): Promise<void> {
    if (this.idle.has(peer.nodeKey) === idle) return Promise.resolve();
    if (idle) this.idle.add(peer.nodeKey);
    else this.idle.delete(peer.nodeKey);
    return this.serial(async () => {
      if (!this.configuredFor || !this.device || !this.wanted.has(peer.nodeKey) || this.opts.firewall?.blocksTunnel) return;
      await this.device.upsertPeer(this.config(peer));
      this.opts.log('debug', idle ? 'peer idle: keepalive off' : 'peer in use: keepalive on', { peer: peer.name });
    });
  }

  /** Forgets which peers were idle (path choice stopped): peers get keepalive when next programmed. */
  clearIdle(): void {
    this.idle.clear();
  }

  isIdle(nodeKey: string): boolean {
    return this.idle.has(nodeKey);
  }

  /**
   * How many times `peer` was aimed somewhere (relay, direct, a hole punch's candidate) since this
   * engine began: a measurement that spans a change measured more than one path, even when the
   * endpoint at its end is the one at its start (a hole punch's window, then back to the relay).
   */
  pathChanges(nodeKey: string): number {
    return this.aimed.get(nodeKey) ?? 0;
  }

  /** The local relay socket this peer is pointed at, if it is relayed. */
  relayEndpointOf(nodeKey: string): string | undefined {
    const o = this.overrides.get(nodeKey);
    return o?.relay ? o.endpoint : undefined;
  }

  /** Points `peer` at its local relay socket `endpoint`, or back at its netmap endpoint with null. */
  setRelayEndpoint(peer: Peer, endpoint: string | null): Promise<void> {
    return this.setPath(peer, endpoint === null ? null : { endpoint, relay: true });
  }

  /**
   * Points `peer` where `path` says, or back at its netmap endpoint with null. Kept across
   * netmaps and deltas until changed again. `recreate`: the peer is removed first (it never had
   * a handshake, so there is no session to lose, and WireGuard forgets a handshake attempt it
   * would otherwise hold off new ones for: RekeyTimeout, 5 s).
   */
  setPath(peer: Peer, path: PathOverride | null, opts: { recreate?: boolean } = {}): Promise<void> {
    this.aimed.set(peer.nodeKey, (this.aimed.get(peer.nodeKey) ?? 0) + 1);
    return this.serial(async () => {
      if (path === null) this.overrides.delete(peer.nodeKey);
      else this.overrides.set(peer.nodeKey, path);
      if (!this.configuredFor || !this.device || !this.wanted.has(peer.nodeKey) || this.opts.firewall?.blocksTunnel) return;
      if (opts.recreate) await this.device.removePeer(parseNodePublicKey(peer.nodeKey));
      await this.device.upsertPeer(this.config(peer));
      this.opts.log('debug', 'peer path set', { peer: peer.name, endpoint: path?.endpoint ?? peer.endpoints[0] ?? null, relay: path?.relay ?? false, keepalive: path?.keepaliveS ?? null });
    });
  }

  /**
   * This host roamed: the server's responders are removed and added again, so WireGuard sends
   * them a fresh initiation now (not at its next keepalive, up to ~25 s away) and the server
   * learns the new public mapping of WireGuard's port at once.
   */
  refreshResponders(): Promise<void> {
    return this.serial(async () => {
      if (!this.device || !this.configuredFor) return;
      for (const r of this.responders) {
        await this.device.removePeer(parseNodePublicKey(r.publicKey));
        await this.device.upsertPeer(responderConfig(r));
      }
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
      await device.configure({ privateKey: this.opts.privateKey, listenPort: this.opts.listenPort, addresses, mtu: this.mtuNow });
      this.configuredFor = key;
      this.opts.log('info', 'interface configured', { addresses, mtu: this.mtuNow });
      if (device.backend === 'userspace') void this.raiseSocketBuffers(device); // not on the join's path: ss takes a few ms
    }
    return device;
  }

  /**
   * wireguard-go's sockets on the listen port get WG_SOCKET_BUFFER_BYTES (wg-socket-buffers.ts):
   * it has bound them by now (port set, link up). What cannot be done is logged; `weft doctor`
   * then WARNs with the sysctl fix.
   */
  private async raiseSocketBuffers(device: Device): Promise<void> {
    const port = await device.listenPort().catch(() => 0);
    if (!port) return;
    const r = await raiseWireguardGoBuffers(port, WG_SOCKET_BUFFER_BYTES);
    if ('skipped' in r) this.opts.log('info', "wireguard-go's UDP buffers left as they are", { port, why: r.skipped });
    else if (r.raised > 0) this.opts.log('info', "wireguard-go's UDP buffers raised", { port, sockets: r.raised, rcvbuf: r.rcvbuf });
  }

  /**
   * Full netmap (or the persisted last one at start-up): interface up, peer set exact. When the
   * interface is not configured for `self` yet, peers go in before the addresses: nothing sent
   * the moment an address appears is blackholed for want of a peer (it waits for the handshake).
   */
  applyFull(self: SelfNode, peers: Peer[], packetFilter?: WireFilter, responders: ResponderPeer[] = []): Promise<void> {
    return this.serial(async () => {
      this.selfKey = self.nodeKey;
      this.responders = responders;
      const keys = new Set(peers.map((p) => p.nodeKey));
      for (const key of this.wanted.keys()) if (!keys.has(key)) this.forget(key);
      for (const peer of peers) this.wanted.set(peer.nodeKey, peer);
      // The filter goes in before the peers it is about; when it cannot, no peer goes in (firewall.ts).
      const firewallFailed = await this.applyFirewall(peers, packetFilter);
      const admitted = this.opts.firewall?.blocksTunnel ? [] : peers;
      // Responders are in the exact peer set too: one the netmap dropped is removed.
      const configs = [...admitted.map((p) => this.config(p)), ...responders.map(responderConfig)];
      const configured = this.configuredFor === interfaceAddresses(self).join(',');
      if (!configured) await (await this.openDevice()).setPeers(configs);
      const device = await this.ensureConfigured(self);
      if (configured) await device.setPeers(configs);
      this.opts.log('info', 'netmap applied', { peers: admitted.length, responders: responders.length });
      if (firewallFailed) throw firewallFailed;
    });
  }

  /** The error to report once WireGuard is programmed, if the filter could not be put in force. */
  private async applyFirewall(peers: Peer[], packetFilter: WireFilter | undefined): Promise<Error | undefined> {
    if (!this.opts.firewall) return undefined;
    // What WireGuard lets in over the tunnel: the peers' allowed IPs (never this node's own addresses).
    const sources = peers.flatMap((p) => peerConfig(p).allowedIps);
    try {
      await this.opts.firewall.apply(packetFilter, sources);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }

  get firewallStatus() {
    return this.opts.firewall?.status;
  }

  applyChange(change: Extract<NetmapChange, { kind: 'delta' }>, self: SelfNode): Promise<void> {
    return this.serial(async () => {
      if (!this.configuredFor) return; // down: the next `up` applies the whole netmap
      this.selfKey = self.nodeKey;
      const device = change.self ? await this.ensureConfigured(self) : this.device!;
      for (const peer of change.removed) {
        this.forget(peer.nodeKey);
        this.overrides.delete(peer.nodeKey);
        await device.removePeer(parseNodePublicKey(peer.nodeKey));
      }
      // A policy change arrives as a delta carrying the new filter (null: no policy, allow all).
      // As in applyFull, it goes in before the peers it is about.
      let firewallFailed: Error | undefined;
      if (change.packetFilter !== undefined) {
        const after = new Map(this.wanted);
        for (const { peer, previous } of change.upserted) {
          if (previous) after.delete(previous.nodeKey);
          after.set(peer.nodeKey, peer);
        }
        firewallFailed = await this.applyFirewall([...after.values()], change.packetFilter ?? undefined);
      }
      // Blocked: no peer may be configured until the filter is in force (the reapply brings them all).
      const blocked = this.opts.firewall?.blocksTunnel === true;
      if (blocked && firewallFailed) await device.setPeers([]); // fail closed: nothing was in force before
      for (const { peer, previous } of change.upserted) {
        if (blocked) continue;
        if (previous && previous.nodeKey !== peer.nodeKey) {
          this.forget(previous.nodeKey);
          this.overrides.delete(previous.nodeKey);
          await device.removePeer(parseNodePublicKey(previous.nodeKey));
        }
        this.wanted.set(peer.nodeKey, peer);
        if (!previous || wireguardDiffers(previous, peer)) await device.upsertPeer(this.config(peer));
      }
      for (const { peer, previous } of change.patched) {
        if (blocked) continue;
        this.wanted.set(peer.nodeKey, peer);
        // A peer on a path PeerPaths chose: a new netmap endpoint changes nothing on WireGuard.
        if (wireguardDiffers(previous, peer) && !(this.overrides.has(peer.nodeKey) && sameExceptEndpoint(previous, peer))) await device.upsertPeer(this.config(peer));
      }
      this.opts.log('debug', 'delta applied', {
        removed: change.removed.length, upserted: change.upserted.length, patched: change.patched.length,
        ...(change.packetFilter !== undefined && { packetFilter: change.packetFilter === null ? 'none' : change.packetFilter.length }),
      });
      if (firewallFailed) throw firewallFailed;
    });
  }

  /**
   * The WireGuard config for `peer` now. A peer this node answers (the other side initiates) gets
   * its endpoint without keepalive, and a timer: if the initiator's handshake has not made the
   * pair work by then (its packets cannot get in, or it lacks our endpoint), keepalive goes on
   * here too and this side handshakes as well. An idle peer (`setIdle`) gets no keepalive; a
   * probe's own keepalive (PathOverride.keepaliveS) wins over both.
   */
  private config(peer: Peer): PeerConfig {
    const key = peer.nodeKey;
    const path = this.overrides.get(key);
    if (path?.keepaliveS !== undefined) return peerConfig(peer, path.keepaliveS, path.endpoint);
    // The one-initiator rule holds on every path, the relay's included: crossing initiations stall either way.
    const keepalive = this.selfKey === undefined || initiatesTo(this.selfKey, key) || this.graceOver.has(key);
    if (!keepalive && (path || peer.endpoints.length > 0) && !this.graceTimers.has(key)) {
      const timer = setTimeout(() => this.endGrace(key), ANSWERING_SIDE_GRACE_MS);
      timer.unref();
      this.graceTimers.set(key, timer);
    }
    return peerConfig(peer, keepalive && !this.idle.has(key), path?.endpoint);
  }

  private endGrace(key: string): void {
    this.graceTimers.delete(key);
    this.graceOver.add(key);
    this.serial(async () => {
      const peer = this.wanted.get(key);
      const path = this.overrides.get(key);
      if (!peer || !this.device || !this.configuredFor || (!path && peer.endpoints.length === 0) || this.opts.firewall?.blocksTunnel) return;
      // No handshake within the grace: the initiator could not get through, and this side may be
      // holding off its own tries (a packet it sent before it had the endpoint). A fresh peer
      // forgets that and, with keepalive, handshakes at once; there is no session to lose.
      const publicKey = parseNodePublicKey(key);
      const stats = (await this.device.stats()).find((p) => p.publicKey === publicKey);
      if (!stats?.lastHandshake) await this.device.removePeer(publicKey);
      await this.device.upsertPeer(this.config(peer));
    }).catch((err: unknown) => {
      this.opts.log('warn', 'could not turn on keepalive for a peer', { peer: key, error: String(err) });
    });
  }

  /** Drops what the engine remembers about a peer that left the netmap. */
  private forget(key: string): void {
    this.wanted.delete(key);
    this.idle.delete(key);
    this.graceOver.delete(key);
    const timer = this.graceTimers.get(key);
    if (timer) clearTimeout(timer);
    this.graceTimers.delete(key);
  }

  private forgetAll(): void {
    for (const key of [...this.wanted.keys(), ...this.graceTimers.keys()]) this.forget(key);
  }

  /** `weft down`: link down, device kept so `applyFull` brings it back. */
  down(): Promise<void> {
    return this.serial(async () => {
      this.forgetAll();
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
      this.forgetAll();
      this.overrides.clear();
      if (device) await device.close();
      await this.opts.firewall?.clear();
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

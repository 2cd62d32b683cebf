/**
 * `GET /v1/status` on the local socket, and `weft status --json`. Field names are stable: scripts
 * and the e2e lab read them. Local to this host; not part of the control protocol.
 */
import type { Peer } from '@weft/protocol';
import type { PeerStats } from '@weft/wg';
import type { FirewallStatus } from './firewall/firewall.js';
import type { Phase } from './state-store.js';
import { DIRECT_HANDSHAKE_WINDOW_S } from './tunables.js';

/** `starting`: joining or bringing the interface up; otherwise the persisted phase. */
export type State = Phase | 'starting';

/**
 * direct: WireGuard sends to the peer's own endpoint and had a handshake within
 * DIRECT_HANDSHAKE_WINDOW_S; relay: the same, but the endpoint is this node's local relay socket
 * for the peer (packets go over the control server's relay); none: no recent handshake.
 */
export type Path = 'direct' | 'relay' | 'none';


/** Who a node is: shared by `self` and every peer. */
export interface NodeIdentity {
  id: number;
  name: string;
  user: string;
  ipv4: string;
  ipv6: string;
  nodeKey: string;
}

export interface PeerStatus extends NodeIdentity {
  /** Online to the control server, as the server last said. */
  online: boolean;
  path: Path;
  /** Where WireGuard sends to now ("ip:port"), null = unknown. */
  endpoint: string | null;
  /** ISO timestamp, null = never. */
  lastHandshake: string | null;
  /** Seconds since lastHandshake, null = never. */
  handshakeAgeSeconds: number | null;
  rxBytes: number;
  txBytes: number;
  /** The relay region carrying the peer (its code) while `path` is relay; null otherwise. */
  region: string | null;
  /** ISO timestamp: since when the peer is on its current path (relay or direct); null = not decided yet. */
  pathSince: string | null;
  /**
   * When `path` is not direct: why, in words a person can act on ("hole punch timed out; retrying
   * in 30 s", "UDP to the internet is blocked here"); null when direct.
   */
  reason: string | null;
  /**
   * Path MTU to the peer: the largest inner packet (bytes) the path carried at the last probe
   * (mtu-probe.ts); null = not measured (no live session yet, or probing not running).
   */
  pathMtu: number | null;
}

/** What peer-paths.ts says of a peer's path, for `peerStatus`. */
export interface PathInfo {
  via: 'relay' | 'direct';
  since: Date;
  reason: string | null;
  region: string | null;
  /** This host's relay socket for the peer, when it has one. */
  relayEndpoint?: string;
}

export interface Status {
  /** Version of this status shape. */
  version: 1;
  state: State;
  /** Connected to the control server with a current netmap. */
  online: boolean;
  server: string | null;
  /**
   * How the control channel is carried: `scheme` of the server URL, the extra CA it is verified
   * with (`weft up --ca-file`), and `warning` set when it is not protected (plain http to a
   * server that is not on this host).
   */
  controlChannel: { scheme: 'https' | 'http' | null; caFile: string | null; warning: string | null };
  /**
   * `reflexiveEndpoint`: where the control server sees this node's WireGuard port come from (its
   * NAT's public mapping of it, learned from WireGuard's own handshakes to the server's responder);
   * absent = not seen yet.
   */
  self: (NodeIdentity & { machineKey: string | null; expiresAt: string | null; reflexiveEndpoint?: string }) | null;
  /** `mtu`: the interface MTU now; `mtuMode`: `adaptive` (follows the paths in use) or `fixed` (--mtu). */
  interface: { name: string; backend: string | null; up: boolean; listenPort: number | null; mtu: number; mtuMode: 'adaptive' | 'fixed' };
  /**
   * Set while an interactive login waits for approval. `approval: "admin"`: the device is a node
   * already, waiting for an admin to approve it (`code` is its node id); absent: waiting for a
   * person to confirm it at `url`. `fingerprint`: the node key's, as the approval page shows it.
   */
  login: { url: string; code: string; expiresAt: string; approval?: 'admin'; fingerprint?: string } | null;
  /** Last problem worth showing (cleared when things work again). */
  lastError: { code: string; message: string } | null;
  /**
   * The packet filter for traffic arriving over the tunnel (nftables): `off` (the server sent
   * none: not filtered), `enforcing`, `kept` (a change failed: the previous rules stay),
   * `blocked` (nothing could be put in force: no peers configured). `error` says why in words.
   */
  firewall: FirewallStatus;
  /**
   * This node's relay session: `connected` to the relay, and `transport` its packets take now
   * (`udp` while the relay answers our UDP binds, else `websocket`; null while not connected).
   * Absent when the relayed data path is not running (not logged in).
   */
  relay?: { connected: boolean; transport: 'udp' | 'websocket' | null; region?: string };
  peers: PeerStatus[];
  /**
   * Peer entries from the server that were malformed (bad endpoint, address, key...) and left
   * out; every other peer is applied. `id` null = the entry had no usable id.
   */
  skippedPeers: { id: number | null; reason: string }[];
}

export function pathOf(stats: PeerStats | undefined, now: Date, relayEndpoint?: string): Path {
  if (!stats?.endpoint || !stats.lastHandshake) return 'none';
  const ageS = (now.getTime() - stats.lastHandshake.getTime()) / 1000;
  if (ageS > DIRECT_HANDSHAKE_WINDOW_S) return 'none';
  return relayEndpoint !== undefined && stats.endpoint === relayEndpoint ? 'relay' : 'direct';
}

/**
 * `relayEndpoint`: this node's local relay socket for the peer, when the peer is relayed; `info`:
 * the path choice's view (absent: not decided yet).
 */
export function peerStatus(peer: Peer, stats: PeerStats | undefined, now: Date, relayEndpoint?: string, info?: PathInfo): PeerStatus {
  const hs = stats?.lastHandshake ?? null;
  let path = pathOf(stats, now, relayEndpoint);
  // A hole punch aims WireGuard at a candidate for a moment: the path is still the relay until it
  // succeeds, and the endpoint shown is the relay socket (the reason names the candidate).
  let endpoint = stats?.endpoint ?? peer.endpoints[0] ?? null;
  if (path === 'direct' && info?.via === 'relay') {
    path = 'relay';
    if (info.relayEndpoint) endpoint = info.relayEndpoint;
  }
  let reason: string | null = null;
  if (path !== 'direct') {
    reason = info?.reason ?? null;
    if (path === 'none') {
      const why = !stats ? 'not configured in WireGuard' : !hs ? 'no handshake yet' : 'no handshake in the last 3 minutes';
      reason = reason ? `${why}; ${reason}` : why;
    }
  }
  return {
    id: peer.id,
    name: peer.name,
    user: peer.user,
    ipv4: peer.ipv4,
    ipv6: peer.ipv6,
    nodeKey: peer.nodeKey,
    online: peer.online,
    path,
    endpoint,
    lastHandshake: hs ? hs.toISOString() : null,
    handshakeAgeSeconds: hs ? Math.max(0, Math.round((now.getTime() - hs.getTime()) / 1000)) : null,
    rxBytes: stats?.rxBytes ?? 0,
    txBytes: stats?.txBytes ?? 0,
    region: path === 'relay' ? info?.region ?? null : null,
    pathSince: info ? info.since.toISOString() : null,
    reason,
    pathMtu: null,
  };
}

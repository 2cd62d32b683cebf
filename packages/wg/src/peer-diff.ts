/**
 * Incremental peer programming: what a device holds now, what we want, and the smallest set of
 * per-peer operations between them. Both backends (UAPI and `wg set`) consume the same operations,
 * so "never replace_peers, never touch an unchanged peer" is decided once, here.
 */
import type { NodePublicKey } from '@weft/crypto';
import { normalizeCidr, normalizeEndpoint } from './cidr.js';
import type { PeerConfig } from './device.js';

/** A peer as a device reports it (UAPI `get=1` or `wg show dump`). */
export interface PeerState {
  publicKey: NodePublicKey;
  endpoint: string | null;
  /** Canonical CIDRs. */
  allowedIps: string[];
  /** Seconds; 0 = off. */
  persistentKeepalive: number;
  lastHandshake: Date | null;
  rxBytes: number;
  txBytes: number;
}

/**
 * One change to one peer. For `upsert`, absent fields are left as they are on the device;
 * `allowedIps` present replaces the whole set. `create` false means the peer is expected to
 * exist (UAPI `update_only`), so a concurrent removal is not silently undone.
 */
export type PeerOp =
  | { kind: 'remove'; publicKey: NodePublicKey }
  | {
      kind: 'upsert';
      publicKey: NodePublicKey;
      create: boolean;
      endpoint?: string;
      allowedIps?: string[];
      persistentKeepalive?: number;
    };

/** Validates and canonicalizes a peer; throws TypeError on bad CIDRs or endpoints. */
export function normalizePeer(peer: PeerConfig): PeerConfig {
  const allowedIps = [...new Set(peer.allowedIps.map(normalizeCidr))].sort();
  const keepalive = peer.persistentKeepalive ?? 0;
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) {
    throw new TypeError(`persistentKeepalive must be 0..65535 seconds, got ${keepalive}`);
  }
  return {
    publicKey: peer.publicKey,
    allowedIps,
    ...(peer.endpoint !== undefined ? { endpoint: normalizeEndpoint(peer.endpoint) } : {}),
    ...(keepalive ? { persistentKeepalive: keepalive } : {}),
  };
}

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

/**
 * The op that brings `current` (undefined = absent from the device) to `want`, or null if none.
 *
 * Endpoints: WireGuard roams — a peer's endpoint moves to wherever its authenticated packets come
 * from. So an endpoint is written only when the peer is new, has none, or when `want.endpoint`
 * differs from what we last asked for (`lastAsked`), i.e. the control plane changed its mind. An
 * endpoint WireGuard learned by itself is not overwritten with a stale one. Without `lastAsked`
 * (first sync) we compare against the device.
 */
export function peerOp(want: PeerConfig, current: PeerState | undefined, lastAsked?: PeerConfig): PeerOp | null {
  const w = normalizePeer(want);
  const keepalive = w.persistentKeepalive ?? 0;
  if (!current) {
    return {
      kind: 'upsert', publicKey: w.publicKey, create: true, allowedIps: w.allowedIps,
      ...(w.endpoint !== undefined ? { endpoint: w.endpoint } : {}),
      ...(keepalive ? { persistentKeepalive: keepalive } : {}),
    };
  }
  const op: Extract<PeerOp, { kind: 'upsert' }> = { kind: 'upsert', publicKey: w.publicKey, create: false };
  let changed = false;
  if (w.endpoint !== undefined && w.endpoint !== current.endpoint) {
    const asked = lastAsked?.endpoint !== undefined ? normalizeEndpoint(lastAsked.endpoint) : undefined;
    if (current.endpoint === null || asked === undefined || asked !== w.endpoint) {
      op.endpoint = w.endpoint;
      changed = true;
    }
  }
  if (!sameSet(w.allowedIps, current.allowedIps.map(normalizeCidr))) {
    op.allowedIps = w.allowedIps;
    changed = true;
  }
  if (keepalive !== current.persistentKeepalive) {
    op.persistentKeepalive = keepalive;
    changed = true;
  }
  return changed ? op : null;
}

/**
 * The ops for one peer, like `peerOp`, except when the peer gets its first endpoint before it ever
 * completed a handshake and is meant to handshake at once (keepalive on): then it is removed and
 * created afresh. Packets sent to a peer with no endpoint make WireGuard try a handshake it cannot
 * send and hold off new tries for RekeyTimeout (5 s); a fresh peer forgets that and, with
 * keepalive on, handshakes at once. There is no session to lose.
 *
 * A peer wanted without keepalive is the answering side of its pair (the other side initiates):
 * it is only given the endpoint. Recreating it would throw away the handshake the initiator may
 * already have completed with it, which is how two nodes that learned each other in the same
 * moment used to lose a direction for 5 s.
 */
export function peerOps(want: PeerConfig, current: PeerState | undefined, lastAsked?: PeerConfig): PeerOp[] {
  const op = peerOp(want, current, lastAsked);
  if (!op) return [];
  const initiates = (want.persistentKeepalive ?? 0) > 0;
  if (initiates && current && op.kind === 'upsert' && op.endpoint !== undefined && current.endpoint === null && current.lastHandshake === null) {
    return [{ kind: 'remove', publicKey: current.publicKey }, peerOp(want, undefined)!];
  }
  return [op];
}

/**
 * Operations that make the device's peer set exactly `want`. Removals of peers no longer wanted
 * come first so an allowed IP moving from a removed peer to a new one is never claimed twice.
 * Duplicate keys in `want`: the last one wins.
 */
export function diffPeers(
  current: PeerState[],
  want: PeerConfig[],
  lastAsked: ReadonlyMap<NodePublicKey, PeerConfig> = new Map(),
): PeerOp[] {
  const wantByKey = new Map(want.map((p) => [p.publicKey, p]));
  const currentByKey = new Map(current.map((p) => [p.publicKey, p]));
  const ops: PeerOp[] = [];
  for (const p of current) {
    if (!wantByKey.has(p.publicKey)) ops.push({ kind: 'remove', publicKey: p.publicKey });
  }
  // peerOps, not peerOp: a full netmap that brings a peer its first endpoint needs the same
  // recreation as a delta does.
  for (const p of wantByKey.values()) ops.push(...peerOps(p, currentByKey.get(p.publicKey), lastAsked.get(p.publicKey)));
  return ops;
}

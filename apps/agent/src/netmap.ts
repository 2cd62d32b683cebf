/**
 * The agent's view of its netmap and the sequencing rules of `/agent/v1`: a `netmap` replaces
 * everything; a `resume` (the server's list is the revision we held) keeps the peers and patches
 * their volatile fields; a `delta` must carry exactly the next seq and is applied remove, upsert,
 * patch. The revision held follows DeltaMessage.revision's rules.
 * A gap (or a delta before any netmap on this connection) asks for a resync and ignores deltas
 * until the fresh netmap arrives. Pure: the engine turns the returned changes into WireGuard calls.
 *
 * Skipped peers: entries the reader (server-message.ts) refused, plus peers that would clash on
 * WireGuard (this node's own key, a key another peer already has). A skipped peer is absent, as
 * if the server had not listed it: in a delta, a bad upsert or patch removes the peer it names,
 * so the result is what a resync would give. Its record stays until the server sends that id
 * again valid, removes it, or sends a fresh netmap.
 */
import { resumeStateOf, type DeltaMessage, type FilterRule, type NetmapMessage, type Peer, type PeerPatch, type ResponderPeer, type ResumeMessage, type SelfNode, type ServerMessage } from '@weft/protocol';
import { endpointsRevision } from '@weft/crypto';
import type { SkippedPeer } from './server-message.js';

/** Skipped entries without a usable id kept for `weft status`; the newest win. */
const MAX_UNNAMED_SKIPPED = 16;

export type NetmapChange =
  | { kind: 'full'; self: SelfNode; peers: Peer[]; skipped: SkippedPeer[]; packetFilter: FilterRule[] | null; responders: ResponderPeer[] }
  | {
      kind: 'delta';
      /** Entries of this message left out. */
      skipped: SkippedPeer[];
      /** Peers gone, as they were before removal. */
      removed: Peer[];
      /** Peers added or replaced; `previous` is set when a peer with that id existed. */
      upserted: { peer: Peer; previous: Peer | undefined }[];
      /** Peers changed by a patch, after the patch. */
      patched: { peer: Peer; previous: Peer }[];
      self: SelfNode | undefined;
      /** The packet filter was replaced by this (null = allow all); absent = unchanged. */
      packetFilter?: FilterRule[] | null;
    }
  | { kind: 'resync'; reason: string }
  /** Message dropped: waiting for the netmap a resync asked for. */
  | { kind: 'ignored' };

export class Netmap {
  private lastSeq = 0;
  private awaitingNetmap = true;
  private peersById = new Map<number, Peer>();
  private selfNode: SelfNode | undefined;
  private skippedById = new Map<number, SkippedPeer>();
  private skippedUnnamed: SkippedPeer[] = [];
  private filter: FilterRule[] | null = null;
  private responderPeers: ResponderPeer[] = [];
  /** The revision of the peer list held (sent on reconnect to resume); null = not known. Kept across connections. */
  private heldRevision: string | null = null;

  /** Starts from a persisted netmap; the next connection still expects a fresh netmap first. */
  constructor(initial?: { self: SelfNode; peers: Peer[] }) {
    if (initial) {
      this.selfNode = initial.self;
      for (const p of initial.peers) this.peersById.set(p.id, p);
    }
  }

  get self(): SelfNode | undefined {
    return this.selfNode;
  }

  /**
   * The server's responder keys from the last netmap (WireGuard peers with no allowed IPs, never
   * shown as peers), without any whose key is this node's or a peer's: WireGuard has one peer per key.
   */
  get responders(): ResponderPeer[] {
    return this.responderPeers;
  }

  /** Peers sorted by id. */
  get peers(): Peer[] {
    return [...this.peersById.values()].sort((a, b) => a.id - b.id);
  }

  /** Peer entries left out of what is applied now: by id, then those without one. */
  get skipped(): SkippedPeer[] {
    return [...[...this.skippedById.values()].sort((a, b) => a.id! - b.id!), ...this.skippedUnnamed];
  }

  /**
   * The revision of the peer list held, to resume from; null = none known, or an entry of the
   * list was left out (skipped): then the peers held are not the list the revision names.
   */
  get revision(): string | null {
    return this.skippedById.size || this.skippedUnnamed.length ? null : this.heldRevision;
  }

  /** The endpoints revision of the peers held (NETMAP_ENDPOINTS_HEADER): computed from them. */
  get endpointsRevision(): string {
    return endpointsRevision(this.peersById.values());
  }

  /** The packet filter for traffic arriving at this node; null = no policy: allow all. Stored, not enforced here. */

  get packetFilter(): FilterRule[] | null {
    return this.filter;
  }

  peer(id: number): Peer | undefined {
    return this.peersById.get(id);
  }

  /** A new connection starts a new seq space: the server sends a netmap with seq 1. */
  resetConnection(): void {
    this.lastSeq = 0;
    this.awaitingNetmap = true;
  }

  /** `skipped`: entries of `msg` the reader left out (server-message.ts). */
  apply(msg: ServerMessage, skipped: SkippedPeer[] = []): NetmapChange {
    if (msg.type === 'netmap') return this.applyNetmap(msg, skipped);
    if (msg.type === 'resume') return this.applyResume(msg, skipped);
    return this.applyDelta(msg, skipped);
  }

  /** Node key -> peer id of the peers held now. */
  private keyIndex(): Map<string, number> {
    return new Map([...this.peersById.values()].map((p) => [p.nodeKey, p.id]));
  }

  /** Why `peer` cannot go next to the peers in `keys` (other than its own id), if it cannot. */
  private static clash(peer: Peer, self: SelfNode | undefined, keys: Map<string, number>): string | null {
    if (self && peer.nodeKey === self.nodeKey) return 'nodeKey: is this node\'s own key';
    const other = keys.get(peer.nodeKey);
    return other !== undefined && other !== peer.id ? `nodeKey: peer ${other} has the same key` : null;
  }

  private recordSkipped(entries: SkippedPeer[]): void {
    for (const s of entries) {
      if (s.id === null) this.skippedUnnamed.push(s);
      else this.skippedById.set(s.id, s);
    }
    this.skippedUnnamed = this.skippedUnnamed.slice(-MAX_UNNAMED_SKIPPED);
  }

  private applyNetmap(msg: NetmapMessage, skipped: SkippedPeer[]): NetmapChange {
    this.lastSeq = msg.seq;
    this.awaitingNetmap = false;
    this.heldRevision = msg.revision ?? null;
    this.selfNode = msg.self;
    this.filter = msg.packetFilter ?? null;
    this.peersById = new Map();
    this.skippedById = new Map();
    this.skippedUnnamed = [];
    const refused = [...skipped];
    const bad = new Set(skipped.flatMap((s) => (s.id === null ? [] : [s.id])));
    const listed = new Map<number, number>();
    for (const p of msg.peers) listed.set(p.id, (listed.get(p.id) ?? 0) + 1);
    const keys = new Map<string, number>();
    for (const p of msg.peers) {
      if (bad.has(p.id)) continue;
      const why = listed.get(p.id)! > 1 ? 'id: listed more than once' : Netmap.clash(p, msg.self, keys);
      if (why) {
        bad.add(p.id);
        refused.push({ id: p.id, reason: why });
        continue;
      }
      this.peersById.set(p.id, p);
      keys.set(p.nodeKey, p.id);
    }
    this.recordSkipped(refused);
    this.responderPeers = (msg.wgResponders ?? []).filter((r) => r.publicKey !== msg.self.nodeKey && !keys.has(r.publicKey));
    return { kind: 'full', self: msg.self, peers: this.peers, skipped: refused, packetFilter: this.filter, responders: this.responderPeers };
  }

  /**
   * The server's list is the one we hold: keep the peers, take every peer's volatile fields from
   * `presence` and `endpoints` (by position: our peers in id order) or from `patch` (the older
   * form), and the rest as a netmap gives it (the packet filter absent = allow all). A resume we
   * did not ask for (no revision held, or not ours), or whose positions do not match the peers we
   * hold, cannot be trusted: resync.
   */
  private applyResume(msg: ResumeMessage, skipped: SkippedPeer[]): NetmapChange {
    const resync = (reason: string): NetmapChange => {
      this.awaitingNetmap = true;
      this.lastSeq = -1;
      return { kind: 'resync', reason };
    };
    if (this.revision === null || msg.revision !== this.heldRevision) return resync(`resume at revision ${msg.revision}, which is not the one held`);
    let next: Map<number, Peer> | null = null;
    if (msg.presence) {
      const { base, state, lastSeen } = msg.presence;
      const ids = [...this.peersById.keys()].sort((a, b) => a - b);
      if (state.length !== ids.length || lastSeen.length !== ids.length || (msg.endpoints && msg.endpoints.length !== ids.length)) {
        return resync(`resume lists ${state.length} peers, ${ids.length} held`);
      }
      next = new Map();
      for (const [i, id] of ids.entries()) {
        const st = resumeStateOf(state[i]!)!;
        const t = lastSeen[i]!;
        const { nat: _nat, ...prev } = this.peersById.get(id)!;
        const peer: Peer = { ...prev, online: st.online, lastSeen: t === null ? null : new Date(base + t).toISOString() };
        if (msg.endpoints) peer.endpoints = msg.endpoints[i]!;
        // Not known = absent, as a netmap's entry has it.
        if (st.nat) peer.nat = st.nat;
        next.set(id, peer);
      }
    }
    this.lastSeq = msg.seq;
    this.awaitingNetmap = false;
    this.selfNode = msg.self;
    this.filter = msg.packetFilter ?? null;
    if (next) this.peersById = next;
    // As in a delta: a malformed entry removes the peer it names, as a fresh netmap would leave it out.
    for (const s of skipped) if (s.id !== null) this.peersById.delete(s.id);
    for (const patch of msg.patch ?? []) {
      const previous = this.peersById.get(patch.id);
      if (previous) this.peersById.set(patch.id, withPatch(previous, patch));
    }
    this.recordSkipped(skipped);
    const keys = this.keyIndex();
    this.responderPeers = (msg.wgResponders ?? []).filter((r) => r.publicKey !== msg.self.nodeKey && !keys.has(r.publicKey));
    return { kind: 'full', self: msg.self, peers: this.peers, skipped, packetFilter: this.filter, responders: this.responderPeers };
  }

  private applyDelta(msg: DeltaMessage, skipped: SkippedPeer[]): NetmapChange {
    if (this.awaitingNetmap) {
      // Already asked (or about to ask) for a netmap on this connection; deltas until then are stale.
      if (this.lastSeq === 0) {
        this.lastSeq = -1;
        return { kind: 'resync', reason: `delta seq ${msg.seq} before any netmap` };
      }
      return { kind: 'ignored' };
    }
    if (msg.seq !== this.lastSeq + 1) {
      const reason = `seq gap: expected ${this.lastSeq + 1}, got ${msg.seq}`;
      this.awaitingNetmap = true;
      this.lastSeq = -1;
      return { kind: 'resync', reason };
    }
    this.lastSeq = msg.seq;
    if (msg.revision !== undefined) this.heldRevision = msg.revision;
    else if (msg.upsert || msg.remove) this.heldRevision = null;

    // Ids with a bad entry in this delta are removed with the removals; their other entries wait.
    const bad = new Set(skipped.flatMap((s) => (s.id === null ? [] : [s.id])));
    const refused = [...skipped];
    const removed: Peer[] = [];
    const drop = (id: number) => {
      const old = this.peersById.get(id);
      if (old) {
        removed.push(old);
        this.peersById.delete(id);
      }
    };
    for (const id of msg.remove ?? []) {
      drop(id);
      this.skippedById.delete(id);
    }
    for (const id of bad) drop(id);
    const upserted: { peer: Peer; previous: Peer | undefined }[] = [];
    const keys = msg.upsert?.length ? this.keyIndex() : new Map<string, number>();
    for (const peer of msg.upsert ?? []) {
      if (bad.has(peer.id)) continue;
      const why = Netmap.clash(peer, msg.self ?? this.selfNode, keys);
      if (why) {
        bad.add(peer.id);
        refused.push({ id: peer.id, reason: why });
        const old = this.peersById.get(peer.id);
        if (old && keys.get(old.nodeKey) === old.id) keys.delete(old.nodeKey);
        drop(peer.id);
        continue;
      }
      this.skippedById.delete(peer.id);
      const previous = this.peersById.get(peer.id);
      if (previous) keys.delete(previous.nodeKey);
      keys.set(peer.nodeKey, peer.id);
      upserted.push({ peer, previous });
      this.peersById.set(peer.id, peer);
    }
    const patched: { peer: Peer; previous: Peer }[] = [];
    for (const patch of msg.patch ?? []) {
      if (bad.has(patch.id)) continue;
      const previous = this.peersById.get(patch.id);
      if (!previous) continue; // patch for a peer we do not have: nothing to change
      const peer = withPatch(previous, patch);
      this.peersById.set(peer.id, peer);
      patched.push({ peer, previous });
    }
    if (msg.self) this.selfNode = msg.self;
    if (msg.packetFilter !== undefined) this.filter = msg.packetFilter;
    this.recordSkipped(refused);
    return { kind: 'delta', skipped: refused, removed, upserted, patched, self: msg.self, ...(msg.packetFilter !== undefined && { packetFilter: msg.packetFilter }) };
  }
}

function withPatch(previous: Peer, patch: PeerPatch): Peer {
  return {
    ...previous,
    ...(patch.endpoints !== undefined && { endpoints: patch.endpoints }),
    ...(patch.online !== undefined && { online: patch.online }),
    ...(patch.lastSeen !== undefined && { lastSeen: patch.lastSeen }),
    ...(patch.nat !== undefined && { nat: patch.nat }),
  };
}

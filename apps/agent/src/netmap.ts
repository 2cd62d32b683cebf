/**
 * The agent's view of its netmap and the sequencing rules of `/agent/v1`: a `netmap` replaces
 * everything; a `delta` must carry exactly the next seq and is applied remove, upsert, patch.
 * A gap (or a delta before any netmap on this connection) asks for a resync and ignores deltas
 * until the fresh netmap arrives. Pure: the engine turns the returned changes into WireGuard calls.
 */
import type { DeltaMessage, NetmapMessage, Peer, SelfNode, ServerMessage } from '@weft/protocol';

export type NetmapChange =
  | { kind: 'full'; self: SelfNode; peers: Peer[] }
  | {
      kind: 'delta';
      /** Peers gone, as they were before removal. */
      removed: Peer[];
      /** Peers added or replaced; `previous` is set when a peer with that id existed. */
      upserted: { peer: Peer; previous: Peer | undefined }[];
      /** Peers changed by a patch, after the patch. */
      patched: { peer: Peer; previous: Peer }[];
      self: SelfNode | undefined;
    }
  | { kind: 'resync'; reason: string }
  /** Message dropped: waiting for the netmap a resync asked for. */
  | { kind: 'ignored' };

export class Netmap {
  private lastSeq = 0;
  private awaitingNetmap = true;
  private peersById = new Map<number, Peer>();
  private selfNode: SelfNode | undefined;

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

  /** Peers sorted by id. */
  get peers(): Peer[] {
    return [...this.peersById.values()].sort((a, b) => a.id - b.id);
  }

  peer(id: number): Peer | undefined {
    return this.peersById.get(id);
  }

  /** A new connection starts a new seq space: the server sends a netmap with seq 1. */
  resetConnection(): void {
    this.lastSeq = 0;
    this.awaitingNetmap = true;
  }

  apply(msg: ServerMessage): NetmapChange {
    return msg.type === 'netmap' ? this.applyNetmap(msg) : this.applyDelta(msg);
  }

  private applyNetmap(msg: NetmapMessage): NetmapChange {
    this.lastSeq = msg.seq;
    this.awaitingNetmap = false;
    this.selfNode = msg.self;
    this.peersById = new Map(msg.peers.map((p) => [p.id, p]));
    return { kind: 'full', self: msg.self, peers: this.peers };
  }

  private applyDelta(msg: DeltaMessage): NetmapChange {
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

    const removed: Peer[] = [];
    for (const id of msg.remove ?? []) {
      const old = this.peersById.get(id);
      if (old) {
        removed.push(old);
        this.peersById.delete(id);
      }
    }
    const upserted: { peer: Peer; previous: Peer | undefined }[] = [];
    for (const peer of msg.upsert ?? []) {
      upserted.push({ peer, previous: this.peersById.get(peer.id) });
      this.peersById.set(peer.id, peer);
    }
    const patched: { peer: Peer; previous: Peer }[] = [];
    for (const patch of msg.patch ?? []) {
      const previous = this.peersById.get(patch.id);
      if (!previous) continue; // patch for a peer we do not have: nothing to change
      const peer: Peer = {
        ...previous,
        ...(patch.endpoints !== undefined && { endpoints: patch.endpoints }),
        ...(patch.online !== undefined && { online: patch.online }),
        ...(patch.lastSeen !== undefined && { lastSeen: patch.lastSeen }),
      };
      this.peersById.set(peer.id, peer);
      patched.push({ peer, previous });
    }
    if (msg.self) this.selfNode = msg.self;
    return { kind: 'delta', removed, upserted, patched, self: msg.self };
  }
}

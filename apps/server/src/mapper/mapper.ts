/**
 * The mapper turns change descriptors into netmaps and deltas for the nodes they affect.
 *
 * It keeps every node's peer view in memory (one serialized JSON string per node, in chunks), so a
 * change costs one serialization plus one small message per affected session: per-node cost grows
 * with that node's peers, never with the tailnet squared. Structural changes (join, delete,
 * expire, rename) go out at once; patches (online, endpoints) are coalesced for a window that grows
 * with the fleet (`patchWindowMs`) so a storm of connects does not become a storm of messages.
 *
 * Visibility today: every live node (not expired, its user not suspended) sees every other. The
 * policy engine will replace `visible`.
 */
import type { FastifyBaseLogger } from 'fastify';
import { CloseCode, PROTOCOL_VERSION, type Peer, type PeerPatch, type ResponderPeer } from '@weft/protocol';
import type { MapperMetrics, NodeStateCounts } from '../metrics.js';
import type { Change, PresenceChange } from '../state/changes.js';
import { isExpired, peerDto, selfDto, type NodeWithUser } from '../state/index.js';
import { PeerChunks } from './peer-chunks.js';
import { Session, type ResyncOutcome } from './session.js';

interface Entry {
  row: NodeWithUser;
  peer: Peer;
}

export interface MapperOptions {
  loadRows: (ids?: number[]) => Promise<NodeWithUser[]>;
  log: FastifyBaseLogger;
  patchIntervalMs?: number;
  /** Absent = nothing measured. */
  metrics?: MapperMetrics;
  /** Sent in every netmap as `wgResponders`; absent = none. */
  responders?: ResponderPeer[];
}

export class Mapper {
  private readonly entries = new Map<number, Entry>();
  /** Node id by WireGuard public key (hex, no prefix): who sent a handshake initiation, per packet without the database. */
  private readonly byKey = new Map<string, number>();
  private readonly chunks = new PeerChunks();
  private readonly sessions = new Map<number, Session>();
  private queue: Promise<void> = Promise.resolve();
  private pendingPatches = new Map<number, PeerPatch>();
  private patchTimer: NodeJS.Timeout | null = null;
  private readonly patchIntervalMs: number;
  /** Closes the peer list; carries the responders, the same for every node. */
  private readonly netmapTail: string;

  constructor(private readonly opts: MapperOptions) {
    this.patchIntervalMs = opts.patchIntervalMs ?? 200;
    this.netmapTail = opts.responders?.length ? `],"wgResponders":${JSON.stringify(opts.responders)}}` : ']}';
  }

  async init(): Promise<void> {
    const rows = await this.opts.loadRows();
    this.byKey.clear();
    for (const row of rows) this.setEntry(row);
    this.chunks.reset([...this.entries.values()].filter((e) => visible(e.row)).map((e) => [e.row.id, JSON.stringify(e.peer)]));
  }

  get connectedCount(): number {
    return this.sessions.size;
  }

  /** Nodes by state from the in-memory table (metrics read this at every scrape, not the database). */
  nodeStates(): NodeStateCounts {
    const out = { online: 0, offline: 0, expired: 0 };
    for (const { row } of this.entries.values()) {
      if (isExpired(row)) out.expired++;
      else if (row.online) out.online++;
      else out.offline++;
    }
    return out;
  }

  /**
   * Changes are applied strictly in order. If one cannot be applied (the database failed to
   * answer), the mapper reloads everything and resends full netmaps rather than drift.
   */
  apply(change: Change): Promise<void> {
    const metrics = this.opts.metrics;
    const t0 = metrics ? performance.now() : 0;
    this.queue = this.queue
      .then(async () => {
        await this.applyNow(change);
        metrics?.applied(change.kind, (performance.now() - t0) / 1000);
      })
      .catch((err: unknown) => {
        this.opts.log.error({ err, change: change.kind }, 'mapper failed to apply a change; resyncing every session');
        return this.resyncAll();
      })
      .catch((err: unknown) => this.opts.log.error({ err }, 'mapper resync failed'));
    return this.queue;
  }

  /** Reloads every node and sends every session a fresh netmap (after missed changes). */
  resyncAll(): Promise<void> {
    const run = async () => {
      this.entries.clear();
      await this.init();
      for (const s of this.sessions.values()) {
        if (this.entries.has(s.nodeId)) this.sendNetmap(s);
        else s.close(CloseCode.NodeDeleted, 'node deleted');
      }
    };
    this.queue = this.queue.then(run, run);
    return this.queue;
  }

  /** Waits until every change enqueued so far is applied. */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * A node's socket authenticated (`row` was just read from the database): replaces any older
   * session of that node and sends the netmap.
   */
  attach(row: NodeWithUser, socket: import('ws').WebSocket): Session | null {
    const nodeId = row.id;
    // Authenticated before a suspension this replica has applied since: refuse like the door would.
    if (this.entries.get(nodeId)?.row.user.suspendedAt) {
      socket.close(CloseCode.UserSuspended, 'user suspended');
      return null;
    }
    if (!this.entries.has(nodeId)) {
      // The change that created it has not reached this replica yet: take the fresher row.
      this.setEntry(row);
      if (visible(row)) this.chunks.set(nodeId, JSON.stringify(peerDto(row)));
    }
    this.sessions.get(nodeId)?.close(4409, 'replaced by a newer connection');
    const session = new Session(nodeId, socket, this.opts.metrics?.sent);
    this.sessions.set(nodeId, session);
    this.sendNetmap(session);
    return session;
  }

  isAttached(nodeId: number): boolean {
    return this.sessions.has(nodeId);
  }

  detach(session: Session): void {
    if (this.sessions.get(session.nodeId) === session) this.sessions.delete(session.nodeId);
  }

  /** The agent asked for a fresh netmap: coalesced and rate limited by the session. */
  resync(session: Session): ResyncOutcome {
    return session.requestNetmap(() => this.sendNetmap(session));
  }

  sendNetmap(session: Session): void {
    const entry = this.entries.get(session.nodeId);
    if (!entry) return;
    session.resetSeq();
    const head = `,"protocolVersion":${PROTOCOL_VERSION},"self":${JSON.stringify(selfDto(entry.row))},"peers":[`;
    session.sendParts('netmap', [head, ...this.chunks.partsExcept(session.nodeId), this.netmapTail]);
  }


  /**
   * The live node (not expired, its user not suspended) whose WireGuard public key this is (hex),
   * from memory: called for every handshake initiation the responder authenticates.
   */
  nodeByWgKey(keyHex: string): NodeWithUser | undefined {
    const id = this.byKey.get(keyHex);
    const e = id === undefined ? undefined : this.entries.get(id);
    return e && visible(e.row) ? e.row : undefined;
  }

  private setEntry(row: NodeWithUser): void {
    const prev = this.entries.get(row.id);
    if (prev && prev.row.nodeKey !== row.nodeKey) this.byKey.delete(wgKeyHex(prev.row.nodeKey));
    this.entries.set(row.id, { row, peer: peerDto(row) });
    this.byKey.set(wgKeyHex(row.nodeKey), row.id);
  }

  private deleteEntry(id: number): void {
    const e = this.entries.get(id);
    if (e && this.byKey.get(wgKeyHex(e.row.nodeKey)) === id) this.byKey.delete(wgKeyHex(e.row.nodeKey));
    this.entries.delete(id);
  }

  /** Closes every session (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const s of this.sessions.values()) s.close(code, reason);
    this.sessions.clear();
  }

  private async applyNow(change: Change): Promise<void> {
    switch (change.kind) {
      case 'nodes-upserted':
        return this.upserted(change.nodeIds);
      case 'nodes-removed':
        return this.removed(change.nodeIds, CloseCode.NodeDeleted, 'node deleted');
      case 'nodes-expired':
        return this.removed(change.nodeIds, CloseCode.NodeExpired, 'node key expired');
      case 'nodes-suspended':
        return this.removed(change.nodeIds, CloseCode.UserSuspended, 'user suspended');
      case 'nodes-patched':
        if (change.reflexive) this.reflexiveSet(change.reflexive);
        return this.patched(change.patches);
      case 'presence':
        return this.patched(change.nodes.filter((n) => this.newerPresence(n)).map(({ id, online, lastSeen }) => ({ id, online, lastSeen })));
    }
  }

  /** Presence writes reach replicas out of commit order: only a higher `seq` than the row's counts. */
  private newerPresence(n: PresenceChange): boolean {
    const e = this.entries.get(n.id);
    if (!e || n.seq <= e.row.presenceSeq) return false;
    e.row = { ...e.row, presenceSeq: n.seq };
    return true;
  }

  private async upserted(ids: number[]): Promise<void> {
    const rows = await this.opts.loadRows(ids);
    const upsert: Peer[] = [];
    const gone: number[] = [];
    for (const row of rows) {
      this.setEntry(row);
      const peer = this.entries.get(row.id)!.peer;
      if (visible(row)) {
        this.chunks.set(row.id, JSON.stringify(peer));
        upsert.push(peer);
      } else {
        this.chunks.delete(row.id);
        gone.push(row.id);
      }
      const own = this.sessions.get(row.id);
      if (own) own.send('delta', `,"self":${JSON.stringify(selfDto(row))}}`);
    }
    const found = new Set(rows.map((r) => r.id));
    for (const id of ids) if (!found.has(id)) gone.push(id);
    if (upsert.length) this.broadcast(`,"upsert":${JSON.stringify(upsert)}}`, new Set(upsert.map((p) => p.id)));
    if (gone.length) await this.removed(gone, CloseCode.NodeDeleted, 'node deleted');
  }

  private async removed(ids: number[], code: number, reason: string): Promise<void> {
    const visibleBefore = ids.filter((id) => this.entries.get(id) && visible(this.entries.get(id)!.row));
    for (const id of ids) {
      this.sessions.get(id)?.close(code, reason);
      this.sessions.delete(id);
      this.chunks.delete(id);
      if (code === CloseCode.NodeDeleted) this.deleteEntry(id);
      else if (code === CloseCode.UserSuspended) {
        // Suspended: the node still exists; resume upserts it from a fresh row.
        const e = this.entries.get(id);
        if (e) e.row = { ...e.row, user: { ...e.row.user, suspendedAt: e.row.user.suspendedAt ?? new Date() } };
      } else {
        // Expired: keep the row (the node still exists) but mark it so visibility drops it.
        const e = this.entries.get(id);
        if (e && !isExpired(e.row)) e.row = { ...e.row, expiresAt: new Date() };
      }
    }
    if (visibleBefore.length) this.broadcast(`,"remove":${JSON.stringify(visibleBefore)}}`, new Set(ids));
  }

  /** A node's own session learns where the server sees its WireGuard port (`self.reflexiveEndpoint`). */
  private reflexiveSet(list: { id: number; endpoint: string }[]): void {
    for (const { id, endpoint } of list) {
      const e = this.entries.get(id);
      if (!e || e.row.reflexiveEndpoint === endpoint) continue;
      e.row = { ...e.row, reflexiveEndpoint: endpoint };
      this.sessions.get(id)?.send('delta', `,"self":${JSON.stringify(selfDto(e.row))}}`);
    }
  }

  private patched(patches: PeerPatch[]): void {
    for (const p of patches) {
      const e = this.entries.get(p.id);
      if (!e) continue;
      const peer = { ...e.peer, ...p };
      e.peer = peer;
      e.row = { ...e.row, ...(p.online !== undefined ? { online: p.online } : {}), ...(p.endpoints ? { endpoints: p.endpoints } : {}), ...(p.lastSeen !== undefined ? { lastSeen: p.lastSeen ? new Date(p.lastSeen) : null } : {}) };
      if (!visible(e.row)) continue;
      this.chunks.set(p.id, JSON.stringify(peer));
      const prev = this.pendingPatches.get(p.id);
      this.pendingPatches.set(p.id, prev ? { ...prev, ...p } : p);
    }
    if (this.pendingPatches.size && !this.patchTimer) {
      this.patchTimer = setTimeout(() => this.flushPatches(), this.patchWindowMs());
      this.patchTimer.unref();
    }
  }

  /**
   * Every flush is one message to every session, so the window grows with the fleet: 200 ms up to
   * 2,000 sessions, then 0.1 ms per session (1 s at 10,000), capped at 2 s. Online and endpoint
   * changes are not worth 50,000 messages a second.
   */
  private patchWindowMs(): number {
    return Math.min(2000, Math.max(this.patchIntervalMs, this.sessions.size / 10));
  }

  private flushPatches(): void {
    this.patchTimer = null;
    const patches = [...this.pendingPatches.values()];
    this.pendingPatches = new Map();
    if (!patches.length) return;
    if (patches.length === 1) {
      this.broadcast(`,"patch":${JSON.stringify(patches)}}`, new Set([patches[0]!.id]));
      return;
    }
    // A node is not sent its own patch; with many patches, build that one variant per patched node.
    const all = `,"patch":${JSON.stringify(patches)}}`;
    const own = new Map(patches.map((p) => [p.id, p]));
    for (const s of this.sessions.values()) {
      if (!own.has(s.nodeId)) s.send('delta', all);
      else s.send('delta', `,"patch":${JSON.stringify(patches.filter((p) => p.id !== s.nodeId))}}`);
    }
  }

  /** Sends the same delta body to every session except those of `except`. */
  private broadcast(rest: string, except: Set<number>): void {
    for (const s of this.sessions.values()) if (!except.has(s.nodeId)) s.send('delta', rest);
  }
}

/** Whether other nodes see this one at all. */
function visible(row: NodeWithUser): boolean {
  return !isExpired(row) && !row.user.suspendedAt;
}

/** "nodekey:<hex>" -> "<hex>", the form the WireGuard responder looks keys up by. */
const wgKeyHex = (nodeKey: string) => nodeKey.slice('nodekey:'.length);

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
import { CloseCode, PROTOCOL_VERSION, type Peer, type PeerPatch } from '@weft/protocol';
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
}

/** Close code and reason for sockets bound to a node key the node has since rotated (4409, as for a replaced connection). */
export const RELAY_KEY_ROTATED = { code: 4409, reason: 'node key changed; reconnect' } as const;

export class Mapper {
  private readonly entries = new Map<number, Entry>();
  private readonly chunks = new PeerChunks();
  private readonly sessions = new Map<number, Session>();
  private queue: Promise<void> = Promise.resolve();
  private pendingPatches = new Map<number, PeerPatch>();
  private patchTimer: NodeJS.Timeout | null = null;
  private readonly patchIntervalMs: number;
  private readonly cutOffListeners: ((nodeId: number, code: number, reason: string) => void)[] = [];

  constructor(private readonly opts: MapperOptions) {
    this.patchIntervalMs = opts.patchIntervalMs ?? 200;
  }

  async init(): Promise<void> {
    const rows = await this.opts.loadRows();
    for (const row of rows) this.entries.set(row.id, { row, peer: peerDto(row) });
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
      const before = [...this.entries.keys()];
      this.entries.clear();
      await this.init();
      for (const s of this.sessions.values()) {
        if (this.entries.has(s.nodeId)) this.sendNetmap(s);
        else s.close(CloseCode.NodeDeleted, 'node deleted');
      }
      for (const id of before) if (!this.entries.has(id)) for (const fn of this.cutOffListeners) fn(id, CloseCode.NodeDeleted, 'node deleted');
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
      this.entries.set(nodeId, { row, peer: peerDto(row) });
      if (visible(row)) this.chunks.set(nodeId, JSON.stringify(peerDto(row)));
    }
    this.sessions.get(nodeId)?.close(4409, 'replaced by a newer connection');
    const session = new Session(nodeId, socket, this.opts.metrics?.sent);
    this.sessions.set(nodeId, session);
    this.sendNetmap(session);
    return session;
  }

  /**
   * Whether the relay may carry packets from `srcNodeId` to `dstNodeId`: only between nodes that
   * are peers in each other's netmap. Today every live node sees every live node; the policy
   * engine decides here once it lands. Asked per packet, so it reads memory only.
   */
  mayRelay(srcNodeId: number, dstNodeId: number): boolean {
    if (srcNodeId === dstNodeId) return false;
    const src = this.entries.get(srcNodeId);
    const dst = this.entries.get(dstNodeId);
    return src !== undefined && dst !== undefined && visible(src.row) && visible(dst.row);
  }

  /**
   * Why the mapper has cut this node off (expired, user suspended), as the close code its control
   * socket got; null for a live node or one this replica has not heard of yet.
   */
  cutOff(nodeId: number): { code: number; reason: string } | null {
    const row = this.entries.get(nodeId)?.row;
    if (!row) return null;
    if (row.user.suspendedAt) return { code: CloseCode.UserSuspended, reason: 'user suspended' };
    if (isExpired(row)) return { code: CloseCode.NodeExpired, reason: 'node key expired' };
    return null;
  }

  /**
   * `fn` is called for each node the mapper cuts off (deleted, expired, suspended) with the close
   * code its control socket got, so the node's other sockets (the relay's) close with it; and with
   * RELAY_KEY_ROTATED when the node's key changed (its control socket stays: only sockets bound
   * to the old key close).
   */
  onCutOff(fn: (nodeId: number, code: number, reason: string) => void): void {
    this.cutOffListeners.push(fn);
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
    session.sendParts('netmap', [head, ...this.chunks.partsExcept(session.nodeId), ']}']);
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
      const peer = peerDto(row);
      const before = this.entries.get(row.id);
      // A rotated node key: the relay stamps packets with the key it authenticated, so that socket must go.
      if (before && before.row.nodeKey !== row.nodeKey) for (const fn of this.cutOffListeners) fn(row.id, RELAY_KEY_ROTATED.code, RELAY_KEY_ROTATED.reason);
      this.entries.set(row.id, { row, peer });
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
      for (const fn of this.cutOffListeners) fn(id, code, reason);
      this.sessions.get(id)?.close(code, reason);
      this.sessions.delete(id);
      this.chunks.delete(id);
      if (code === CloseCode.NodeDeleted) this.entries.delete(id);
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

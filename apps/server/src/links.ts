/**
 * Link health: the agents' `links` reports. Two places, for two readers:
 *
 * - memory, on the replica holding the node's session: every report applied at once (what this
 *   replica's REST answers and its metrics count). Bounded by MAX_LINKS_PER_NODE per connected node.
 * - the `node_links` row (state/node-links.ts), so every replica's REST sees it: written in one
 *   batched statement every LINK_FLUSH_MS for the nodes that are due. A node is due when what
 *   matters changed (a link's path or stale flag, a link added or gone) and its last write is
 *   LINK_WRITE_INTERVAL_MS old, or when only counters moved and it is LINK_REFRESH_MS old. So at
 *   10,000 nodes the database sees at most 10,000 / 30 s rows for real changes, and counters cost
 *   10,000 / 5 min; one statement per flush whatever the count.
 *
 * The last session of a node closing writes what is pending and forgets the node here.
 */
import type { LinksMessage } from '@weft/protocol';
import { MAX_LINKS_PER_NODE } from '@weft/protocol';
import type { LinkRow, StoredLink } from './state/node-links.js';

export interface LinkCounts { direct: number; relay: number; none: number; stale: number }

export interface LinkStoreOptions {
  write: (rows: LinkRow[]) => Promise<void>;
  onError: (err: unknown) => void;
  writeIntervalMs: number;
  refreshMs: number;
  flushMs: number;
  now?: () => number;
}

interface NodeEntry {
  sessions: number;
  links: Map<number, StoredLink>;
  counts: LinkCounts;
  /** keyOf(links), kept with them. */
  key: string;
  /** What matters (paths, stale flags, which peers), as last written; undefined = never written. */
  writtenKey: string | undefined;
  lastWriteAt: number;
  dirty: boolean;
}

/** Refused reports: the reason goes into the BadMessage close. */
export class LinkReportError extends Error {}

export class LinkStore {
  private readonly nodes = new Map<number, NodeEntry>();
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Plain counters for the metrics. */
  readonly counters = { reports: 0, rowsWritten: 0, writes: 0 };

  constructor(private readonly opts: LinkStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.timer = setInterval(() => void this.flush(), opts.flushMs);
    this.timer.unref();
  }

  attach(nodeId: number): void {
    const e = this.nodes.get(nodeId);
    if (e) e.sessions++;
    else this.nodes.set(nodeId, { sessions: 1, links: new Map(), counts: zero(), key: '', writtenKey: undefined, lastWriteAt: -Infinity, dirty: false });
  }

  /** The last session of the node closed: what is pending is written, then the node forgotten. */
  async detach(nodeId: number): Promise<void> {
    const e = this.nodes.get(nodeId);
    if (!e || --e.sessions > 0) return;
    if (e.dirty) await this.writeRows([[nodeId, e]]);
    if (e.sessions <= 0 && this.nodes.get(nodeId) === e) this.nodes.delete(nodeId);
  }

  /** Applies one report; a report that would hold more than MAX_LINKS_PER_NODE is refused whole. */
  report(nodeId: number, msg: LinksMessage): void {
    const e = this.nodes.get(nodeId);
    if (!e || this.closed) return;
    const receivedAt = this.now();
    const next = msg.full ? new Map<number, StoredLink>() : new Map(e.links);
    for (const id of msg.removed ?? []) next.delete(id);
    for (const l of msg.links) next.set(l.peer, { ...l, receivedAt });
    if (next.size > MAX_LINKS_PER_NODE) throw new LinkReportError(`links: more than ${MAX_LINKS_PER_NODE} links for one node`);
    e.links = next;
    e.counts = countOf(next.values());
    e.key = keyOf(next);
    e.dirty = true;
    this.counters.reports++;
  }

  /** Links of a node with a session on this replica; undefined = not here. */
  live(nodeId: number): StoredLink[] | undefined {
    const e = this.nodes.get(nodeId);
    return e ? [...e.links.values()].sort((a, b) => a.peer - b.peer) : undefined;
  }

  /** Nodes with a session here and their links (for the fleet query's overlay). */
  liveNodes(): Array<[number, StoredLink[]]> {
    return [...this.nodes.keys()].map((id) => [id, this.live(id)!]);
  }

  /** Counts of each node with a session here (O(nodes), for the fleet summary's overlay). */
  liveCounts(): Array<[number, LinkCounts]> {
    return [...this.nodes].map(([id, e]) => [id, e.counts]);
  }

  /** Sum over the nodes connected here (metrics, read at scrape time: O(nodes), not O(links)). */
  totals(): LinkCounts {
    const t = zero();
    for (const e of this.nodes.values()) {
      t.direct += e.counts.direct;
      t.relay += e.counts.relay;
      t.none += e.counts.none;
      t.stale += e.counts.stale;
    }
    return t;
  }

  /** Writes the nodes that are due (see the file comment); one statement. */
  flush(force = false): Promise<void> {
    this.flushing ??= (async () => {
      const now = this.now();
      const due: Array<[number, NodeEntry]> = [];
      for (const [id, e] of this.nodes) {
        if (!e.dirty) continue;
        const since = now - e.lastWriteAt;
        if (force || (since >= this.opts.writeIntervalMs && e.key !== e.writtenKey) || since >= this.opts.refreshMs) due.push([id, e]);
      }
      await this.writeRows(due);
    })().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /** Server shutdown: everything pending written, later reports dropped. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush(true);
    this.closed = true;
  }

  private async writeRows(due: Array<[number, NodeEntry]>): Promise<void> {
    if (due.length === 0) return;
    const now = this.now();
    const rows: LinkRow[] = [];
    const keys: string[] = [];
    for (const [nodeId, e] of due) {
      const links = [...e.links.values()].sort((a, b) => a.peer - b.peer);
      rows.push({ nodeId, links, ...e.counts, updatedAt: new Date(now) });
      keys.push(e.key);
      e.dirty = false;
      e.lastWriteAt = now;
    }
    try {
      await this.opts.write(rows);
      this.counters.writes++;
      this.counters.rowsWritten += rows.length;
      due.forEach(([, e], i) => (e.writtenKey = keys[i]));
    } catch (err) {
      for (const [, e] of due) e.dirty = true; // tried again at the next flush
      this.opts.onError(err);
    }
  }
}

function zero(): LinkCounts {
  return { direct: 0, relay: 0, none: 0, stale: 0 };
}

function countOf(links: Iterable<StoredLink>): LinkCounts {
  const c = zero();
  for (const l of links) {
    c[l.path]++;
    if (l.stale) c.stale++;
  }
  return c;
}

/** What matters about a node's links, as one string: which peers, their paths and stale flags. */
function keyOf(links: Map<number, StoredLink>): string {
  return [...links.values()].map((l) => `${l.peer}:${l.path}:${l.stale ? 1 : 0}`).sort().join(',');
}

/** A stored link as REST shows it: ages as of now (the agent's age plus the time since it came). */
export function linkView(l: StoredLink, now: number, peerName: string | undefined) {
  const ageS = l.handshakeAgeS === null ? null : l.handshakeAgeS + Math.max(0, Math.round((now - l.receivedAt) / 1000));
  return {
    peerId: l.peer,
    peerName: peerName ?? null,
    path: l.path,
    endpoint: l.endpoint,
    stale: l.stale,
    handshakeAgeSeconds: ageS,
    lastHandshake: ageS === null ? null : new Date(now - ageS * 1000).toISOString(),
    rxBytes: l.rxBytes,
    txBytes: l.txBytes,
    reportedAt: new Date(l.receivedAt).toISOString(),
  };
}

/**
 * Per-node netmaps under an access policy. `PolicyViews` (@weft/policy) says which nodes see which
 * and which views changed; this keeps the serialized side: one PeerChunks per view class (nodes
 * with the same view share its buffers, exactly as every node shares one list without a policy),
 * each node's packet filter as JSON, and it turns a batch of view changes into one delta body per
 * affected class, so a change costs one string per class it touches plus one per node that moved.
 */
import { PolicyViews, type LiveNode, type Policy, type ViewClass } from '@weft/policy';
import { addMod128, revisionHex } from '@weft/crypto';
import { policyLogin, type NodeWithUser } from '../state/index.js';
import { PeerChunks } from './peer-chunks.js';

/** A node as the policy sees it. */
export function liveNode(row: NodeWithUser): LiveNode {
  return { id: row.id, login: row.tags.length ? null : policyLogin(row.user), tags: [...row.tags].sort(), ipv4: row.ipv4, ipv6: row.ipv6 };
}

/** The peers of a node in no view class. */
const NO_PEERS = new PeerChunks();

/** What one session is sent for a batch: the delta's JSON after `"seq":N`, or nothing. */
export type Outgoing = Map<number, string>;

/**
 * One view class's list as sent (its chunks) and its revision: the sum of its entries' stable
 * hashes (list-revision.ts), kept in step with the chunks, so a revision always says what a
 * netmap from these chunks holds.
 */
interface ClassList {
  chunks: PeerChunks;
  sum: bigint;
}

export class PolicyNetmaps {
  readonly views: PolicyViews;
  private readonly chunks = new Map<ViewClass, ClassList>();
  private readonly filters = new Map<number, string>();
  /**
   * The stable hash each listed node adds to every class sum that holds it (one per node, not per
   * class): a node whose stable fields changed moves every sum holding it by new - old.
   */
  private readonly used = new Map<number, bigint>();

  constructor(
    policy: Policy,
    rows: Iterable<NodeWithUser>,
    /** The serialized peer entry of a visible node (shared with the allow-all list). */
    private readonly json: (id: number) => string | undefined,
    /** The views this replaces (a policy change): their parsed addresses are reused. */
    previous: PolicyNetmaps | null | undefined,
    /** A visible node's stable hash (SharedList.hashOf): what class revisions are sums of. */
    private readonly hashOf: (id: number) => bigint | undefined,
  ) {
    this.views = new PolicyViews(policy, previous?.views);
    this.views.load([...rows].map(liveNode));
  }

  /**
   * A policy change in place (`PolicyViews.update`): only the nodes the changed rules name are
   * placed again; then `collect` gives the deltas, so the cost follows the affected nodes. False
   * (nothing changed) for a whole-policy edit: build new netmaps then.
   */
  update(policy: Policy, sessions: Iterable<number>, revisions = true): Outgoing | null {
    if (!this.views.update(policy)) return null;
    return this.collect(new Set(), sessions, revisions);
  }

  /** A node's visible peers (the list it shares with its class; the session leaves itself out), and its filter's JSON. */
  netmap(id: number): { peers: PeerChunks; filter: string } {
    const cls = this.views.classOf(id);
    return { peers: cls ? this.chunksOf(cls).chunks : NO_PEERS, filter: this.filterJson(id) };
  }

  /**
   * The revision of the list a netmap for `id` sends now: its class list's sum (the list holds
   * the node itself when its class sees it; its netmap leaves it out, as without a policy).
   */
  revisionOf(id: number): string {
    const cls = this.views.classOf(id);
    return revisionHex(cls ? this.chunksOf(cls).sum : 0n);
  }

  /**
   * The list a netmap for `id` is made from now (its class's, which holds the node itself when its
   * class sees it: a netmap or resume leaves it out); undefined for a node in no class (no peers).
   */
  listChunksOf(id: number): PeerChunks | undefined {
    const cls = this.views.classOf(id);
    return cls ? this.chunksOf(cls).chunks : undefined;
  }

  /** The ids a netmap for `id` lists now, ascending, itself left out (what a resume is positional over). */
  listOf(id: number): number[] {
    return this.listChunksOf(id)?.idList.filter((x) => x !== id) ?? [];
  }

  /** The ids a node sees, ascending (tests and the policy switch read it). */
  peersOf(id: number): number[] {
    return this.views.peersOf(id);
  }

  sees(viewer: number, id: number): boolean {
    const cls = this.views.classOf(viewer);
    return viewer !== id && !!cls?.view.has(id);
  }

  filterJson(id: number): string {
    let f = this.filters.get(id);
    if (f === undefined) this.filters.set(id, (f = JSON.stringify(this.views.filterOf(id))));
    return f;
  }

  /**
   * After `views.upsert/remove` for a batch: the delta each affected session gets. `changed` are
   * the nodes whose peer entry changed (their viewers get it as an upsert even if the view did not
   * change); `sessions` are the nodes connected here.
   */
  collect(changed: Set<number>, sessions: Iterable<number>, revisions = true): Outgoing {
    const c = this.views.take();
    const out: Outgoing = new Map();
    const live = new Set(sessions);
    // Keep every class's buffers in step with its view and the changed entries.
    for (const [cls, d] of c.classes) {
      const ch = this.chunks.get(cls);
      if (!ch) continue;
      for (const id of d.removed) this.deleteIn(ch, id);
      for (const id of d.added) this.setIn(ch, id);
    }
    for (const cls of this.chunks.keys()) if (!cls.members.size) this.chunks.delete(cls);
    for (const id of changed) this.rehash(id);
    for (const [id, m] of c.moved) if (!m.to && this.hashOf(id) === undefined) this.used.delete(id);
    // `revisions`: false while the lists may hold what was not announced (see SharedList.deltaRevision).
    const rev = (cls: ViewClass | null | undefined) => (revisions && cls ? revisionHex(this.chunksOf(cls).sum) : null);
    // Changed entries go to the classes of connected nodes that see them.
    const reChanged = new Map<ViewClass, number[]>();
    if (changed.size) {
      const seen = new Set<ViewClass>();
      for (const s of live) {
        const cls = this.views.classOf(s);
        if (!cls || seen.has(cls)) continue;
        seen.add(cls);
        const ids = [...changed].filter((id) => cls.view.has(id) && !c.classes.get(cls)?.added.has(id));
        if (ids.length) reChanged.set(cls, ids);
      }
      for (const id of changed) this.refresh(id);
    }
    // Classes: one body for every member that stayed in it.
    const classes = new Set<ViewClass>([...c.classes.keys(), ...reChanged.keys()]);
    for (const cls of classes) {
      const d = c.classes.get(cls);
      const upsert = [...(d?.added ?? []), ...(reChanged.get(cls) ?? [])].sort((a, b) => a - b);
      const remove = [...(d?.removed ?? [])].sort((a, b) => a - b);
      let shared: string | undefined;
      for (const id of cls.members) {
        if (!live.has(id) || c.moved.has(id)) continue;
        if (upsert.includes(id) || remove.includes(id)) out.set(id, this.body(upsert.filter((x) => x !== id), remove.filter((x) => x !== id), rev(cls)));
        else out.set(id, (shared ??= this.body(upsert, remove, rev(cls))));
      }
    }
    // Nodes that moved between classes: their own diff.
    for (const [id, m] of c.moved) {
      if (!m.to || !live.has(id)) continue;
      const now = this.views.peersOf(id);
      const before = m.before ?? new Set<number>();
      const upsert = now.filter((x) => !before.has(x) || changed.has(x));
      const nowSet = new Set(now);
      const remove = [...before].filter((x) => !nowSet.has(x)).sort((a, b) => a - b);
      out.set(id, this.body(upsert, remove, rev(m.to)));
    }
    // Filters.
    for (const id of c.filters) {
      const prev = this.filters.get(id);
      this.filters.delete(id);
      if (!live.has(id)) continue;
      const next = this.filterJson(id);
      if (prev === next) continue;
      const rest = out.get(id);
      out.set(id, rest ? `${rest.slice(0, -1)},"packetFilter":${next}}` : `,"packetFilter":${next}}`);
    }
    for (const [id, rest] of out) if (rest === '}') out.delete(id);
    return out;
  }

  /** A visible node's entry changed without a view change (a patch): refresh the buffers holding it. */
  refresh(id: number): void {
    for (const [cls, ch] of this.chunks) if (cls.view.has(id)) this.setIn(ch, id);
  }

  /** The stable hash this replica uses for `id` in every sum (the first time: its current one). */
  private usedHash(id: number): bigint {
    let h = this.used.get(id);
    if (h === undefined) {
      h = this.hashOf(id) ?? 0n;
      this.used.set(id, h);
    }
    return h;
  }

  /** `id`'s stable fields may have changed: every class sum holding it follows. */
  private rehash(id: number): void {
    const old = this.used.get(id);
    const now = this.hashOf(id);
    if (old === undefined || now === undefined || old === now) return;
    this.used.set(id, now);
    for (const ch of this.chunks.values()) if (ch.chunks.has(id)) ch.sum = addMod128(ch.sum, now - old);
  }

  private setIn(ch: ClassList, id: number): void {
    const j = this.json(id);
    if (j === undefined) return;
    if (!ch.chunks.has(id)) ch.sum = addMod128(ch.sum, this.usedHash(id));
    ch.chunks.set(id, j);
  }

  private deleteIn(ch: ClassList, id: number): void {
    if (!ch.chunks.has(id)) return;
    ch.sum = addMod128(ch.sum, -this.usedHash(id));
    ch.chunks.delete(id);
  }

  private chunksOf(cls: ViewClass): ClassList {
    let ch = this.chunks.get(cls);
    if (!ch) {
      const chunks = new PeerChunks();
      const ids = [...cls.view.keys()].sort((a, b) => a - b);
      let sum = 0n;
      chunks.reset(ids.flatMap((id) => {
        const j = this.json(id);
        if (j === undefined) return [];
        sum = addMod128(sum, this.usedHash(id));
        return [[id, j] as [number, string]];
      }));
      this.chunks.set(cls, (ch = { chunks, sum }));
    }
    return ch;
  }

  /** `revision`: what the receiver's list is once this is applied (only on an upsert or removal). */
  private body(upsert: number[], remove: number[], revision: string | null = null): string {
    let s = '';
    if (upsert.length) s += `,"upsert":[${upsert.map((id) => this.json(id)).filter((j) => j !== undefined).join(',')}]`;
    if (remove.length) s += `,"remove":${JSON.stringify(remove)}`;
    if (s && revision !== null) s += `,"revision":"${revision}"`;
    return s + '}';
  }
}

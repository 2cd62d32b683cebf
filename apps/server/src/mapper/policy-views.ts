/**
 * Per-node netmaps under an access policy. `PolicyViews` (@weft/policy) says which nodes see which
 * and which views changed; this keeps the serialized side: one PeerChunks per view class (nodes
 * with the same view share its buffers, exactly as every node shares one list without a policy),
 * each node's packet filter as JSON, and it turns a batch of view changes into one delta body per
 * affected class, so a change costs one string per class it touches plus one per node that moved.
 */
import { PolicyViews, type LiveNode, type Policy, type ViewClass } from '@weft/policy';
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

export class PolicyNetmaps {
  readonly views: PolicyViews;
  private readonly chunks = new Map<ViewClass, PeerChunks>();
  private readonly filters = new Map<number, string>();

  constructor(
    policy: Policy,
    rows: Iterable<NodeWithUser>,
    /** The serialized peer entry of a visible node (shared with the allow-all list). */
    private readonly json: (id: number) => string | undefined,
    /** The views this replaces (a policy change): their parsed addresses are reused. */
    previous?: PolicyNetmaps | null,
  ) {
    this.views = new PolicyViews(policy, previous?.views);
    this.views.load([...rows].map(liveNode));
  }

  /**
   * A policy change in place (`PolicyViews.update`): only the nodes the changed rules name are
   * placed again; then `collect` gives the deltas, so the cost follows the affected nodes. False
   * (nothing changed) for a whole-policy edit: build new netmaps then.
   */
  update(policy: Policy, sessions: Iterable<number>): Outgoing | null {
    if (!this.views.update(policy)) return null;
    return this.collect(new Set(), sessions);
  }

  /** A node's visible peers (the list it shares with its class; the session leaves itself out), and its filter's JSON. */
  netmap(id: number): { peers: PeerChunks; filter: string } {
    const cls = this.views.classOf(id);
    return { peers: cls ? this.chunksOf(cls) : NO_PEERS, filter: this.filterJson(id) };
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
  collect(changed: Set<number>, sessions: Iterable<number>): Outgoing {
    const c = this.views.take();
    const out: Outgoing = new Map();
    const live = new Set(sessions);
    // Keep every class's buffers in step with its view and the changed entries.
    for (const [cls, d] of c.classes) {
      const ch = this.chunks.get(cls);
      if (!ch) continue;
      for (const id of d.removed) ch.delete(id);
      for (const id of d.added) this.setIn(ch, id);
    }
    for (const cls of this.chunks.keys()) if (!cls.members.size) this.chunks.delete(cls);
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
        if (upsert.includes(id) || remove.includes(id)) out.set(id, this.body(upsert.filter((x) => x !== id), remove.filter((x) => x !== id)));
        else out.set(id, (shared ??= this.body(upsert, remove)));
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
      out.set(id, this.body(upsert, remove));
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

  private setIn(ch: PeerChunks, id: number): void {
    const j = this.json(id);
    if (j !== undefined) ch.set(id, j);
  }

  private chunksOf(cls: ViewClass): PeerChunks {
    let ch = this.chunks.get(cls);
    if (!ch) {
      ch = new PeerChunks();
      const ids = [...cls.view.keys()].sort((a, b) => a - b);
      ch.reset(ids.flatMap((id) => {
        const j = this.json(id);
        return j === undefined ? [] : [[id, j] as [number, string]];
      }));
      this.chunks.set(cls, ch);
    }
    return ch;
  }

  private body(upsert: number[], remove: number[]): string {
    let s = '';
    if (upsert.length) s += `,"upsert":[${upsert.map((id) => this.json(id)).filter((j) => j !== undefined).join(',')}]`;
    if (remove.length) s += `,"remove":${JSON.stringify(remove)}`;
    return s + '}';
  }
}

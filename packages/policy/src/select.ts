/**
 * What a selector means, given nodes: the addresses it names. Shared by the engine (through its
 * indexes) and the policy `tests`; the reference implementation has its own scanning version.
 *
 * - a user: the addresses of that user's untagged nodes (a tagged node is not its user's);
 * - a group: the union over its users; a tag: the nodes carrying it;
 * - autogroup:member: every untagged node; autogroup:tagged: every tagged node;
 * - `*`: the tailnet, not the internet: 100.64.0.0/10, every node's own addresses (Weft's IPv6 /48
 *   is per deployment, so its addresses are listed rather than Tailscale's fd7a:115c:a1e0::/48),
 *   and every approved route except exit routes (0.0.0.0/0, ::/0);
 * - autogroup:danger-all: any address at all (`*` in the filter);
 * - a host, ipset, IP, CIDR or range: those addresses.
 */
import { overlaps, parseAddrSet, union, type AddrSet, type Range } from './addr.js';
import type { Policy, Selector } from './model.js';
import type { Prepared, PreparedNode } from './nodes.js';

export const ANY = '*';
export type Resolved = AddrSet | typeof ANY;

export class NodeIndex {
  readonly byUser = new Map<string, PreparedNode[]>();
  readonly byTag = new Map<string, PreparedNode[]>();
  readonly untagged: PreparedNode[] = [];
  readonly tagged: PreparedNode[] = [];
  readonly routers: PreparedNode[] = [];
  /** Every node address, ascending, with its node, per family. */
  private readonly ip4: { ip: bigint; idx: number }[] = [];
  private readonly ip6: { ip: bigint; idx: number }[] = [];
  /** Per table entry: its address is the previous entry's plus one (so a run of nodes is one range without BigInt arithmetic per walk). */
  private readonly adj4: Uint8Array;
  private readonly adj6: Uint8Array;
  private tailnetSet: AddrSet | null = null;
  private readonly cache = new Map<string, AddrSet>();
  /** Dedupes node hits without a Set: a node is in the current result when its stamp is the generation. */
  private readonly stamp: Int32Array;
  private generation = 0;

  constructor(readonly prepared: Prepared, private readonly policy: Policy) {
    for (const n of prepared.nodes) {
      if (n.tagged) {
        this.tagged.push(n);
        for (const t of n.input.tags) push(this.byTag, t, n);
      } else {
        this.untagged.push(n);
        push(this.byUser, n.input.user!, n);
      }
      if (n.input.approvedRoutes.length) this.routers.push(n);
      for (const [lo] of n.ips.v4) this.ip4.push({ ip: lo, idx: n.idx });
      for (const [lo] of n.ips.v6) this.ip6.push({ ip: lo, idx: n.idx });
    }
    const cmp = (a: { ip: bigint }, b: { ip: bigint }) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0);
    this.ip4.sort(cmp);
    this.ip6.sort(cmp);
    this.adj4 = adjacency(this.ip4);
    this.adj6 = adjacency(this.ip6);
    this.stamp = new Int32Array(prepared.nodes.length);
  }

  /** What `*` names, built on first use (most policies never name it: a union of every node's addresses). */
  get tailnet(): AddrSet {
    return (this.tailnetSet ??= tailnet(this.prepared));
  }

  private ipsOf(nodes: readonly PreparedNode[] | undefined): AddrSet {
    if (!nodes || nodes.length < 64) return union(...(nodes ?? []).map((n) => n.ips));
    // Many nodes: walk the sorted address tables instead of sorting their addresses again (a
    // node has at most one address per family, all of them in the tables).
    this.generation++;
    for (const n of nodes) this.stamp[n.idx] = this.generation;
    return { v4: this.rangesOf(this.ip4, this.adj4), v6: this.rangesOf(this.ip6, this.adj6) };
  }

  private rangesOf(table: { ip: bigint; idx: number }[], adj: Uint8Array): Range[] {
    // Addresses are unique and the table ascending: the current range grows exactly when the
    // previous entry is in it and this one is next to it.
    const out: [bigint, bigint][] = [];
    let prevIn = false;
    for (let i = 0; i < table.length; i++) {
      const e = table[i]!;
      if (this.stamp[e.idx] !== this.generation) {
        prevIn = false;
        continue;
      }
      if (prevIn && adj[i] === 1) out[out.length - 1]![1] = e.ip;
      else out.push([e.ip, e.ip]);
      prevIn = true;
    }
    return out;
  }

  /** The addresses a selector names (autogroup:self is resolved per user by the caller). */
  resolve(sel: Selector): Resolved {
    switch (sel.kind) {
      case 'danger-all': return ANY;
      case 'addrs': return sel.set;
      case 'self': throw new Error('autogroup:self is resolved per user');
      default: break;
    }
    const key = sel.kind === 'user' ? 'u' + sel.login : sel.kind === 'group' ? 'g' + sel.name : sel.kind === 'tag' ? 't' + sel.name : sel.kind;
    let set = this.cache.get(key);
    if (!set) {
      switch (sel.kind) {
        case 'all': set = this.tailnet; break;
        case 'member': set = this.ipsOf(this.untagged); break;
        case 'tagged': set = this.ipsOf(this.tagged); break;
        case 'user': set = this.ipsOf(this.byUser.get(sel.login)); break;
        case 'group': set = this.ipsOf((this.policy.groups.get(sel.name) ?? []).flatMap((u) => this.byUser.get(u) ?? [])); break;
        case 'tag': set = this.ipsOf(this.byTag.get(sel.name)); break;
      }
      this.cache.set(key, set);
    }
    return set;
  }

  /** Indexes of the nodes whose addresses or approved routes overlap `set`, ascending. */
  overlapping(set: Resolved): number[] {
    if (set === ANY) return this.prepared.nodes.map((n) => n.idx);
    this.generation++;
    const hits: number[] = [];
    const hit = (idx: number) => {
      if (this.stamp[idx] !== this.generation) {
        this.stamp[idx] = this.generation;
        hits.push(idx);
      }
    };
    scan(this.ip4, set.v4, hit);
    scan(this.ip6, set.v6, hit);
    for (const r of this.routers) if (this.stamp[r.idx] !== this.generation && overlaps(r.reach, set)) hit(r.idx);
    return hits.sort((a, b) => a - b);
  }

  private readonly nodesCache = new Map<string, number[]>();

  /**
   * The same as `overlapping(resolve(sel))`, from the indexes: a user, group, tag or autogroup
   * names its nodes directly (addresses are unique, so no lookup is needed), plus any router whose
   * routes overlap their addresses. Cached per selector.
   */
  nodesOf(sel: Selector): number[] {
    if (sel.kind === 'addrs' || sel.kind === 'danger-all' || sel.kind === 'all' || sel.kind === 'self') return this.overlapping(this.resolve(sel));
    const key = sel.kind === 'user' ? 'u' + sel.login : sel.kind === 'group' ? 'g' + sel.name : sel.kind === 'tag' ? 't' + sel.name : sel.kind;
    let list = this.nodesCache.get(key);
    if (!list) {
      let direct: PreparedNode[];
      switch (sel.kind) {
        case 'member': direct = this.untagged; break;
        case 'tagged': direct = this.tagged; break;
        case 'user': direct = this.byUser.get(sel.login) ?? []; break;
        case 'tag': direct = this.byTag.get(sel.name) ?? []; break;
        case 'group': direct = (this.policy.groups.get(sel.name) ?? []).flatMap((u) => this.byUser.get(u) ?? []); break;
      }
      const set = this.resolve(sel) as AddrSet;
      this.generation++;
      const hits: number[] = [];
      for (const n of direct) {
        if (this.stamp[n.idx] !== this.generation && (n.ips.v4.length || n.ips.v6.length)) {
          this.stamp[n.idx] = this.generation;
          hits.push(n.idx);
        }
      }
      for (const r of this.routers) {
        if (this.stamp[r.idx] !== this.generation && overlaps(r.reach, set)) {
          this.stamp[r.idx] = this.generation;
          hits.push(r.idx);
        }
      }
      list = hits.sort((a, b) => a - b);
      this.nodesCache.set(key, list);
    }
    return list;
  }

  /** Sorted union of node lists (each sorted). */
  unionNodes(lists: number[][]): number[] {
    if (lists.length === 1) return lists[0]!;
    this.generation++;
    const out: number[] = [];
    for (const l of lists) {
      for (const i of l) {
        if (this.stamp[i] !== this.generation) {
          this.stamp[i] = this.generation;
          out.push(i);
        }
      }
    }
    return out.sort((a, b) => a - b);
  }

  /** Nodes receiving traffic for address `ip`: the node that has it, and routers whose routes hold it. */
  owners(family: 4 | 6, ip: bigint): number[] {
    const arr = family === 4 ? this.ip4 : this.ip6;
    const out: number[] = [];
    for (let i = lowerBound(arr, ip); i < arr.length && arr[i]!.ip === ip; i++) out.push(arr[i]!.idx);
    for (const r of this.routers) {
      const routes = family === 4 ? r.reach.v4 : r.reach.v6;
      if (!out.includes(r.idx) && routes.some(([lo, hi]) => lo <= ip && ip <= hi)) out.push(r.idx);
    }
    return out;
  }
}

const CGNAT = (parseAddrSet('100.64.0.0/10') as { set: AddrSet }).set;

/** What `*` names as a source (see the header). Exported for the reference, which shares only this definition. */
export function tailnet(prepared: Prepared): AddrSet {
  const routes = prepared.nodes.flatMap((n) => n.input.approvedRoutes.filter((r) => r !== '0.0.0.0/0' && r !== '::/0').map((r) => (parseAddrSet(r) as { set: AddrSet }).set));
  return union(CGNAT, ...prepared.nodes.map((n) => n.ips), ...routes);
}

function adjacency(table: { ip: bigint }[]): Uint8Array {
  const adj = new Uint8Array(table.length);
  for (let i = 1; i < table.length; i++) if (table[i]!.ip === table[i - 1]!.ip + 1n) adj[i] = 1;
  return adj;
}

function lowerBound(arr: { ip: bigint }[], ip: bigint): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid]!.ip < ip) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function scan(arr: { ip: bigint; idx: number }[], ranges: AddrSet['v4'], hit: (idx: number) => void): void {
  for (const [lo, hi] of ranges) {
    for (let i = lowerBound(arr, lo); i < arr.length && arr[i]!.ip <= hi; i++) hit(arr[i]!.idx);
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

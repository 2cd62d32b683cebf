/**
 * The engine: a validated policy and prepared nodes -> per node, the packet-filter rules for
 * traffic arriving at it and its visible peers. Selectors resolve through indexes (by user, group,
 * tag, and a sorted address table); peers are unions of per-rule node lists, computed once per
 * distinct combination, so no pair of nodes is ever examined.
 */
import { cidrsOf, covers, intersect, isEmpty, overlaps, union, type AddrSet, type Cidr } from './addr.js';
import { dstCidrs, sortDstPorts, srcText, type Compiled, type FilterRule, type NodeRule } from './filter.js';
import { ALLOW_ALL, type DstEntry, type Policy, type Rule } from './model.js';
import type { Prepared, PreparedNode } from './nodes.js';
import { ANY, NodeIndex, type Resolved } from './select.js';

export interface Compilation {
  compiled: Compiled;
  /** Per node (in name order), the rules as the engine keeps them: what `tests` check. */
  rules: NodeRule[][];
  index: NodeIndex;
}

/** `policy` null means none is stored: every node may reach every node. */
export function compile(policy: Policy | null, prepared: Prepared): Compilation {
  const p = policy ?? ALLOW_ALL;
  const index = new NodeIndex(prepared, p);
  const nodes = prepared.nodes;
  const rules: NodeRule[][] = nodes.map(() => []);
  const text: FilterRule[][] = nodes.map(() => []);
  const groups: number[][] = [];
  const groupsOf: number[][] = nodes.map(() => []);
  const link = (a: number[], b: number[]) => {
    if (!a.length || !b.length) return;
    const ga = groups.push(a) - 1;
    const gb = groups.push(b) - 1;
    for (const i of a) groupsOf[i]!.push(gb);
    for (const i of b) groupsOf[i]!.push(ga);
  };

  for (const rule of p.rules) {
    const src = resolveAll(index, rule);
    if (src !== ANY && isEmpty(src)) continue;
    const srcNodes = src === ANY ? index.overlapping(ANY) : index.unionNodes(rule.src.map((sel) => index.nodesOf(sel)));
    const srcIPs = srcText(src);
    const perNode = new Map<number, { dst: NodeRule['dst']; text: { ip: Cidr; ports: DstEntry['ports'][number] }[] }>();
    const selfEntries: DstEntry[] = [];
    for (const entry of rule.dst) {
      if (entry.sel.kind === 'self') {
        selfEntries.push(entry);
        continue;
      }
      const dst = index.resolve(entry.sel);
      for (const t of index.nodesOf(entry.sel)) {
        let acc = perNode.get(t);
        if (!acc) perNode.set(t, (acc = { dst: [], text: [] }));
        const ips = dstOn(dst, nodes[t]!);
        for (const ports of entry.ports) {
          acc.dst.push({ set: dst, ports });
          for (const ip of ips) acc.text.push({ ip, ports });
        }
      }
    }
    for (const [t, acc] of perNode) {
      rules[t]!.push({ pos: rule.pos, src, dst: acc.dst, protos: rule.protos });
      text[t]!.push({ srcIPs, dstPorts: sortDstPorts(acc.text), protos: rule.protos });
    }
    link(srcNodes, [...perNode.keys()].sort((a, b) => a - b));
    if (selfEntries.length) compileSelf(index, rule, src, selfEntries, rules, text, link);
  }

  // Peers: the union of a node's groups, computed once per distinct combination of groups.
  const memo = new Map<string, { members: number[]; names: string[] }>();
  const stamp = new Int32Array(nodes.length);
  const names = nodes.map((n) => n.name);
  let generation = 0;
  const out: Compiled = { nodes: {} };
  for (const n of nodes) {
    const ids = [...new Set(groupsOf[n.idx])].sort((a, b) => a - b);
    const key = ids.join(',');
    let entry = memo.get(key);
    if (!entry) {
      generation++;
      let members: number[] = [];
      for (const g of ids) {
        for (const i of groups[g]!) {
          if (stamp[i] !== generation) {
            stamp[i] = generation;
            members.push(i);
          }
        }
      }
      members = Array.from(Int32Array.from(members).sort());
      memo.set(key, (entry = { members, names: members.map((i) => names[i]!) }));
    }
    // Nodes with the same combination share one peer array unless they are in it themselves:
    // 10,000 nodes x hundreds of peers was millions of array slots built again per node.
    const members = entry.members;
    let self = -1;
    for (let lo = 0, hi = members.length - 1; lo <= hi; ) {
      const mid = (lo + hi) >> 1;
      if (members[mid]! < n.idx) lo = mid + 1;
      else if (members[mid]! > n.idx) hi = mid - 1;
      else {
        self = mid;
        break;
      }
    }
    const peers = self < 0 ? entry.names : [...entry.names.slice(0, self), ...entry.names.slice(self + 1)];
    out.nodes[n.name] = { rules: text[n.idx]!, peers };
  }
  return { compiled: out, rules, index };
}

const ownCache = new WeakMap<PreparedNode, Cidr[]>();

/** A node's own addresses as CIDRs (formatted once per node). */
function ownCidrs(n: PreparedNode): Cidr[] {
  let c = ownCache.get(n);
  if (!c) ownCache.set(n, (c = cidrsOf(n.ips)));
  return c;
}

function sameRanges(a: AddrSet, b: AddrSet): boolean {
  const eq = (x: AddrSet['v4'], y: AddrSet['v4']) => x.length === y.length && x.every((r, i) => r[0] === y[i]![0] && r[1] === y[i]![1]);
  return eq(a.v4, b.v4) && eq(a.v6, b.v6);
}

/** dstCidrs, with the common case (the destination covers the whole node, no routes) formatted once per node. */
function dstOn(dst: Resolved, n: PreparedNode): Cidr[] {
  if (dst === ANY || n.input.approvedRoutes.length) return dstCidrs(dst, n.reach);
  // The common case without building the intersection: 10,000 nodes x 1,000 rules made it a GC cost.
  if (covers(dst, n.ips)) return ownCidrs(n);
  const part = intersect(dst, n.reach);
  return sameRanges(part, n.ips) ? ownCidrs(n) : cidrsOf(part);
}

function resolveAll(index: NodeIndex, rule: Rule): Resolved {
  const sets: AddrSet[] = [];
  for (const sel of rule.src) {
    const r = index.resolve(sel);
    if (r === ANY) return ANY;
    sets.push(r);
  }
  return union(...sets);
}

const ownedCache = new WeakMap<PreparedNode[], AddrSet>();

/** The addresses of one user's untagged nodes, once per compile (the index's lists are per compile). */
function ownedAddresses(owned: PreparedNode[]): AddrSet {
  let set = ownedCache.get(owned);
  if (!set) ownedCache.set(owned, (set = union(...owned.map((n) => n.ips))));
  return set;
}

/** autogroup:self: each user's untagged nodes, from the sources that are that user's own. */
function compileSelf(index: NodeIndex, rule: Rule, src: Resolved, entries: DstEntry[], rules: NodeRule[][], text: FilterRule[][], link: (a: number[], b: number[]) => void): void {
  for (const owned of index.byUser.values()) {
    const mine = ownedAddresses(owned);
    // Usually every one of the user's addresses is a source: the shared set keeps srcText's cache.
    const from = src === ANY || covers(src, mine) ? mine : intersect(src, mine);
    if (isEmpty(from)) continue;
    const srcIPs = srcText(from);
    const targets = owned.filter((n) => !isEmpty(n.ips));
    for (const x of targets) {
      const dst: NodeRule['dst'] = [];
      const dstTextEntries: { ip: Cidr; ports: DstEntry['ports'][number] }[] = [];
      const own = ownCidrs(x);
      for (const e of entries) {
        for (const ports of e.ports) {
          dst.push({ set: x.ips, ports });
          for (const ip of own) dstTextEntries.push({ ip, ports });
        }
      }
      rules[x.idx]!.push({ pos: rule.pos, src: from, dst, protos: rule.protos });
      text[x.idx]!.push({ srcIPs, dstPorts: sortDstPorts(dstTextEntries), protos: rule.protos });
    }
    link(owned.filter((n) => overlaps(n.ips, from)).map((n) => n.idx), targets.map((n) => n.idx));
  }
}

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
  // Visibility links between node lists. A list (a selector's nodes, a rule's destinations) is
  // interned once however many rules name it: the nodesOf lists are shared objects, others are
  // matched by content. Each node is then placed in the lists holding it once, not once per rule
  // (per-rule pushes were 178,000 at 10,000 nodes and 1,000 rules, against 35,000 list slots).
  const lists: number[][] = [];
  const partners: number[][] = [];
  const byIdentity = new Map<number[], number>();
  const byContent = new Map<string, number>();
  const intern = (l: number[]): number => {
    let id = byIdentity.get(l);
    if (id !== undefined) return id;
    const key = l.join(',');
    id = byContent.get(key);
    if (id === undefined) {
      id = lists.push(l) - 1;
      partners.push([]);
      byContent.set(key, id);
    }
    byIdentity.set(l, id);
    return id;
  };
  const link = (a: number[], b: number[]) => {
    if (!a.length || !b.length) return;
    const ia = intern(a);
    const ib = intern(b);
    partners[ia]!.push(ib);
    partners[ib]!.push(ia);
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
    // One destination entry: its targets are exactly its selector's (shared, interned) node list.
    const plain = rule.dst.filter((e) => e.sel.kind !== 'self');
    link(srcNodes, plain.length === 1 ? index.nodesOf(plain[0]!.sel) : [...perNode.keys()].sort((a, b) => a - b));
    if (selfEntries.length) compileSelf(index, rule, src, selfEntries, rules, text, link);
  }

  // Peers: a node sees the partners of every list it is in. Each list's partners are one bitset
  // over node indexes (word ORs), and a node's peers are the OR over its lists, computed once per
  // distinct combination of lists; the bits come out already in order.
  const words = (nodes.length + 31) >>> 5;
  const bitsOfList = (l: number[]): Uint32Array => {
    const b = new Uint32Array(words);
    for (const i of l) b[i >>> 5]! |= 1 << (i & 31);
    return b;
  };
  const members0 = lists.map((l) => bitsOfList(l));
  const seenBy: Uint32Array[] = partners.map((ps) => {
    if (ps.length === 1) return members0[ps[0]!]!;
    const b = new Uint32Array(words);
    for (const q of new Set(ps)) {
      const m = members0[q]!;
      for (let w = 0; w < words; w++) b[w]! |= m[w]!;
    }
    return b;
  });
  const listsOf: number[][] = nodes.map(() => []);
  lists.forEach((l, id) => {
    for (const i of l) listsOf[i]!.push(id);
  });
  const memo = new Map<string, { names: string[]; idx: Int32Array }>();
  const names = nodes.map((n) => n.name);
  const acc = new Uint32Array(words);
  const out: Compiled = { nodes: {} };
  for (const n of nodes) {
    const ids = listsOf[n.idx]!;
    const key = ids.join(',');
    let members = memo.get(key);
    if (!members) {
      acc.fill(0);
      for (const id of ids) {
        const b = seenBy[id]!;
        for (let w = 0; w < words; w++) acc[w]! |= b[w]!;
      }
      const found: string[] = [];
      const at: number[] = [];
      for (let w = 0; w < words; w++) {
        let x = acc[w]!;
        while (x !== 0) {
          const low = x & -x;
          const i = (w << 5) + 31 - Math.clz32(low);
          found.push(names[i]!);
          at.push(i);
          x ^= low;
        }
      }
      memo.set(key, (members = { names: found, idx: Int32Array.from(at) }));
    }
    // Nodes with the same combination share one peer array unless they are in it themselves:
    // 10,000 nodes x hundreds of peers was millions of array slots built again per node.
    out.nodes[n.name] = { rules: text[n.idx]!, peers: without(members.names, members.idx, n.idx) };
  }
  return { compiled: out, rules, index };
}

/** `names` (their node indexes `idx`, ascending) without node `self`, in one allocation; `names` itself when it is not there. */
function without(names: string[], idx: Int32Array, self: number): string[] {
  let lo = 0;
  let hi = idx.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (idx[mid]! < self) lo = mid + 1;
    else if (idx[mid]! > self) hi = mid - 1;
    else {
      const out = new Array<string>(names.length - 1);
      for (let k = 0; k < mid; k++) out[k] = names[k]!;
      for (let k = mid + 1; k < names.length; k++) out[k - 1] = names[k]!;
      return out;
    }
  }
  return names;
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

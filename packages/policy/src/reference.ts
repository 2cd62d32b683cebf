/**
 * The naive reference: the same meaning as the engine, computed the obvious way. Every selector is
 * resolved by scanning every node, every node's filter by walking every rule, and visibility by
 * asking of every ordered pair whether one may reach the other. O(nodes^2 x rules): for tests and
 * the benchmark's comparison only.
 */
import { cidrsOf, intersect, isEmpty, overlaps, union, type AddrSet, type Cidr } from './addr.js';
import { dstCidrs, sortDstPorts, srcText, type Compiled, type FilterRule } from './filter.js';
import { ALLOW_ALL, type Policy, type Rule, type Selector } from './model.js';
import type { Prepared, PreparedNode } from './nodes.js';
import { ANY, tailnet, type Resolved } from './select.js';

export function compileReference(policy: Policy | null, prepared: Prepared): Compiled {
  const p = policy ?? ALLOW_ALL;
  const nodes = prepared.nodes;
  const ipsWhere = (pred: (n: PreparedNode) => boolean): AddrSet => union(...nodes.filter(pred).map((n) => n.ips));
  const names = (sel: Selector): Resolved => {
    switch (sel.kind) {
      case 'danger-all': return ANY;
      case 'addrs': return sel.set;
      case 'all': return tailnet(prepared);
      case 'member': return ipsWhere((n) => !n.tagged);
      case 'tagged': return ipsWhere((n) => n.tagged);
      case 'user': return ipsWhere((n) => !n.tagged && n.input.user === sel.login);
      case 'group': return ipsWhere((n) => !n.tagged && (p.groups.get(sel.name) ?? []).includes(n.input.user!));
      case 'tag': return ipsWhere((n) => n.tagged && n.input.tags.includes(sel.name));
      case 'self': throw new Error('autogroup:self has no fixed addresses');
    }
  };
  const touches = (n: PreparedNode, set: Resolved) => set === ANY || overlaps(n.reach, set);
  const sources = (r: Rule): Resolved => {
    const sets = r.src.map(names);
    return sets.includes(ANY) ? ANY : union(...(sets as AddrSet[]));
  };
  const srcOf = p.rules.map(sources);
  // Each destination selector's addresses, resolved once (still by scanning every node).
  const dstOf = p.rules.map((r) => r.dst.map((d) => (d.sel.kind === 'self' ? null : names(d.sel))));
  const selfMemo = new Map<string, AddrSet>();
  const selfSources = (rule: number, x: PreparedNode): AddrSet => {
    const key = `${rule} ${x.input.user}`;
    let from = selfMemo.get(key);
    if (!from) {
      const mine = ipsWhere((n) => !n.tagged && n.input.user === x.input.user);
      const s = srcOf[rule]!;
      from = s === ANY ? mine : intersect(s, mine);
      selfMemo.set(key, from);
    }
    return from;
  };
  const live = (rule: number) => srcOf[rule] === ANY || !isEmpty(srcOf[rule] as AddrSet);
  const hasSelf = (r: Rule) => r.dst.some((d) => d.sel.kind === 'self');

  const reaches = (a: PreparedNode, b: PreparedNode): boolean => p.rules.some((r, i) => {
    if (!live(i)) return false;
    if (touches(a, srcOf[i]!) && dstOf[i]!.some((d) => d !== null && touches(b, d))) return true;
    return hasSelf(r) && !a.tagged && !b.tagged && a.input.user === b.input.user && !isEmpty(b.ips) && overlaps(a.ips, selfSources(i, b));
  });

  const out: Compiled = { nodes: {} };
  for (const x of nodes) {
    const rules: FilterRule[] = [];
    p.rules.forEach((r, i) => {
      if (!live(i)) return;
      const main = r.dst.flatMap((d, j) => {
        const set = dstOf[i]![j]!;
        return set !== null && touches(x, set) ? d.ports.flatMap((ports) => dstCidrs(set, x.reach).map((ip) => ({ ip, ports }))) : [];
      });
      if (main.length) rules.push({ srcIPs: srcText(srcOf[i]!), dstPorts: sortDstPorts(main), protos: r.protos });
      if (hasSelf(r) && !x.tagged && !isEmpty(x.ips)) {
        const from = selfSources(i, x);
        if (!isEmpty(from)) {
          const self = r.dst.filter((d) => d.sel.kind === 'self').flatMap((d) => d.ports.flatMap((ports) => cidrsOf(x.ips).map((ip) => ({ ip, ports }))));
          rules.push({ srcIPs: srcText(from), dstPorts: sortDstPorts(self), protos: r.protos });
        }
      }
    });
    const peers = nodes.filter((y) => y !== x && (reaches(x, y) || reaches(y, x))).map((y) => y.name);
    out.nodes[x.name] = { rules, peers };
  }
  return out;
}

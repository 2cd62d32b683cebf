/**
 * The same meaning as `compile()`, kept up to date one node at a time (for the server's mapper).
 *
 * Each rule splits the nodes into link groups: its sources (`s`), its destinations (`d`), and for
 * `autogroup:self` per user the user's sources (`S`) and the user's untagged nodes (`D`). A node
 * sees the members of the partner of every group it is in (s <-> d, S <-> D): "either side may
 * reach the other". Nodes in the same groups form a class and share one view, kept as a count per
 * visible node (how many of the class's groups reach it), so a node joining a group touches only
 * the classes watching that group, and no pair of nodes is ever examined.
 *
 * Which groups a node is in depends only on the node (user, tags, addresses) and the policy, so a
 * node change costs the rules times its selectors, plus one count per class watching the groups
 * it entered or left. Filters are rebuilt per node on demand from cached per-rule source sets.
 *
 * Scope: nodes without subnet routes (Weft has none yet), each with at least one address.
 * `test/incremental.test.ts` checks it against `compile()` after random change sequences.
 */
import { cidrsOf, covers, formatSet, intersect, isEmpty, overlaps, parseAddrSet, union, type AddrSet, type Cidr } from './addr.js';
import { sortDstPorts, srcText, type FilterRule } from './filter.js';
import type { DstEntry, Policy, Rule, Selector } from './model.js';
import { ANY, type Resolved } from './select.js';

export interface LiveNode {
  id: number;
  /** The owner's login; null for a tagged node (a tagged node is not its user's). */
  login: string | null;
  tags: readonly string[];
  ipv4: string | null;
  ipv6: string | null;
}

/** Nodes that see the same peers. `view` counts, per visible node, the class's groups that reach it. */
export interface ViewClass {
  readonly id: number;
  readonly members: ReadonlySet<number>;
  readonly view: ReadonlyMap<number, number>;
}

export interface ViewChanges {
  /** Classes whose view changed since the last `take()`: node ids that became visible / invisible. */
  classes: Map<ViewClass, { added: Set<number>; removed: Set<number> }>;
  /** Nodes that joined, left or changed class: the ids they saw before (null = not here before), and their class now (null = gone). */
  moved: Map<number, { before: Set<number> | null; to: ViewClass | null }>;
  /** Nodes whose packet filter may have changed. */
  filters: Set<number>;
}

interface NodeState {
  node: LiveNode;
  ips: AddrSet;
  own: Cidr[];
  groups: string[];
  cls: Klass;
}

interface Klass extends ViewClass {
  key: string;
  groups: string[];
  members: Set<number>;
  view: Map<number, number>;
}

const CGNAT = (parseAddrSet('100.64.0.0/10') as { set: AddrSet }).set;

function ipsOf(n: LiveNode): AddrSet {
  const sets: AddrSet[] = [];
  for (const a of [n.ipv4, n.ipv6]) {
    if (a === null) continue;
    const p = parseAddrSet(a);
    if ('error' in p) throw new Error(`node ${n.id}: ${p.error}`);
    sets.push(p.set);
  }
  return union(...sets);
}

const partnerOf = (g: string): string | null => {
  switch (g[0]) {
    case 's': return 'd' + g.slice(1);
    case 'd': return 's' + g.slice(1);
    case 'S': return 'D' + g.slice(1);
    case 'D': return 'S' + g.slice(1);
    default: return null; // 'n': a rule's named sources, kept for filter text only
  }
};

/** Rule id of a group key ("s12", "D3:odin@example.com" -> 12, 3). Ids are stable across `update()`: an unchanged rule keeps its groups. */
const ruleOf = (g: string): number => parseInt(g.slice(1), 10);

export class PolicyViews {
  private readonly nodes = new Map<number, NodeState>();
  private readonly groups = new Map<string, Set<number>>();
  /** Group key -> classes with that group's partner among their groups (they see its members). */
  private readonly watchers = new Map<string, Set<Klass>>();
  private readonly classes = new Map<string, Klass>();
  private readonly byLogin = new Map<string, Set<number>>();
  private groupMembers: Map<string, Set<string>>;
  /** Rules by id, and each id's position in the policy (filters list rules in policy order). */
  private readonly rules = new Map<number, Rule>();
  private readonly order = new Map<number, number>();
  private ruleIds: number[] = [];
  private nextRuleId = 0;
  /** Rule ids with `*` among their sources, and with autogroup:self among their destinations. */
  private hasAll = new Set<number>();
  private hasSelf = new Set<number>();
  /** Tagged nodes by tag (a policy change finds a new rule's tag:x nodes here). */
  private readonly byTag = new Map<string, Set<number>>();
  /** Which rule sides could name a node, by what the node is: so placing a node reads only the rules that can match it. */
  private index = emptyIndex();
  private readonly srcCache = new Map<number, Resolved>();
  private readonly mineCache = new Map<string, AddrSet>();
  private readonly selfCache = new WeakMap<AddrSet, WeakMap<AddrSet, AddrSet>>();
  private tailnetCache: AddrSet | null = null;
  private nextClassId = 1;
  private pending: ViewChanges = { classes: new Map(), moved: new Map(), filters: new Set() };

  /** Parsed addresses by "ipv4 ipv6" text; shared with the views built from this one (a policy change reparses nothing). */
  private readonly addrs: Map<string, { ips: AddrSet; own: Cidr[] }>;
  /** False while `load` places the first nodes: nothing to report then. */
  private tracking = true;

  constructor(policy: Policy, previous?: PolicyViews) {
    this.addrs = previous?.addrs ?? new Map();
    this.groupMembers = membersOf(policy);
    this.install(policy, policy.rules.map(() => this.nextRuleId++));
  }

  /** Takes `policy` with `ids[i]` naming its rule i: the rule tables and the index by user, group, tag. */
  private install(policy: Policy, ids: number[]): void {
    this.ruleIds = ids;
    this.rules.clear();
    this.order.clear();
    ids.forEach((id, i) => {
      this.rules.set(id, policy.rules[i]!);
      this.order.set(id, i);
    });
    this.hasAll = new Set(ids.filter((id) => this.rules.get(id)!.src.some((s) => s.kind === 'all')));
    this.hasSelf = new Set(ids.filter((id) => this.rules.get(id)!.dst.some((d) => d.sel.kind === 'self')));
    const ix = (this.index = emptyIndex());
    const put = (sel: Selector, key: string) => {
      switch (sel.kind) {
        case 'all':
        case 'danger-all': ix.always.push(key); break;
        case 'member': ix.member.push(key); break;
        case 'tagged': ix.tagged.push(key); break;
        case 'user': listAdd(ix.byLogin, sel.login, key); break;
        case 'group': for (const login of this.groupMembers.get(sel.name) ?? []) listAdd(ix.byLogin, login, key); break;
        case 'tag': listAdd(ix.byTag, sel.name, key); break;
        case 'addrs': ix.addrs.push({ key, set: sel.set }); break;
        case 'self': break;
      }
    };
    ids.forEach((r, i) => {
      const rule = policy.rules[i]!;
      for (const sel of rule.src) {
        put(sel, 's' + r);
        if (sel.kind !== 'all' && sel.kind !== 'danger-all' && sel.kind !== 'addrs') put(sel, 'n' + r);
      }
      for (const e of rule.dst) put(e.sel, 'd' + r);
      if (this.hasSelf.has(r)) ix.selfRules.push(r);
    });
  }

  private get anySelf(): boolean {
    return this.hasSelf.size > 0;
  }

  /**
   * Switches to a new policy in place, touching only what the changed rules can reach: rules are
   * matched old to new by what they mean (selectors with groups expanded, hosts and ipsets as
   * addresses, ports, protocols; not their line), so an edit of a group or host changes exactly
   * the rules that name it. The nodes in the groups of removed rules, and those the added rules'
   * selectors name (from the indexes by user, group and tag), are placed again; every other node
   * keeps its groups, class and filter. The changes are reported by `take()` like a node change.
   * Kept rules in a new order mark the filters of the nodes they reach (filters follow policy order).
   * Returns false, changing nothing, for a whole-policy edit (more than a quarter of the rules,
   * and more than 8, changed): the caller builds fresh views then (`new PolicyViews(policy, this)`).
   */
  update(policy: Policy): boolean {
    const nextMembers = membersOf(policy);
    const old = new Map<string, number[]>();
    for (const id of this.ruleIds) listAdd(old, ruleKey(this.rules.get(id)!, this.groupMembers), id);
    const ids: number[] = [];
    const fresh: number[] = [];
    for (const rule of policy.rules) {
      const same = old.get(ruleKey(rule, nextMembers));
      let id: number;
      if (same?.length) id = same.shift()!;
      else fresh.push((id = this.nextRuleId++));
      ids.push(id);
    }
    const gone = [...old.values()].flat();
    const changed = gone.length + fresh.length;
    if (changed > 8 && changed * 4 > Math.max(this.ruleIds.length, ids.length)) return false;
    // Who was in the removed rules' groups.
    const affected = new Set<number>();
    for (const r of gone) {
      for (const p of ['s', 'd', 'n']) for (const id of this.groups.get(p + r) ?? []) affected.add(id);
      if (this.hasSelf.has(r)) for (const login of this.byLogin.keys()) for (const id of this.byLogin.get(login)!) affected.add(id);
      this.srcCache.delete(r);
    }
    // Kept rules in another order: filters list rules in policy order, so every node they reach gets its filter again.
    const keptBefore = this.ruleIds.filter((id) => !gone.includes(id));
    const keptAfter = ids.filter((id) => !fresh.includes(id));
    const reordered = keptBefore.some((id, i) => keptAfter[i] !== id);
    this.groupMembers = nextMembers;
    this.install(policy, ids);
    if (reordered) {
      for (const r of keptAfter) {
        for (const id of this.groups.get('d' + r) ?? []) this.pending.filters.add(id);
        if (this.hasSelf.has(r)) for (const login of this.byLogin.keys()) for (const id of this.groups.get(`D${r}:${login}`) ?? []) this.pending.filters.add(id);
      }
    }
    // Who the added rules' selectors name.
    for (const r of fresh) {
      const rule = this.rules.get(r)!;
      for (const sel of [...rule.src, ...rule.dst.map((e) => e.sel)]) this.named(sel, affected);
    }
    for (const id of affected) {
      const st = this.nodes.get(id)!;
      const groups = this.groupsOf(st.node, st.ips);
      if (groups.join(' ') !== st.groups.join(' ')) this.regroup(st, groups);
    }
    return true;
  }

  /** Adds the nodes `sel` may name to `into` (a superset for wide selectors: placing checks). */
  private named(sel: Selector, into: Set<number>): void {
    const addAll = (ids: Iterable<number> | undefined) => {
      if (ids) for (const id of ids) into.add(id);
    };
    switch (sel.kind) {
      case 'user': addAll(this.byLogin.get(sel.login)); break;
      case 'group': for (const login of this.groupMembers.get(sel.name) ?? []) addAll(this.byLogin.get(login)); break;
      case 'tag': addAll(this.byTag.get(sel.name)); break;
      case 'self': for (const ids of this.byLogin.values()) addAll(ids); break;
      case 'addrs': for (const [id, st] of this.nodes) if (overlaps(st.ips, sel.set)) into.add(id); break;
      default: addAll(this.nodes.keys());
    }
  }

  /** A node's groups changed with the policy (its addresses did not): moves it, and marks its filter. */
  private regroup(st: NodeState, groups: string[]): void {
    const id = st.node.id;
    this.snapshot(id, st.cls);
    const before = new Set(st.groups);
    const now = new Set(groups);
    for (const g of st.groups) if (!now.has(g)) this.leaveGroup(g, id);
    st.cls.members.delete(id);
    if (!st.cls.members.size) this.dropClass(st.cls);
    for (const g of groups) if (!before.has(g)) this.join(g, id);
    // Only changed rules' groups differ: their source sets are rebuilt on demand, and every node
    // they reach is among the nodes being placed again (its filter is marked here).
    for (const g of [...st.groups, ...groups]) if ((g[0] === 's' || g[0] === 'n') && before.has(g) !== now.has(g)) this.srcCache.delete(ruleOf(g));
    st.groups = groups;
    st.cls = this.classFor(groups);
    st.cls.members.add(id);
    this.pending.moved.get(id)!.to = st.cls;
    this.pending.filters.add(id);
  }

  /** Places many nodes at once (a fresh view set): nothing is reported for them. */
  load(nodes: Iterable<LiveNode>): void {
    this.tracking = false;
    try {
      for (const n of nodes) this.upsert(n);
    } finally {
      this.tracking = true;
      this.pending = { classes: new Map(), moved: new Map(), filters: new Set() };
    }
  }

  /** Adds or replaces a node. */
  upsert(node: LiveNode): void {
    const prev = this.nodes.get(node.id);
    const addrKey = `${node.ipv4} ${node.ipv6}`;
    let parsed = this.addrs.get(addrKey);
    if (!parsed) {
      const ips = ipsOf(node);
      this.addrs.set(addrKey, (parsed = { ips, own: cidrsOf(ips) }));
    }
    const { ips } = parsed;
    const groups = this.groupsOf(node, ips);
    if (prev && sameNode(prev.node, node) && prev.groups.join(' ') === groups.join(' ')) return;
    if (prev && (prev.node.ipv4 !== node.ipv4 || prev.node.ipv6 !== node.ipv6)) this.addrs.delete(`${prev.node.ipv4} ${prev.node.ipv6}`);
    this.snapshot(node.id, prev?.cls ?? null);
    if (prev) this.leave(prev);
    const st: NodeState = { node, ips, own: parsed.own, groups, cls: null as unknown as Klass };
    this.nodes.set(node.id, st);
    if (node.login !== null) setAdd(this.byLogin, node.login, node.id);
    else for (const t of node.tags) setAdd(this.byTag, t, node.id);
    this.mineCache.delete(node.login ?? '');
    this.tailnetCache = null;
    for (const g of groups) this.join(g, node.id);
    st.cls = this.classFor(groups);
    st.cls.members.add(node.id);
    this.pending.moved.get(node.id)!.to = st.cls;
    this.pending.filters.add(node.id);
    this.sourcesChanged(node, groups);
  }

  remove(id: number): void {
    const prev = this.nodes.get(id);
    if (!prev) return;
    this.snapshot(id, prev.cls);
    this.leave(prev);
    this.nodes.delete(id);
    this.addrs.delete(`${prev.node.ipv4} ${prev.node.ipv6}`);
    this.pending.moved.get(id)!.to = null;
    this.pending.filters.delete(id);
  }

  has(id: number): boolean {
    return this.nodes.has(id);
  }

  classOf(id: number): ViewClass | undefined {
    return this.nodes.get(id)?.cls;
  }

  /** The ids a node may see, ascending, itself left out. */
  peersOf(id: number): number[] {
    const st = this.nodes.get(id);
    if (!st) return [];
    const out: number[] = [];
    for (const p of st.cls.view.keys()) if (p !== id) out.push(p);
    return out.sort((a, b) => a - b);
  }

  /** The changes since the previous call. */
  take(): ViewChanges {
    const c = this.pending;
    this.pending = { classes: new Map(), moved: new Map(), filters: new Set() };
    for (const id of c.filters) if (!this.nodes.has(id)) c.filters.delete(id);
    return c;
  }

  /** The packet filter for traffic arriving at a node (what `compile()` gives it). */
  filterOf(id: number): FilterRule[] {
    const st = this.nodes.get(id);
    if (!st) return [];
    const reached = new Set<number>();
    for (const g of st.groups) if (g[0] === 'd' || g[0] === 'D') reached.add(ruleOf(g));
    const out: FilterRule[] = [];
    for (const r of [...reached].sort((a, b) => this.order.get(a)! - this.order.get(b)!)) {
      const rule = this.rules.get(r)!;
      const src = this.srcOf(r);
      if (src !== ANY && isEmpty(src)) continue;
      if (st.groups.includes('d' + r)) {
        const entries: { ip: Cidr; ports: DstEntry['ports'][number] }[] = [];
        for (const e of rule.dst) {
          if (e.sel.kind === 'self' || !this.matches(e.sel, st.node, st.ips)) continue;
          const ips = e.sel.kind === 'addrs' ? cidrsOf(intersect(e.sel.set, st.ips)) : st.own;
          for (const ports of e.ports) for (const ip of ips) entries.push({ ip, ports });
        }
        out.push({ srcIPs: srcText(src), dstPorts: sortDstPorts(entries), protos: rule.protos });
      }
      if (this.hasSelf.has(r) && st.node.login !== null) {
        const mine = this.mineOf(st.node.login);
        const from = this.selfSources(src, mine);
        if (isEmpty(from)) continue;
        const entries: { ip: Cidr; ports: DstEntry['ports'][number] }[] = [];
        for (const e of rule.dst) if (e.sel.kind === 'self') for (const ports of e.ports) for (const ip of st.own) entries.push({ ip, ports });
        out.push({ srcIPs: srcText(from), dstPorts: sortDstPorts(entries), protos: rule.protos });
      }
    }
    return out;
  }

  // ---- membership ----

  private matches(sel: Selector, n: LiveNode, ips: AddrSet): boolean {
    switch (sel.kind) {
      case 'all':
      case 'danger-all': return true;
      case 'member': return n.login !== null;
      case 'tagged': return n.login === null;
      case 'user': return n.login === sel.login;
      case 'group': return n.login !== null && (this.groupMembers.get(sel.name)?.has(n.login) ?? false);
      case 'tag': return n.login === null && n.tags.includes(sel.name);
      case 'addrs': return overlaps(ips, sel.set);
      case 'self': return false;
    }
  }

  /** The groups a node is in, sorted: from the index, so a node costs the rules that can name it. */
  private groupsOf(n: LiveNode, ips: AddrSet): string[] {
    if (isEmpty(ips)) return [];
    const ix = this.index;
    const hits = new Set<string>(ix.always);
    const addAll = (keys: readonly string[] | undefined) => {
      if (keys) for (const k of keys) hits.add(k);
    };
    if (n.login !== null) {
      addAll(ix.member);
      addAll(ix.byLogin.get(n.login));
    } else {
      addAll(ix.tagged);
      for (const t of n.tags) addAll(ix.byTag.get(t));
    }
    for (const a of ix.addrs) if (!hits.has(a.key) && overlaps(ips, a.set)) hits.add(a.key);
    if (n.login !== null) {
      for (const r of ix.selfRules) {
        hits.add(`D${r}:${n.login}`);
        if (hits.has('s' + r)) hits.add(`S${r}:${n.login}`);
      }
    }
    return [...hits].sort();
  }

  private join(g: string, id: number): void {
    setAdd(this.groups, g, id);
    for (const c of this.watchers.get(g) ?? []) this.count(c, id, 1);
  }

  private leaveGroup(g: string, id: number): void {
    const m = this.groups.get(g);
    m?.delete(id);
    if (m && !m.size) this.groups.delete(g);
    for (const c of this.watchers.get(g) ?? []) this.count(c, id, -1);
  }

  /** Takes a node out of its groups and class (before a replace or a removal). */
  private leave(st: NodeState): void {
    const { node } = st;
    for (const g of st.groups) this.leaveGroup(g, node.id);
    st.cls.members.delete(node.id);
    if (!st.cls.members.size) this.dropClass(st.cls);
    if (node.login !== null) {
      const s = this.byLogin.get(node.login);
      s?.delete(node.id);
      if (s && !s.size) this.byLogin.delete(node.login);
    } else {
      for (const t of node.tags) {
        const s = this.byTag.get(t);
        s?.delete(node.id);
        if (s && !s.size) this.byTag.delete(t);
      }
    }
    this.mineCache.delete(node.login ?? '');
    this.tailnetCache = null;
    this.sourcesChanged(node, st.groups);
  }

  /** A node entered or left `groups`: the filters whose source sets it is part of need a rebuild. */
  private sourcesChanged(node: LiveNode, groups: string[]): void {
    if (!this.tracking) {
      this.srcCache.clear();
      return;
    }
    const rules = new Set<number>();
    for (const g of groups) if (g[0] === 's' || g[0] === 'n') rules.add(ruleOf(g));
    for (const r of this.hasAll) rules.add(r); // `*` lists every node's addresses
    for (const r of rules) {
      this.srcCache.delete(r);
      for (const id of this.groups.get('d' + r) ?? []) this.pending.filters.add(id);
    }
    // autogroup:self: the user's own addresses changed, so every self rule of theirs did.
    if (node.login !== null && this.anySelf) for (const id of this.byLogin.get(node.login) ?? []) this.pending.filters.add(id);
  }

  // ---- classes ----

  private classFor(groups: string[]): Klass {
    const linked = groups.filter((g) => partnerOf(g) !== null);
    const key = linked.join(' ');
    let c = this.classes.get(key);
    if (c) return c;
    c = { id: this.nextClassId++, key, groups: linked, members: new Set(), view: new Map() };
    this.classes.set(key, c);
    for (const g of linked) {
      const p = partnerOf(g)!;
      setAdd(this.watchers, p, c);
      for (const id of this.groups.get(p) ?? []) c.view.set(id, (c.view.get(id) ?? 0) + 1);
    }
    return c;
  }

  private dropClass(c: Klass): void {
    this.classes.delete(c.key);
    for (const g of c.groups) {
      const w = this.watchers.get(partnerOf(g)!);
      w?.delete(c);
      if (w && !w.size) this.watchers.delete(partnerOf(g)!);
    }
    this.pending.classes.delete(c);
  }

  private count(c: Klass, id: number, by: 1 | -1): void {
    const n = (c.view.get(id) ?? 0) + by;
    if (n > 0) c.view.set(id, n);
    else c.view.delete(id);
    if (!this.tracking) return;
    if (n === 1 && by === 1) this.classDelta(c, id, true);
    else if (n === 0) this.classDelta(c, id, false);
  }

  private classDelta(c: Klass, id: number, added: boolean): void {
    let d = this.pending.classes.get(c);
    if (!d) this.pending.classes.set(c, (d = { added: new Set(), removed: new Set() }));
    const [into, from] = added ? [d.added, d.removed] : [d.removed, d.added];
    if (!from.delete(id)) into.add(id);
  }

  /** Records, once per batch, what the node saw before the batch (before anything of it changes). */
  private snapshot(id: number, from: Klass | null): void {
    if (this.pending.moved.has(id)) return;
    if (!this.tracking) {
      this.pending.moved.set(id, { before: null, to: from });
      return;
    }
    let before: Set<number> | null = null;
    if (from) {
      // Its class's view now, with this batch's changes to it undone.
      before = new Set(from.view.keys());
      const d = this.pending.classes.get(from);
      if (d) {
        for (const x of d.added) before.delete(x);
        for (const x of d.removed) before.add(x);
      }
      before.delete(id);
    }
    this.pending.moved.set(id, { before, to: from });
  }

  // ---- source sets ----

  private srcOf(r: number): Resolved {
    let s = this.srcCache.get(r);
    if (s === undefined) {
      const rule = this.rules.get(r)!;
      if (rule.src.some((x) => x.kind === 'danger-all')) s = ANY;
      else {
        const sets: AddrSet[] = [];
        for (const sel of rule.src) {
          if (sel.kind === 'addrs') sets.push(sel.set);
          else if (sel.kind === 'all') sets.push(this.tailnet());
        }
        // Named selectors (users, groups, tags, autogroups) name their nodes' addresses.
        for (const id of this.groups.get('n' + r) ?? []) sets.push(this.nodes.get(id)!.ips);
        s = union(...sets);
      }
      this.srcCache.set(r, s);
    }
    return s;
  }

  /**
   * An autogroup:self rule's sources for one user: the rule's sources among the user's own
   * addresses. Once per (sources, user's addresses) pair, both immutable and replaced when they
   * change, so every device of the user shares one set and its text (per device, it was most of
   * a policy change's filter work at 10,000 nodes).
   */
  private selfSources(src: Resolved, mine: AddrSet): AddrSet {
    if (src === ANY) return mine;
    let byMine = this.selfCache.get(src);
    if (!byMine) this.selfCache.set(src, (byMine = new WeakMap()));
    let from = byMine.get(mine);
    if (!from) byMine.set(mine, (from = covers(src, mine) ? mine : intersect(src, mine)));
    return from;
  }

  private tailnet(): AddrSet {
    if (!this.tailnetCache) this.tailnetCache = union(CGNAT, ...[...this.nodes.values()].map((n) => n.ips));
    return this.tailnetCache;
  }

  private mineOf(login: string): AddrSet {
    let m = this.mineCache.get(login);
    if (!m) {
      m = union(...[...(this.byLogin.get(login) ?? [])].map((id) => this.nodes.get(id)!.ips));
      this.mineCache.set(login, m);
    }
    return m;
  }
}

function emptyIndex() {
  return {
    always: [] as string[],
    member: [] as string[],
    tagged: [] as string[],
    byLogin: new Map<string, string[]>(),
    byTag: new Map<string, string[]>(),
    addrs: [] as { key: string; set: AddrSet }[],
    selfRules: [] as number[],
  };
}

function membersOf(policy: Policy): Map<string, Set<string>> {
  return new Map([...policy.groups].map(([k, v]) => [k, new Set(v)]));
}

/** What a rule means for compilation, as text: equal keys compile alike (its line is left out). */
function ruleKey(rule: Rule, groups: ReadonlyMap<string, ReadonlySet<string>>): string {
  const sel = (s: Selector): string => {
    switch (s.kind) {
      case 'user': return `u:${s.login}`;
      case 'group': return `g:${[...(groups.get(s.name) ?? [])].sort().join(',')}`;
      case 'tag': return `t:${s.name}`;
      case 'addrs': return `a:${formatSet(s.set).join(',')}`;
      default: return s.kind;
    }
  };
  const dst = rule.dst.map((e) => `${sel(e.sel)}:${e.ports.map((p) => `${p.first}-${p.last}`).join(',')}`);
  return `${rule.src.map(sel).join(' ')}|${dst.join(' ')}|${rule.protos.join(',')}`;
}

function sameNode(a: LiveNode, b: LiveNode): boolean {
  return a.login === b.login && a.ipv4 === b.ipv4 && a.ipv6 === b.ipv6 && a.tags.join(',') === b.tags.join(',');
}

function listAdd<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

function setAdd<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s) s.add(v);
  else m.set(k, new Set([v]));
}

/**
 * PolicyViews (the mapper's incremental engine) against a from-scratch `compile()` after random
 * sequences of joins, deletes, tag and owner changes, on random policies: every node's peers and
 * packet filter, and the deltas it reports, replayed per node, end where compile() says.
 */
import { describe, expect, it } from 'vitest';
import { compile, compileReference, parsePolicy, PolicyViews, prepareNodes, type LiveNode } from '../src/index.js';

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generatePolicy(r: () => number, users: string[], tags: string[]): string {
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const some = <T>(xs: readonly T[], max: number): T[] => Array.from({ length: 1 + int(max) }, () => pick(xs));
  const groups = { 'group:g0': [...new Set(some([...users, 'ghost@example.com'], 3))], 'group:g1': [...new Set(some(users, 2))] };
  const hosts = { h0: pick(['100.64.0.3', '10.0.0.0/24', '100.64.0.0/28']), h1: pick(['10.0.1.7', '100.64.0.5']) };
  const principals = [...users, 'group:g0', 'group:g1', ...tags, '*', 'autogroup:member', 'autogroup:tagged', 'h0', 'h1', '100.64.0.0/29', 'fd7a::/124', '10.0.0.0/8'];
  const srcs = [...principals, 'autogroup:danger-all'];
  const dsts = [...principals, 'autogroup:self', 'autogroup:self'];
  const ports = ['*', '22', '80-90', '22,443'];
  const acls = Array.from({ length: int(5) }, () => ({
    action: 'accept', src: some(srcs, 3),
    dst: some(dsts, 2).map((d) => `${d}:${pick(ports)}`),
    ...(r() < 0.3 ? { proto: pick(['tcp', 'udp']) } : {}),
  }));
  const grants = Array.from({ length: int(3) }, () => ({ src: some(srcs, 2), dst: some(dsts, 2), ip: some(['*', 'tcp:22', 'udp:53', '443'], 2) }));
  return JSON.stringify({ groups, tagOwners: Object.fromEntries(tags.map((t) => [t, []])), hosts, acls, grants });
}

describe('PolicyViews matches compile() after random change sequences', () => {
  const CASES = 80;
  it(`on ${CASES} seeded policies, 40 changes each`, () => {
    let nonTrivial = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const r = prng(seed);
      const int = (n: number) => Math.floor(r() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
      const users = Array.from({ length: 1 + int(4) }, (_, i) => `u${i}@example.com`);
      const tags = ['tag:a', 'tag:b', 'tag:c'];
      const text = generatePolicy(r, users, tags);
      const policy = parsePolicy(text);
      const views = new PolicyViews(policy);
      const live = new Map<number, LiveNode>();
      /** What each node was told: the replay of the reported deltas. */
      const told = new Map<number, Set<number>>();
      let nextId = 1;
      const randomNode = (id: number): LiveNode => {
        const tagged = r() < 0.35;
        return { id, login: tagged ? null : pick(users), tags: tagged ? [...new Set([pick(tags), pick(tags)])].sort() : [], ipv4: `100.64.0.${id}`, ipv6: `fd7a::${id.toString(16)}` };
      };
      for (let step = 0; step < 40; step++) {
        const ops = 1 + int(3); // several changes per batch, as one mapper change can carry
        for (let k = 0; k < ops; k++) {
          const roll = r();
          if (roll < 0.45 || live.size < 2) {
            const n = randomNode(nextId++);
            live.set(n.id, n);
            views.upsert(n);
          } else if (roll < 0.6) {
            const id = pick([...live.keys()]);
            live.delete(id);
            views.remove(id);
          } else {
            // tag change or owner change of an existing node
            const id = pick([...live.keys()]);
            const n = { ...randomNode(id) };
            live.set(id, n);
            views.upsert(n);
          }
        }
        const changes = views.take();
        for (const [id, m] of changes.moved) {
          if (m.to === null) told.delete(id);
          else {
            expect(new Set(told.get(id) ?? []), `seed ${seed} step ${step}: "before" of node ${id}`).toEqual(m.before ?? new Set());
            told.set(id, new Set(views.peersOf(id)));
          }
        }
        replayClassDeltas(changes, told);
        // From scratch.
        const users_ = users.map((login, i) => ({ id: i + 1, name: `u${i}`, login }));
        const nodes = [...live.values()].map((n) => ({ id: n.id, name: `n${n.id}`, user: n.login, tags: [...n.tags], ipv4: n.ipv4, ipv6: n.ipv6, advertisedRoutes: [], approvedRoutes: [] }));
        const compiled = compile(policy, prepareNodes({ users: users_, nodes })).compiled;
        for (const n of live.values()) {
          const want = compiled.nodes[`n${n.id}`]!;
          const peers = want.peers.map((name) => Number(name.slice(1))).sort((a, b) => a - b);
          const ctx = `seed ${seed} step ${step} node ${n.id}\n${text}`;
          expect(views.peersOf(n.id), ctx).toEqual(peers);
          expect([...told.get(n.id)!].sort((a, b) => a - b), `${ctx}\n(replayed deltas)`).toEqual(peers);
          if (!changes.filters.has(n.id)) expect(views.filterOf(n.id), `${ctx}\n(filter changed without being reported)`).toEqual(lastFilter.get(n.id));
          expect(views.filterOf(n.id), ctx).toEqual(want.rules);
          lastFilter.set(n.id, want.rules);
          if (want.rules.length && want.peers.length) nonTrivial++;
        }
      }
      // Built at once from the same nodes (what a policy change does), reusing the parsed addresses.
      const fresh = new PolicyViews(policy, views);
      fresh.load(live.values());
      expect(fresh.take().moved.size, `seed ${seed}: load reports nothing`).toBe(0);
      for (const n of live.values()) {
        expect(fresh.peersOf(n.id), `seed ${seed} node ${n.id} (load)`).toEqual(views.peersOf(n.id));
        expect(fresh.filterOf(n.id), `seed ${seed} node ${n.id} (load)`).toEqual(views.filterOf(n.id));
      }
      lastFilter.clear();
    }
    expect(nonTrivial).toBeGreaterThan(CASES * 10);
  }, 180_000); // a budget for a loaded machine, not a timing assertion
  const lastFilter = new Map<number, unknown>();
});

describe('PolicyViews.update: a policy change in place equals a full compile', () => {
  const CASES = 120;
  it(`on ${CASES} seeded policies, 8 one-rule, group or host edits each (and whole rewrites, which fall back)`, () => {
    let placedAgain = 0;
    let total = 0;
    let fellBack = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const r = prng(1000 + seed);
      const int = (n: number) => Math.floor(r() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
      const users = Array.from({ length: 1 + int(4) }, (_, i) => `u${i}@example.com`);
      const tags = ['tag:a', 'tag:b', 'tag:c'];
      const live = new Map<number, LiveNode>();
      for (let id = 1; id <= 6 + int(20); id++) {
        const tagged = r() < 0.35;
        live.set(id, { id, login: tagged ? null : pick(users), tags: tagged ? [...new Set([pick(tags), pick(tags)])].sort() : [], ipv4: `100.64.0.${id}`, ipv6: `fd7a::${id.toString(16)}` });
      }
      const users_ = users.map((login, i) => ({ id: i + 1, name: `u${i}`, login }));
      const prepared = prepareNodes({ users: users_, nodes: [...live.values()].map((n) => ({ id: n.id, name: `n${n.id}`, user: n.login, tags: [...n.tags], ipv4: n.ipv4, ipv6: n.ipv6, advertisedRoutes: [], approvedRoutes: [] })) });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      let doc: any = JSON.parse(generatePolicy(r, users, tags));
      let views = new PolicyViews(parsePolicy(JSON.stringify(doc)));
      views.load(live.values());
      const told = new Map<number, Set<number>>([...live.keys()].map((id) => [id, new Set(views.peersOf(id))]));
      let filters = new Map([...live.keys()].map((id) => [id, JSON.stringify(views.filterOf(id))]));
      for (let step = 0; step < 8; step++) {
        const before = JSON.stringify(doc);
        const other: any = JSON.parse(generatePolicy(r, users, tags));
        const roll = r();
        if (roll < 0.25) doc.acls.splice(int(doc.acls.length + 1), 0, ...(other.acls.length ? [other.acls[0]] : other.grants.slice(0, 1).map((g: any) => ({ action: 'accept', src: g.src, dst: g.dst.map((d: string) => `${d}:*`) }))));
        else if (roll < 0.45 && doc.acls.length) doc.acls.splice(int(doc.acls.length), 1);
        else if (roll < 0.6 && doc.acls.length) doc.acls[int(doc.acls.length)].dst = other.acls[0]?.dst ?? ['*:22'];
        else if (roll < 0.7) doc.groups['group:g0'] = other.groups['group:g1'];
        else if (roll < 0.8) doc.hosts.h0 = pick(['100.64.0.3', '10.0.0.0/24', '100.64.0.0/28', '100.64.0.9']);
        else if (roll < 0.9 && doc.acls.length > 1) doc.acls.push(doc.acls.shift()); // same rules, another order
        else doc = other; // a whole rewrite
        const text = JSON.stringify(doc);
        const policy = parsePolicy(text);
        const ctx = `seed ${seed} step ${step}\nbefore: ${before}\nafter: ${text}`;
        if (!views.update(policy)) {
          fellBack++;
          const fresh = new PolicyViews(policy, views);
          fresh.load(live.values());
          views = fresh;
          for (const id of live.keys()) told.set(id, new Set(views.peersOf(id)));
          filters = new Map([...live.keys()].map((id) => [id, JSON.stringify(views.filterOf(id))]));
        } else {
          const c = views.take();
          placedAgain += c.moved.size;
          total += live.size;
          for (const [id, m] of c.moved) {
            expect(m.to, ctx).not.toBeNull();
            expect(new Set(told.get(id)), `${ctx}\n"before" of node ${id}`).toEqual(m.before ?? new Set());
            told.set(id, new Set(views.peersOf(id)));
          }
          replayClassDeltas(c, told);
          for (const id of live.keys()) {
            const f = JSON.stringify(views.filterOf(id));
            if (!c.filters.has(id)) expect(f, `${ctx}\nnode ${id}: filter changed without being reported`).toBe(filters.get(id));
            filters.set(id, f);
          }
        }
        const want = compile(policy, prepared).compiled;
        expect(compileReference(policy, prepared), ctx).toEqual(want);
        for (const n of live.values()) {
          const w = want.nodes[`n${n.id}`]!;
          const peers = w.peers.map((name) => Number(name.slice(1))).sort((a, b) => a - b);
          expect(views.peersOf(n.id), `${ctx}\nnode ${n.id}`).toEqual(peers);
          expect([...told.get(n.id)!].sort((a, b) => a - b), `${ctx}\nnode ${n.id} (replayed deltas)`).toEqual(peers);
          expect(views.filterOf(n.id), `${ctx}\nnode ${n.id} filter`).toEqual(w.rules);
        }
      }
    }
    // The in-place path ran, fell back for some rewrites, and placed again only part of the nodes.
    expect(fellBack).toBeGreaterThan(0);
    expect(total).toBeGreaterThan(CASES * 20);
    expect(placedAgain).toBeLessThan(total);
  }, 180_000); // a budget for a loaded machine, not a timing assertion
});

/** What each member of a class that did not move was told: its class's removals and additions (never itself). */
function replayClassDeltas(c: ReturnType<PolicyViews['take']>, told: Map<number, Set<number>>): void {
  for (const [cls, d] of c.classes) {
    for (const id of cls.members) {
      if (c.moved.has(id)) continue;
      const t = told.get(id)!;
      for (const x of d.removed) t.delete(x);
      for (const x of d.added) if (x !== id) t.add(x);
    }
  }
}

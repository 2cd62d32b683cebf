/**
 * `explain` against the naive reference: on random policies and node sets, its verdict for a
 * packet is what the reference's compiled filters say on the node receiving it, the rule it names
 * allows the packet on its own, and no earlier rule does. Plus the readable cases: what SRC and
 * DST may name, the default, and questions refused with the part that is wrong.
 */
import { describe, expect, it } from 'vitest';
import { parseAddrSet, containsAddr, parseAddr, type AddrSet } from '../src/addr.js';
import { compileReference, explain, ExplainRefused, parseNodes, parsePolicy, type Compiled, type Policy, type Prepared } from '../src/index.js';
import { generate, prng } from './random-inputs.js';

const setOf = (text: string): AddrSet => (parseAddrSet(text) as { set: AddrSet }).set;

/**
 * What the reference's filters say of one packet: some node receiving `b` has a rule admitting it.
 * `port` null: a protocol without ports, admitted only by a rule open on every port (Tailscale's filter).
 */
function referenceAllows(compiled: Compiled, prepared: Prepared, a: string, b: string, proto: number, port: number | null): boolean {
  const pa = parseAddr(a)!;
  const pb = parseAddr(b)!;
  const inText = (text: string, x: { family: 4 | 6; value: bigint }) => text === '*' || containsAddr(setOf(text), x.family, x.value);
  const receivers = prepared.nodes.filter((n) => containsAddr(n.reach, pb.family, pb.value));
  return receivers.some((n) => compiled.nodes[n.name]!.rules.some((r) =>
    r.protos.includes(proto) &&
    r.srcIPs.some((s) => inText(s, pa)) &&
    r.dstPorts.some((d) => {
      const [first, last] = d.ports.split('-').map(Number) as [number, number];
      const open = port === null ? first === 0 && last === 65535 : first <= port && port <= last;
      return open && inText(d.ip, pb);
    })));
}

const only = (policy: Policy, keep: (line: number, col: number) => boolean): Policy => ({ ...policy, rules: policy.rules.filter((r) => keep(r.pos.line, r.pos.col)) });

describe('explain matches the naive reference', () => {
  const CASES = 150;
  it(`on ${CASES} random policies and node sets, 40 packets each (seeds 1..${CASES})`, () => {
    let allowedSeen = 0;
    let deniedSeen = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const g = generate(seed);
      const policy = parsePolicy(g.policy);
      const prepared = parseNodes(g.nodes);
      const full = compileReference(policy, prepared);
      const r = prng(seed * 7919);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
      const nodeIps = prepared.nodes.flatMap((n) => [n.input.ipv4, n.input.ipv6].filter((x): x is string => x !== null));
      const srcs = [...nodeIps, '10.0.0.5', '100.64.0.200', '192.0.2.1', 'fd7a::ff'];
      const dsts = [...nodeIps, '10.0.0.5', '10.0.1.7', '192.168.0.9', '100.64.0.200'];
      for (let i = 0; i < 40; i++) {
        const a = pick(srcs);
        const b = pick(dsts);
        if (parseAddr(a)!.family !== parseAddr(b)!.family) continue;
        const [protoName, proto] = pick([['tcp', 6], ['udp', 17], ['icmp', parseAddr(a)!.family === 4 ? 1 : 58]] as const);
        const port = protoName === 'icmp' ? undefined : pick([0, 22, 53, 80, 85, 443, 1500, 65535]);
        const what = `seed ${seed}: ${a} -> ${b} ${protoName}/${port ?? '-'}\n${g.policy}\n${g.nodes}`;
        const e = explain(policy, prepared, { src: a, dst: b, proto: protoName, ...(port !== undefined ? { port } : {}) });
        expect(e.pairs, what).toHaveLength(1);
        const want = referenceAllows(full, prepared, a, b, proto, port ?? null);
        expect(e.allowed, what).toBe(want);
        if (!want) {
          deniedSeen++;
          expect(e.rule, what).toBeNull();
          continue;
        }
        allowedSeen++;
        const rule = e.rule!;
        for (const pos of e.pairs[0]!.rules) {
          expect(referenceAllows(compileReference(only(policy, (l, c) => l === pos.line && c === pos.col), prepared), prepared, a, b, proto, port ?? null), `${what}\nrule at ${pos.line}:${pos.col} alone`).toBe(true);
        }
        const before = only(policy, (l, c) => l < rule.line || (l === rule.line && c < rule.col));
        expect(referenceAllows(compileReference(before, prepared), prepared, a, b, proto, port ?? null), `${what}\nrules before ${rule.line}:${rule.col}`).toBe(false);
      }
    }
    // The generator must produce both answers often.
    expect(allowedSeen).toBeGreaterThan(200);
    expect(deniedSeen).toBeGreaterThan(200);
  }, 120_000); // a budget for a loaded machine, not a timing assertion

  it('with no port, the ports listed are exactly those a port question allows', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const g = generate(seed);
      const policy = parsePolicy(g.policy);
      const prepared = parseNodes(g.nodes);
      const ips = prepared.nodes.map((n) => n.input.ipv4!).filter(Boolean);
      if (ips.length < 2) continue;
      const [a, b] = [ips[0]!, ips[ips.length - 1]!];
      const any = explain(policy, prepared, { src: a, dst: b, proto: 'tcp' }).pairs[0]!;
      const inList = (port: number) => any.ports!.some((t) => t === '*' || (t.includes('-') ? Number(t.split('-')[0]) <= port && port <= Number(t.split('-')[1]) : Number(t) === port));
      for (const port of [0, 1, 21, 22, 23, 80, 85, 90, 91, 443, 1000, 1500, 2000, 2001, 65535]) {
        expect(explain(policy, prepared, { src: a, dst: b, proto: 'tcp', port }).allowed, `seed ${seed} port ${port}: ${any.ports}`).toBe(inList(port));
      }
    }
  });
});

describe('explain: what SRC and DST name, and the answer', () => {
  const nodes = parseNodes(JSON.stringify({
    users: [{ id: 1, name: 'alice', login: 'alice@' }, { id: 2, name: 'bob', login: 'bob@example.com' }],
    nodes: [
      { id: 1, name: 'laptop', user: 'alice@', tags: [], ipv4: '100.64.0.1', ipv6: 'fd7a::1', advertisedRoutes: [], approvedRoutes: [] },
      { id: 2, name: 'alice', user: 'alice@', tags: [], ipv4: '100.64.0.2', ipv6: null, advertisedRoutes: [], approvedRoutes: [] },
      { id: 3, name: 'web', user: null, tags: ['tag:web'], ipv4: '100.64.0.3', ipv6: 'fd7a::3', advertisedRoutes: [], approvedRoutes: [] },
      { id: 4, name: 'bobs-pc', user: 'bob@example.com', tags: [], ipv4: '100.64.0.4', ipv6: null, advertisedRoutes: [], approvedRoutes: [] },
    ],
  }));
  const policy = parsePolicy(`{
  "tagOwners": { "tag:web": [] },
  "acls": [
    // alice's devices reach the web servers on https
    { "action": "accept", "src": ["alice@"], "dst": ["tag:web:443"] },
    { "action": "accept", "src": ["bob@example.com"], "dst": ["tag:web:22,443"] },
    { "action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"] },
  ],
}`);

  it('names the first rule that allows, with its line, and every rule that also does', () => {
    const e = explain(policy, nodes, { src: 'bobs-pc', dst: 'web', port: 443 });
    expect(e).toMatchObject({ allowed: true, default: false, port: 443, rule: { line: 6, col: 5 } });
    expect(e.src).toEqual({ input: 'bobs-pc', kind: 'node', name: 'bobs-pc', addresses: ['100.64.0.4'] });
    expect(e.dst.addresses).toEqual(['100.64.0.3', 'fd7a::3']);
    expect(e.pairs).toEqual([{ src: '100.64.0.4', dst: '100.64.0.3', proto: 6, allowed: true, rules: [{ line: 6, col: 5 }] }]);
    expect(explain(policy, nodes, { src: 'bobs-pc', dst: 'web', port: 80 })).toMatchObject({ allowed: false, rule: null });
  });

  it('a user stands for their untagged nodes; every pair of a family must be allowed', () => {
    const e = explain(policy, nodes, { src: 'user:alice', dst: 'tag:web', port: 443 });
    expect(e.src).toMatchObject({ kind: 'user', name: 'alice@', addresses: ['100.64.0.1', '100.64.0.2', 'fd7a::1'] });
    expect(e.pairs.map((p) => `${p.src}>${p.dst}`)).toEqual(['100.64.0.1>100.64.0.3', '100.64.0.2>100.64.0.3', 'fd7a::1>fd7a::3']);
    expect(e).toMatchObject({ allowed: true, rule: { line: 5 } });
    // Port 22 is bob's, not alice's.
    expect(explain(policy, nodes, { src: 'alice@', dst: 'web', port: 22 }).allowed).toBe(false);
  });

  it('a bare name is a node first, then a user (node: and user: choose)', () => {
    expect(explain(policy, nodes, { src: 'alice', dst: 'web', port: 443 }).src).toMatchObject({ kind: 'node', name: 'alice', addresses: ['100.64.0.2'] });
    expect(explain(policy, nodes, { src: 'user:alice', dst: 'web', port: 443 }).src.kind).toBe('user');
    expect(explain(policy, nodes, { src: 'bob', dst: 'web', port: 443 }).src).toMatchObject({ kind: 'user', name: 'bob@example.com' });
  });

  it('autogroup:self lets a user reach their own devices and nothing else', () => {
    expect(explain(policy, nodes, { src: 'laptop', dst: 'alice', port: 8080 })).toMatchObject({ allowed: true, rule: { line: 7 } });
    expect(explain(policy, nodes, { src: 'laptop', dst: 'bobs-pc', port: 8080 }).allowed).toBe(false);
  });

  it('without a port it lists the ports allowed; icmp checks ICMPv4 and ICMPv6 by family', () => {
    const e = explain(policy, nodes, { src: 'bobs-pc', dst: 'web' });
    expect(e).toMatchObject({ allowed: true, port: null });
    expect(e.pairs[0]!.ports).toEqual(['22', '443']);
    const icmp = explain(policy, nodes, { src: 'laptop', dst: 'alice', proto: 'icmp' });
    expect(icmp.pairs.map((p) => p.proto)).toEqual([1]);
    expect(icmp.pairs[0]!.ports).toBeUndefined();
  });

  it('an address no node receives is denied with a note saying so', () => {
    const e = explain(policy, nodes, { src: '100.64.0.4', dst: '100.64.9.9', port: 443 });
    expect(e.allowed).toBe(false);
    expect(e.pairs[0]!.note).toContain('no node has 100.64.9.9');
  });

  it('with no policy stored, everything is allowed by the default and no rule is named', () => {
    const e = explain(null, nodes, { src: 'laptop', dst: 'bobs-pc', port: 5432 });
    expect(e).toMatchObject({ allowed: true, default: true, rule: null });
    expect(e.pairs.every((p) => p.allowed && p.rules.length === 0)).toBe(true);
  });

  it('refuses questions it cannot answer, naming the part that is wrong', () => {
    const refused = (q: Parameters<typeof explain>[2]) => {
      try {
        explain(policy, nodes, q);
      } catch (e) {
        if (e instanceof ExplainRefused) return { field: e.field, message: e.message };
        throw e;
      }
      throw new Error('not refused');
    };
    expect(refused({ src: 'nobody', dst: 'web' })).toMatchObject({ field: 'src', message: expect.stringContaining('"nobody" is not an IP address, a node, a user or a tag') });
    // Input is quoted with its line breaks escaped: a refusal is one line (the REST fuzz found this).
    expect(refused({ src: 'no\nbody', dst: 'web' }).message).toContain('"no\\nbody" is not an IP address');
    expect(refused({ src: 'no\nbody', dst: 'web' }).message).not.toContain('\n');
    expect(refused({ src: 'laptop', dst: 'tag:db' })).toMatchObject({ field: 'dst', message: 'no node carries tag:db' });
    expect(refused({ src: 'laptop', dst: 'web', proto: 'bogus' })).toMatchObject({ field: 'proto' });
    expect(refused({ src: 'laptop', dst: 'web', proto: 'icmp', port: 22 })).toMatchObject({ field: 'port', message: expect.stringContaining('no ports') });
    expect(refused({ src: 'laptop', dst: 'web', port: 70000 })).toMatchObject({ field: 'port' });
    expect(refused({ src: '100.64.0.2', dst: 'fd7a::3' })).toMatchObject({ field: 'dst', message: expect.stringContaining('share no IP family') });
  });
});

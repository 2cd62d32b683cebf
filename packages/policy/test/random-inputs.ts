/**
 * Seeded random policies and node sets for the property tests (engine vs reference, explain vs
 * reference). Same seed, same case.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `minNodes`/`maxNodes` widen the fleet (past 64 nodes the engine takes its large-set paths). */
export function generate(seed: number, size: { minNodes: number; maxNodes: number } = { minNodes: 0, maxNodes: 13 }) {
  const r = prng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const some = <T>(xs: readonly T[], max: number): T[] => Array.from({ length: 1 + int(max) }, () => pick(xs));
  const users = Array.from({ length: 1 + int(4) }, (_, i) => `u${i}@example.com`);
  const tags = ['tag:a', 'tag:b', 'tag:c'];
  const used = new Set<number>();
  const spread = size.maxNodes <= 13 ? 40 : size.maxNodes * 4;
  const nodes = Array.from({ length: size.minNodes + int(size.maxNodes - size.minNodes + 1) }, (_, i) => {
    let k = 1 + int(20);
    while (used.has(k)) k = 1 + int(spread);
    used.add(k);
    const tagged = r() < 0.35;
    const router = r() < 0.2;
    const routes = router ? [pick(['10.0.0.0/24', '10.0.1.0/24', '10.0.0.0/16', '192.168.0.0/24'])] : [];
    return {
      id: i + 1, name: `n${i}`, user: tagged ? null : pick(users), tags: tagged ? [...new Set(some(tags, 2))] : [],
      ipv4: `100.64.${k >> 8}.${k & 255}`, ipv6: r() < 0.8 ? `fd7a::${k.toString(16)}` : null, advertisedRoutes: routes, approvedRoutes: r() < 0.8 ? routes : [],
    };
  });
  const groups = { 'group:g0': [...new Set(some([...users, 'ghost@example.com'], 3))], 'group:g1': [...new Set(some(users, 2))] };
  const anyNode = nodes.length ? pick(nodes).ipv4 : '100.64.0.1';
  const hosts = { h0: pick([anyNode, '10.0.0.0/24', '100.64.0.0/28']), h1: pick(['10.0.1.7', anyNode]) };
  const ipsets = { 'ipset:s0': ['10.0.0.0/16', 'remove 10.0.0.128/25', 'h1'], 'ipset:s1': ['ipset:s0', pick(['100.64.0.1-100.64.0.9', anyNode])] };
  const principals = [...users, 'group:g0', 'group:g1', ...tags, '*', 'autogroup:member', 'autogroup:tagged', 'h0', 'h1', 'ipset:s0', 'ipset:s1', anyNode, '100.64.0.0/29', 'fd7a::/120', '10.0.0.0/8'];
  const srcs = [...principals, 'autogroup:danger-all'];
  const dsts = [...principals, 'autogroup:self', 'autogroup:self'];
  const ports = ['*', '22', '80-90', '22,443', '0-1024'];
  const acls = Array.from({ length: int(5) }, () => ({
    action: 'accept', src: some(srcs, 3),
    dst: some(dsts, 3).map((d) => `${d.includes(':') && !d.includes('/') && /^[0-9a-f:]+$/.test(d) ? `[${d}]` : d}:${pick(ports)}`),
    ...(r() < 0.3 ? { proto: pick(['tcp', 'udp', '6']) } : {}),
  }));
  const grants = Array.from({ length: int(3) }, () => ({ src: some(srcs, 2), dst: some(dsts, 2), ip: some(['*', 'tcp:22', 'udp:53', 'icmp:*', '443', 'tcp:1000-2000'], 2) }));
  const policy = { groups, tagOwners: Object.fromEntries(tags.map((t) => [t, []])), hosts, ipsets, acls, grants };
  return { policy: JSON.stringify(policy, null, 1), nodes: JSON.stringify({ users: users.map((login, i) => ({ id: i + 1, name: `u${i}`, login })), nodes }) };
}

/** Seeded policy-benchmark inputs (see bench/policy.ts for what they hold). */
export interface Scale { nodes: number; users: number; groups: number; tags: number; rules: number }

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

export function inputs(s: Scale, seed = 42): { policy: string; nodes: string } {
  const r = prng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const users = Array.from({ length: s.users }, (_, i) => ({ id: i + 1, name: `u${i}`, login: `u${i}@example.com` }));
  const tags = Array.from({ length: s.tags }, (_, i) => `tag:t${i}`);
  const groups: Record<string, string[]> = {};
  for (let g = 0; g < s.groups; g++) groups[`group:g${g}`] = [];
  users.forEach((u, i) => {
    groups[`group:g${i % s.groups}`]!.push(u.login);
    if (r() < 0.3) groups[`group:g${int(s.groups)}`]!.push(u.login);
  });
  for (const g of Object.keys(groups)) groups[g] = [...new Set(groups[g])];
  const nodes = Array.from({ length: s.nodes }, (_, i) => {
    const tagged = r() < 0.3;
    const v4 = 0x64400001 + i;
    return {
      id: i + 1,
      name: `node-${String(i).padStart(5, '0')}`,
      user: tagged ? null : users[int(users.length)]!.login,
      tags: tagged ? [...new Set([tags[int(tags.length)]!, ...(r() < 0.3 ? [tags[int(tags.length)]!] : [])])] : [],
      ipv4: [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join('.'),
      ipv6: `fd12:3456:789a::${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`,
      advertisedRoutes: i % 500 === 0 ? [`10.${(i / 500) & 255}.0.0/16`] : [],
      approvedRoutes: i % 500 === 0 ? [`10.${(i / 500) & 255}.0.0/16`] : [],
    };
  });
  const ports = ['22', '80,443', '5432', '8000-8999', '*'];
  const acls: unknown[] = [];
  const grants: unknown[] = [];
  for (let k = 0; k < s.rules; k++) {
    const kind = r();
    const group = `group:g${int(s.groups)}`;
    const tag = tags[int(tags.length)]!;
    if (k === 0) acls.push({ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] });
    else if (kind < 0.55) acls.push({ action: 'accept', src: [group], dst: [`${tag}:${ports[int(ports.length)]}`, `${tags[int(tags.length)]}:22`], ...(r() < 0.5 ? { proto: 'tcp' } : {}) });
    else if (kind < 0.85) acls.push({ action: 'accept', src: [tags[int(tags.length)]!], dst: [`${tag}:${ports[int(ports.length)]}`] });
    else if (kind < 0.95) grants.push({ src: [group, tags[int(tags.length)]!], dst: [tag], ip: ['tcp:443', 'udp:53'] });
    else acls.push({ action: 'accept', src: [group], dst: [`10.${int(20)}.0.0/16:*`] });
  }
  const policy = { groups, tagOwners: Object.fromEntries(tags.map((t) => [t, ['group:g0']])), acls, grants };
  return { policy: JSON.stringify(policy, null, 1), nodes: JSON.stringify({ users, nodes }) };
}


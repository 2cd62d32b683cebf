/**
 * Weft against the packet filters Tailscale's own control plane sent, one case per file in
 * test/tailscale/ (each names its source: Headscale's compatibility suite, which recorded what
 * Tailscale SaaS sent each node of a five-node tailnet for one ACL). The policy is loaded
 * unchanged, and the filters are compared as filters, not as text: for every packet a node can
 * receive (from any tailnet node's address to any of the receiving node's own addresses, on TCP,
 * UDP, ICMP and ICMPv6, at every port that is a rule boundary), Weft's rules allow it exactly when
 * Tailscale's do. Text differs by design (Weft writes 100.64.0.1, Tailscale 100.64.0.1/32; Weft
 * lists a node's own addresses where Tailscale writes `*` or every tagged node's).
 *
 * Two differences for sources that are no node's address are pinned as tests at the end: what
 * `*` means (Weft: 100.64.0.0/10 and every node's address and approved route; Tailscale: the
 * CGNAT range without 100.115.92.0/23 and all of fd7a:115c:a1e0::/48).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containsAddr, parseAddr, parseAddrSet, type AddrSet } from '../src/addr.js';
import { compile, parseNodes, parsePolicy, PolicyRejected, type FilterRule } from '../src/index.js';

const DIR = join(import.meta.dirname, 'tailscale');

interface TsRule { SrcIPs: string[]; DstPorts: { IP: string; Ports: { First: number; Last: number } }[]; IPProto?: number[] }
interface Case { source: { repository: string; path: string; case: string }; acl: unknown; tailscale: Record<string, TsRule[]> }

// Headscale's suite: one user, one user-owned node and four tagged ones, with its base policy.
const NODES = {
  users: [{ id: 1, name: 'kratail2tid', login: 'kratail2tid@' }],
  nodes: [
    { id: 1, name: 'user1', user: 'kratail2tid@', tags: [], ipv4: '100.90.199.68', ipv6: 'fd7a:115c:a1e0::2d01:c747' },
    { id: 2, name: 'tagged-server', user: null, tags: ['tag:server'], ipv4: '100.108.74.26', ipv6: 'fd7a:115c:a1e0::b901:4a87' },
    { id: 3, name: 'tagged-client', user: null, tags: ['tag:client'], ipv4: '100.80.238.75', ipv6: 'fd7a:115c:a1e0::7901:ee86' },
    { id: 4, name: 'tagged-db', user: null, tags: ['tag:database'], ipv4: '100.74.60.128', ipv6: 'fd7a:115c:a1e0::2f01:3c9c' },
    { id: 5, name: 'tagged-web', user: null, tags: ['tag:web'], ipv4: '100.94.92.91', ipv6: 'fd7a:115c:a1e0::ef01:5c81' },
  ],
};
const policyWith = (acl: unknown) => JSON.stringify({
  groups: { 'group:admins': ['kratail2tid@'], 'group:developers': ['kratail2tid@'], 'group:empty': [] },
  tagOwners: { 'tag:server': ['kratail2tid@'], 'tag:client': ['kratail2tid@'], 'tag:database': ['kratail2tid@'], 'tag:web': ['kratail2tid@'] },
  hosts: { webserver: '100.108.74.26', database: '100.74.60.128', internal: '10.0.0.0/8', subnet24: '192.168.1.0/24' },
  acls: [acl],
});

/** One filter rule in a form both sides share: sources and destinations as address sets. */
interface Norm { src: AddrSet | '*'; dst: { ip: AddrSet | '*'; first: number; last: number }[]; protos: number[] }
const set = (text: string): AddrSet | '*' => {
  if (text === '*') return '*';
  const p = parseAddrSet(text);
  if ('error' in p) throw new Error(p.error);
  return p.set;
};
const union = (texts: string[]): (AddrSet | '*')[] => texts.map(set);
const fromTailscale = (r: TsRule): Norm[] => union(r.SrcIPs).map((src) => ({ src, dst: r.DstPorts.map((d) => ({ ip: set(d.IP), first: d.Ports.First, last: d.Ports.Last })), protos: r.IPProto ?? [6, 17, 1, 58] }));
const fromWeft = (r: FilterRule): Norm[] => union(r.srcIPs).map((src) => ({
  src,
  dst: r.dstPorts.map((d) => {
    const [first, last] = d.ports.split('-').map(Number) as [number, number];
    return { ip: set(d.ip), first, last };
  }),
  protos: r.protos,
}));

const has = (s: AddrSet | '*', a: { family: 4 | 6; value: bigint }) => s === '*' || containsAddr(s, a.family, a.value);
const ICMP = new Set([1, 58]);
/** Tailscale's filter semantics: ICMP is matched on addresses alone; TCP and UDP on the port too. */
function allows(rules: Norm[], src: string, dst: string, proto: number, port: number): boolean {
  const s = parseAddr(src)!;
  const d = parseAddr(dst)!;
  return rules.some((r) => r.protos.includes(proto) && has(r.src, s) && r.dst.some((x) => has(x.ip, d) && (ICMP.has(proto) || (x.first <= port && port <= x.last))));
}

/** Every node's address, and addresses that are no node's but that both sides' `*` and the cases' CIDRs treat alike. */
const SOURCES = [...NODES.nodes.flatMap((n) => [n.ipv4, n.ipv6]), '100.64.0.1', '100.64.255.254', '100.65.0.1', '100.127.255.254', '10.1.2.3', '192.168.1.5', '8.8.8.8', '2001:db8::1'];
const PORTS = [0, 1, 21, 22, 23, 79, 80, 81, 442, 443, 444, 5431, 5432, 5433, 65535];
const PROTOS = [1, 6, 17, 58];

function disagreements(tailscale: Norm[], weft: Norm[], receiver: (typeof NODES.nodes)[number], sources: string[]): string[] {
  const out: string[] = [];
  for (const src of sources) {
    for (const dst of [receiver.ipv4, receiver.ipv6]) {
      if (src.includes(':') !== dst.includes(':')) continue; // a packet is one family
      for (const proto of PROTOS) {
        for (const port of ICMP.has(proto) ? [0] : PORTS) {
          const t = allows(tailscale, src, dst, proto, port);
          if (t !== allows(weft, src, dst, proto, port)) out.push(`${src} -> ${dst} proto ${proto} port ${port}: Tailscale ${t ? 'allows' : 'drops'}, Weft ${t ? 'drops' : 'allows'}`);
        }
      }
    }
  }
  return out;
}

const cases = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const load = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Case;
const compiled = (acl: unknown) => compile(parsePolicy(policyWith(acl)), parseNodes(JSON.stringify(NODES))).compiled;

describe('Tailscale equivalence: the packet filters Tailscale SaaS sent, packet by packet', () => {
  it('has the captured cases, each naming where it came from', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
    for (const f of cases) expect(load(f).source, f).toMatchObject({ repository: 'juanfont/headscale', path: 'hscontrol/policy/v2/tailscale_compat_test.go', case: f.replace(/\.json$/, '') });
  });

  for (const f of cases) {
    it(f.replace(/\.json$/, ''), () => {
      const c = load(f);
      const weft = compiled(c.acl);
      for (const node of NODES.nodes) {
        const t = (c.tailscale[node.name] ?? []).flatMap(fromTailscale);
        const w = weft.nodes[node.name]!.rules.flatMap(fromWeft);
        expect(disagreements(t, w, node, SOURCES), `${node.name}`).toEqual([]);
        // A node Tailscale sends no rules gets none from Weft either.
        if (!c.tailscale[node.name]?.length) expect(weft.nodes[node.name]!.rules, node.name).toEqual([]);
      }
    });
  }

  it('the sources that differ are no node\'s: Weft\'s "*" is 100.64.0.0/10 and the nodes\' own addresses, Tailscale\'s leaves out 100.115.92.0/23 and takes all of fd7a:115c:a1e0::/48', () => {
    const c = load('allow_all_wildcard.json');
    const weft = compiled(c.acl);
    const node = NODES.nodes[0]!;
    const t = c.tailscale[node.name]!.flatMap(fromTailscale);
    const w = weft.nodes[node.name]!.rules.flatMap(fromWeft);
    // 100.115.92.0/23 (ChromeOS's VM range, which Tailscale never gives a node): Weft accepts it.
    expect(allows(t, '100.115.92.7', node.ipv4, 6, 22)).toBe(false);
    expect(allows(w, '100.115.92.7', node.ipv4, 6, 22)).toBe(true);
    // An address in Tailscale's ULA /48 that is no node's: Tailscale accepts it, Weft (its IPv6 prefix is per deployment) does not.
    expect(allows(t, 'fd7a:115c:a1e0::1', node.ipv6, 6, 22)).toBe(true);
    expect(allows(w, 'fd7a:115c:a1e0::1', node.ipv6, 6, 22)).toBe(false);
    // Anything else in 100.64.0.0/10, and outside it: the same.
    for (const [src, want] of [['100.64.0.1', true], ['100.127.255.254', true], ['10.1.2.3', false], ['192.168.1.5', false]] as const) {
      expect(allows(t, src, node.ipv4, 6, 22), src).toBe(want);
      expect(allows(w, src, node.ipv4, 6, 22), src).toBe(want);
    }
  });

  it('autogroup:internet (exit nodes; Tailscale sends no packet filter for it) is rejected by name, not silently ignored', () => {
    const err = (() => {
      try {
        parsePolicy(policyWith({ action: 'accept', src: ['*'], dst: ['autogroup:internet:*'] }));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PolicyRejected);
    expect((err as PolicyRejected).errors.map((e) => e.message)).toEqual(['autogroup:internet is a Tailscale autogroup Weft does not support yet']);
  });

  for (const [feature, value] of [['ssh', []], ['nodeAttrs', []], ['postures', {}], ['derpMap', {}], ['sshTests', []], ['defaultSrcPosture', []]] as const) {
    it(`a policy with "${feature}" is rejected naming it`, () => {
      const text = JSON.stringify({ ...JSON.parse(policyWith({ action: 'accept', src: ['*'], dst: ['*:*'] })), [feature]: value });
      let err: unknown;
      try {
        parsePolicy(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PolicyRejected);
      expect((err as PolicyRejected).errors.map((e) => e.message).join('\n')).toContain(`"${feature}" is a Tailscale policy feature Weft does not support yet`);
    });
  }
});

import { describe, expect, it } from 'vitest';
import { blockingRules, divertingRule, runChecks, type DoctorFacts } from '../../src/doctor/checks.js';
import { gather } from '../../src/doctor/gather.js';
import type { Status } from '../../src/status.js';

const KEY_SELF = `nodekey:${'a'.repeat(64)}`;
const KEY_B = `nodekey:${'b'.repeat(64)}`;

function facts(over: Partial<DoctorFacts> = {}): DoctorFacts {
  const status = {
    version: 1, state: 'running', online: true, server: 'http://s', controlChannel: { scheme: 'http', caFile: null, warning: null },
    self: { id: 1, name: 'a', user: 'u', ipv4: '100.64.0.1', ipv6: 'fd7a::1', nodeKey: KEY_SELF, machineKey: null, expiresAt: null },
    interface: { name: 'weft0', backend: 'userspace', up: true, listenPort: 41641, mtu: 1280, mtuMode: 'adaptive' }, login: null, lastError: null,
    firewall: { state: 'off', rules: 0, skippedRules: [], error: null },
    peers: [{ id: 2, name: 'b', user: 'u', ipv4: '100.64.0.2', ipv6: 'fd7a::2', nodeKey: KEY_B, online: true, path: 'direct', endpoint: '192.0.2.2:41641', lastHandshake: null, handshakeAgeSeconds: 5, rxBytes: 1, txBytes: 1, pathMtu: 1420 }],
    skippedPeers: [],
  } as unknown as Status;
  return {
    status, localNodeKey: KEY_SELF, wg: { publicKey: KEY_SELF, peers: [{ publicKey: KEY_B, allowedIps: ['100.64.0.2/32', 'fd7a::2/128'] }] }, wgError: null,
    netmapAllowedIps: { [KEY_B]: ['100.64.0.2/32', 'fd7a::2/128'] },
    routes: { '100.64.0.2': { dev: 'weft0', table: null, error: null }, 'fd7a::2': { dev: 'weft0', table: null, error: null } },
    rules: [{ priority: 0, table: 'local', family: 4 }, { priority: 32766, table: 'main', family: 4 }, { priority: 32767, table: 'default', family: 4 }],
    nft: { nftables: [{ metainfo: {} }] }, nftError: null, listenPort: 41641, forwarding: { v4: false, v6: false },
    clockSkewS: 1, clockError: null, stalePeers: [], ...over,
  };
}
const byId = (f: DoctorFacts) => Object.fromEntries(runChecks(f).checks.map((c) => [c.id, c]));

describe('weft doctor checks', () => {
  it('a healthy node: every check PASS, the path MTU too when every active path carries the interface MTU', () => {
    const r = runChecks(facts());
    expect(r.ok).toBe(true);
    expect(r.checks.filter((c) => c.status !== 'PASS').map((c) => [c.id, c.status])).toEqual([]);
    expect(byId(facts()).mtu!.detail).toBe('interface MTU 1280 (adaptive) fits every active path: b 1420');
  });

  it('path MTU: an active path smaller than the interface MTU is a FAIL naming the peer, with a fix per mode; unmeasured is WARN', () => {
    const withPeer = (pathMtu: number | null, mtu: number, mtuMode: 'adaptive' | 'fixed', path = 'direct') => {
      const f = facts();
      f.status = { ...f.status, interface: { ...f.status.interface, mtu, mtuMode }, peers: [{ ...f.status.peers[0]!, pathMtu, path: path as 'direct' }] };
      return byId(f).mtu!;
    };
    const fixed = withPeer(1340, 1420, 'fixed');
    expect(fixed).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('interface MTU 1420 is larger than the path to b (1340): packets above 1340 bytes') });
    expect(fixed.fix).toBe('restart the daemon without --mtu (the MTU then follows the paths), or with --mtu 1340');
    expect(withPeer(1340, 1420, 'adaptive').fix).toBe('the daemon lowers the MTU at its next probe; until then: ip link set dev weft0 mtu 1340');
    expect(withPeer(null, 1420, 'adaptive')).toMatchObject({ status: 'WARN', detail: 'not measured yet for b (interface MTU 1420, adaptive)' });
    expect(withPeer(1340, 1340, 'adaptive').status).toBe('PASS');
    // A peer with no session is not a path in use: nothing to judge.
    expect(withPeer(null, 1420, 'adaptive', 'none')).toMatchObject({ status: 'PASS', detail: 'no active peer (interface MTU 1420, adaptive)' });
  });

  it('a peer missing from wg, or with other allowed IPs, is a FAIL naming it, with the fix', () => {
    const missing = byId(facts({ wg: { publicKey: KEY_SELF, peers: [] } }))['wg-peers']!;
    expect(missing).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('weft down && weft up') });
    expect(missing.detail).toMatch(/^b \(nodekey:bbbbbbbb\.\.\.\) is missing from weft0/);
    const wrong = byId(facts({ wg: { publicKey: KEY_SELF, peers: [{ publicKey: KEY_B, allowedIps: ['100.64.0.2/32'] }] } }))['wg-peers']!;
    expect(wrong.detail.startsWith('b has allowed IPs 100.64.0.2/32, want 100.64.0.2/32,fd7a::2/128 (')).toBe(true);
  });

  it('a route to a peer address via another device is a FAIL with the ip route del that fixes it; an ip rule diversion names the rule', () => {
    const lo = byId(facts({ routes: { '100.64.0.2': { dev: 'lo', table: 'local', error: null } } })).routes!;
    expect(lo).toMatchObject({ status: 'FAIL', fix: 'ip route del 100.64.0.2 dev lo table local' });
    // As `ip -j rule show` prints `ip rule add to 100.64.0.0/10 lookup 100 priority 100`.
    const rules = [...facts().rules, { priority: 100, src: 'all', dst: '100.64.0.0', dstlen: 10, table: '100', family: 4 as const }];
    const ruled = byId(facts({ rules, routes: { '100.64.0.2': { dev: 'eth0', table: '100', error: null } } })).routes!;
    expect(ruled).toMatchObject({ status: 'FAIL', fix: 'ip rule del priority 100' });
    expect(ruled.detail).toContain('ip rule 100 sends it to table 100');
    expect(divertingRule(rules, '100.128.0.1')).toBeUndefined();
  });

  it('another nftables table dropping the WireGuard port is a FAIL with the nft delete rule; a missing weft table under a policy too', () => {
    const nft = { nftables: [
      { table: { family: 'inet', name: 'other', handle: 1 } },
      { rule: { family: 'inet', table: 'other', chain: 'input', handle: 4, expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 41641 } }, { drop: null }] } },
      { rule: { family: 'inet', table: 'other', chain: 'input', handle: 5, expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 53 } }, { drop: null }] } },
    ] };
    expect(blockingRules(nft, 41641)).toEqual([{ family: 'inet', table: 'other', chain: 'input', handle: 4 }]);
    expect(blockingRules({ nftables: [{ rule: { ...nft.nftables[1]!.rule!, expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: { set: [{ range: [41000, 42000] }] } } }, { reject: {} }] } }] }, 41641)).toHaveLength(1);
    expect(byId(facts({ nft })).firewall).toMatchObject({ status: 'FAIL', fix: 'nft delete rule inet other input handle 4' });
    const enforcing = facts();
    enforcing.status.firewall = { state: 'enforcing', rules: 1, skippedRules: [], error: null } as never;
    expect(byId(enforcing).firewall).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('table inet weft is missing') });
  });

  it('keys that differ, clock skew and stale links are named; any FAIL makes the report not ok', () => {
    expect(byId(facts({ localNodeKey: KEY_B })).keys!.status).toBe('FAIL');
    expect(byId(facts({ clockSkewS: 45 })).clock).toMatchObject({ status: 'WARN', detail: 'this host is 45 s behind the server' });
    expect(byId(facts({ clockSkewS: -400 })).clock!.status).toBe('FAIL');
    expect(byId(facts({ clockSkewS: null, clockError: 'connect ECONNREFUSED' })).clock!.status).toBe('WARN');
    const stale = runChecks(facts({ stalePeers: [2] }));
    expect(stale.ok).toBe(false);
    expect(stale.checks.find((c) => c.id === 'handshakes')!.detail).toMatch(/^b \(last handshake 5 s ago\): traffic attempted/);
  });

  it('stale handshakes name the threshold in force (WEFT_STALE_HANDSHAKE_S), 180 s by default', () => {
    expect(byId(facts({ stalePeers: [2] })).handshakes!.detail).toMatch(/no session for over 180 s$/);
    expect(byId(facts({ stalePeers: [2], staleAfterS: 8 })).handshakes!.detail).toMatch(/no session for over 8 s$/);
  });

  it('UDP receive buffer: wireguard-go on the kernel default (208 KiB) is WARN with the sysctl fix; 4 MiB PASS; kernel WireGuard and unmeasured PASS', () => {
    const small = byId(facts({ udpReceiveBuffer: 212_992 }))['udp-buffer']!;
    expect(small).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/^wireguard-go's socket on UDP 41641 has a 208 KiB receive buffer/) });
    expect(small.fix!.startsWith('sysctl -w net.core.rmem_default=4194304 net.core.rmem_max=4194304 && weft down && weft up (')).toBe(true);
    expect(byId(facts({ udpReceiveBuffer: 4 * 1024 * 1024 }))['udp-buffer']).toMatchObject({ status: 'PASS', detail: expect.stringContaining('4096 KiB') });
    expect(byId(facts({ udpReceiveBuffer: null }))['udp-buffer']).toMatchObject({ status: 'PASS', detail: expect.stringContaining('not measured') });
    const kernel = facts({ udpReceiveBuffer: 212_992 });
    kernel.status = { ...kernel.status, interface: { ...kernel.status.interface, backend: 'kernel' } };
    expect(byId(kernel)['udp-buffer']).toMatchObject({ status: 'PASS', detail: expect.stringContaining('not judged for the kernel backend') });
  });

  it('gather reads the smallest receive buffer of the sockets on WireGuard\'s port from ss', async () => {
    const f = facts();
    const asked: string[][] = [];
    const g = await gather({
      status: f.status, localNodeKey: KEY_SELF, netmapAllowedIps: f.netmapAllowedIps, stalePeers: [],
      serverClock: async () => ({ error: 'not asked' }),
      runner: async (cmd, args) => {
        if (cmd !== 'ss') throw new Error('no tools in a unit test');
        asked.push(args);
        return 'UNCONN 0 0 0.0.0.0:41641 0.0.0.0:*\n\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d17)\nUNCONN 0 0 [::]:41641 [::]:*\n\t skmem:(r0,rb425984,t0,tb212992,f0,w0,o0,bl0,d0)\n';
      },
      readSysctl: async () => '0\n',
    });
    expect(asked).toEqual([['-uanmH', 'sport = :41641']]);
    expect(g.udpReceiveBuffer).toBe(212_992);
  });

  describe('forwarding where the node routes (sysctls read through a fake reader)', () => {
    const run = async (sysctls: Record<string, string>, routedPrefixes?: string[]) => {
      const f = facts();
      const g = await gather({
        status: f.status, localNodeKey: KEY_SELF, netmapAllowedIps: f.netmapAllowedIps, stalePeers: [], routedPrefixes,
        serverClock: async () => ({ error: 'not asked' }),
        runner: async () => { throw new Error('no tools in a unit test'); },
        readSysctl: async (path) => {
          if (!(path in sysctls)) throw new Error(`ENOENT: ${path}`);
          return `${sysctls[path]}\n`;
        },
      });
      return runChecks(g).checks.find((c) => c.id === 'forwarding')!;
    };
    const V4 = '/proc/sys/net/ipv4/ip_forward';
    const V6 = '/proc/sys/net/ipv6/conf/all/forwarding';

    it('a node that routes for no one (nothing can route yet) passes whatever the sysctls say', async () => {
      expect(await run({ [V4]: '0', [V6]: '0' })).toMatchObject({ status: 'PASS', fix: null, detail: expect.stringMatching(/^this node routes for no one .*\(IPv4 off, IPv6 off\)$/) });
      expect((await run({}, [])).detail).toContain('(IPv4 unknown, IPv6 unknown)');
    });

    it('a node that routes prefixes with forwarding off FAILs naming the prefix and sysctl, with the sysctl -w fix; on = PASS; unreadable = WARN', async () => {
      const off = await run({ [V4]: '0', [V6]: '1' }, ['10.1.0.0/24', 'fd00:1::/64']);
      expect(off).toMatchObject({ status: 'FAIL', detail: 'this node routes 10.1.0.0/24 for its peers but net.ipv4.ip_forward is 0: their packets stop here' });
      expect(off.fix!.startsWith('sysctl -w net.ipv4.ip_forward=1 (')).toBe(true);
      const both = await run({ [V4]: '0', [V6]: '0' }, ['0.0.0.0/0', '::/0']);
      expect(both.fix!.startsWith('sysctl -w net.ipv4.ip_forward=1 && sysctl -w net.ipv6.conf.all.forwarding=1 (')).toBe(true);
      expect(await run({ [V4]: '1' }, ['10.1.0.0/24'])).toMatchObject({ status: 'PASS', detail: 'forwarding on for the 1 prefix this node routes (10.1.0.0/24)' });
      expect(await run({ [V4]: '1' }, ['10.1.0.0/24', 'fd00:1::/64'])).toMatchObject({ status: 'WARN', detail: expect.stringContaining('net.ipv6.conf.all.forwarding could not be read') });
    });
  });
});

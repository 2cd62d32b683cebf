import { describe, expect, it } from 'vitest';
import { loginText } from '../../src/cli/commands/join.js';
import { formatAge, formatBytes, formatStatus } from '../../src/cli/status-format.js';
import { pathOf, peerStatus, type Status } from '../../src/status.js';
import { peer, self } from './fixtures.js';

const now = new Date('2026-11-22T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000);

describe('peer path', () => {
  const stats = (endpoint: string | null, lastHandshake: Date | null) => ({ publicKey: peer(2).nodeKey as never, endpoint, lastHandshake, rxBytes: 0, txBytes: 0 });
  it('is direct with an endpoint and a handshake within 3 minutes', () => {
    expect(pathOf(stats('192.0.2.2:41641', ago(179)), now)).toBe('direct');
    expect(pathOf(stats('192.0.2.2:41641', ago(180)), now)).toBe('direct');
    expect(pathOf(stats('192.0.2.2:41641', ago(181)), now)).toBe('none');
    expect(pathOf(stats(null, ago(5)), now)).toBe('none');
    expect(pathOf(stats('192.0.2.2:41641', null), now)).toBe('none');
    expect(pathOf(undefined, now)).toBe('none');
  });

  it('peerStatus fills stats and ages', () => {
    const s = peerStatus(peer(2), { publicKey: peer(2).nodeKey as never, endpoint: '10.0.0.2:41641', lastHandshake: ago(42), rxBytes: 1234, txBytes: 5 }, now);
    expect(s).toMatchObject({ path: 'direct', endpoint: '10.0.0.2:41641', handshakeAgeSeconds: 42, lastHandshake: ago(42).toISOString(), rxBytes: 1234, txBytes: 5 });
    expect(peerStatus(peer(3), undefined, now)).toMatchObject({ path: 'none', endpoint: '192.0.2.3:41641', lastHandshake: null, handshakeAgeSeconds: null, rxBytes: 0 });
  });
});

describe('formatting', () => {
  it('bytes and ages', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatAge(null)).toBe('never');
    expect(formatAge(7)).toBe('7s ago');
    expect(formatAge(125)).toBe('2m05s ago');
    expect(formatAge(3 * 3600 + 60)).toBe('3h01m ago');
  });

  const base: Status = {
    version: 1, state: 'running', online: true, server: 'http://10.77.0.1:8080', controlChannel: { scheme: 'http', caFile: null, warning: null },
    self: { ...self, machineKey: null }, interface: { name: 'weft0', backend: 'userspace', up: true, listenPort: 41641, mtu: 1280, mtuMode: 'fixed' },
    login: null, lastError: null, firewall: { state: 'off', rules: 0, skippedRules: [], error: null }, peers: [], skippedPeers: [],
  };

  it('renders self, state and an aligned peer table', () => {
    const out = formatStatus({
      ...base,
      peers: [
        peerStatus(peer(2), { publicKey: peer(2).nodeKey as never, endpoint: '10.0.0.2:41641', lastHandshake: ago(3), rxBytes: 2048, txBytes: 10 }, now),
        peerStatus(peer(13, { name: 'a-much-longer-name', online: false, endpoints: [] }), undefined, now),
      ],
    });
    expect(out).toMatchInlineSnapshot(`
      "100.64.0.1  self  alice  fd7a:115c:a1e0::1
      state: running
      control: http://10.77.0.1:8080 (online)
      interface: weft0 (userspace, port 41641, mtu 1280)

      IP           NAME                USER   PATH    ENDPOINT        HANDSHAKE  RX       TX    CONTROL
      100.64.0.2   peer2               alice  direct  10.0.0.2:41641  3s ago     2.0 KiB  10 B  online
      100.64.0.13  a-much-longer-name  alice  none    -               never      0 B      0 B   offline

      a-much-longer-name: none: not configured in WireGuard
      "
    `);
  });

  it('a device waiting for an admin says so in words, with the command that approves it', () => {
    const waiting = formatStatus({ ...base, state: 'needs-login', self: null, login: { url: 'http://10.77.0.1:8080/pending', code: '17', expiresAt: now.toISOString(), approval: 'admin' } });
    expect(waiting).toContain('login: waiting for an admin to approve this device (weft-server nodes approve 17, or the Pending devices page at http://10.77.0.1:8080/pending)');
    const login = formatStatus({ ...base, state: 'needs-login', self: null, login: { url: 'http://10.77.0.1:8080/login/ABCD-EFGH', code: 'ABCD-EFGH', expiresAt: now.toISOString() } });
    expect(login).toContain('login: open http://10.77.0.1:8080/login/ABCD-EFGH or ask an admin to run: weft-server nodes approve ABCD-EFGH');
  });

  it('weft up prints that a device waits for an admin, or where to approve it', () => {
    expect(loginText({ approval: 'admin', url: 'http://h/pending', code: '17' })).toBe(
      '\nThis device waits for an admin to approve it: this network requires approval of new devices.\n' +
      'An admin approves it on the Pending devices page (http://h/pending)\nor runs: weft-server nodes approve 17\n\n');
    expect(loginText({ url: 'http://h/login/ABCD-EFGH', code: 'ABCD-EFGH', fingerprint: '6668-7aad-f862-bd77' })).toBe(
      '\nTo approve, open http://h/login/ABCD-EFGH\nKey fingerprint: 6668-7aad-f862-bd77 (the page must show the same)\nor ask an admin to run: weft-server nodes approve ABCD-EFGH\n\n');
    expect(loginText({ url: 'http://h/login/ABCD-EFGH', code: 'ABCD-EFGH' })).toBe('\nTo approve, open http://h/login/ABCD-EFGH\nor ask an admin to run: weft-server nodes approve ABCD-EFGH\n\n');
  });

  it('a relayed peer shows relay (REGION), and under the table since when and why in words', () => {
    const since = new Date(now.getTime() - 30_000);
    const out = formatStatus({
      ...base,
      peers: [peerStatus(peer(2), { publicKey: peer(2).nodeKey as never, endpoint: '127.0.0.1:40000', lastHandshake: ago(3), rxBytes: 1, txBytes: 1 }, now, '127.0.0.1:40000',
        { via: 'relay', since, reason: 'hole punch timed out; retrying in 30 s', region: 'fra' })],
    });
    expect(out).toMatch(/peer2\s+alice\s+relay \(fra\)\s+127\.0\.0\.1:40000/);
    expect(out.split('\n')).toContain(`peer2: relay since ${since.toISOString()}: hole punch timed out; retrying in 30 s`);
  });

  it('names the home relay region and how the session goes, only when there is a relay session', () => {
    expect(formatStatus({ ...base, relay: { connected: true, transport: 'udp', region: 'fra' } }).split('\n')).toContain('home relay: fra (connected, over UDP)');
    expect(formatStatus({ ...base, relay: { connected: false, transport: null, region: 'embedded' } }).split('\n')).toContain('home relay: embedded (not connected)');
    expect(formatStatus(base)).not.toContain('home relay');
  });

  it("shows the public endpoint the server sees for this node's WireGuard port, when it has one", () => {
    const out = formatStatus({ ...base, self: { ...base.self!, reflexiveEndpoint: '203.0.113.7:54321' } });
    expect(out.split('\n')).toContain('public endpoint (seen by the server): 203.0.113.7:54321');
    expect(formatStatus(base)).not.toContain('public endpoint');
  });

  it('lists peers skipped as malformed, one line each, with control characters made harmless', () => {
    const out = formatStatus({
      ...base,
      peers: [peerStatus(peer(2), undefined, now)],
      skippedPeers: [{ id: 7, reason: 'endpoints[0]: IPv4 address: octet 1 is 999, outside 0-255' }, { id: null, reason: 'id: bad\u001b]0;x\u0007' }],
    });
    expect(out).toContain('skipped peer 7: endpoints[0]: IPv4 address: octet 1 is 999, outside 0-255\n');
    expect(out).toContain('skipped peer ?: id: bad?]0;x?\n');
    expect(out).toContain('peer2');
  });

  it('says in words what the packet filter does: nothing while off, the rule count, what stays in force when it fails', () => {
    expect(formatStatus(base)).not.toContain('firewall');
    const enforcing = formatStatus({ ...base, firewall: { state: 'enforcing', rules: 3, skippedRules: [{ index: 4, reason: 'srcIPs[0]: bad' }], error: null } });
    expect(enforcing).toContain('firewall: enforcing the packet filter (3 rules; nftables table inet weft)\n');
    expect(enforcing).toContain('packet filter rule 4 left out: srcIPs[0]: bad\n');
    const kept = formatStatus({
      ...base,
      lastError: { code: 'firewall_error', message: 'cannot apply the new packet filter (nft failed: x); the previous ruleset stays in force' },
      firewall: { state: 'kept', rules: 1, skippedRules: [], error: 'cannot apply the new packet filter (nft failed: x); the previous ruleset stays in force' },
    });
    expect(kept).toContain('firewall: NOT UPDATED: cannot apply the new packet filter (nft failed: x); the previous ruleset stays in force (1 rule)\n');
    expect(kept).not.toContain('last error');
    const blocked = formatStatus({ ...base, firewall: { state: 'blocked', rules: 0, skippedRules: [], error: 'cannot enforce the packet filter (nft not found: install the nftables package); no peers are configured until it can be' } });
    expect(blocked).toContain('firewall: BLOCKING ALL TUNNEL TRAFFIC: cannot enforce the packet filter (nft not found');
  });

  it('tells a revoked node what to do', () => {
    const out = formatStatus({ ...base, state: 'revoked', online: false, interface: { ...base.interface, up: false }, lastError: { code: 'node_revoked', message: 'this node was revoked by an admin (closed 4403)' } });
    expect(out).toContain('revoked by an admin (to join again: weft logout && weft up --server URL)');
    expect(out).toContain('control: http://10.77.0.1:8080 (offline)');
  });
});

describe('weft ping output', () => {
  it('finds a peer by name, tunnel IPv4 or node key; reads the round trip; says the path of each reply', async () => {
    const { findPeer, formatReply, parseRtt } = await import('../../src/cli/commands/ping.js');
    const peers = [{ name: 'b', ipv4: '100.64.0.2', nodeKey: 'nodekey:' + 'ab'.repeat(32) }, { name: 'c', ipv4: '100.64.0.3', nodeKey: 'nodekey:' + 'cd'.repeat(32) }] as never[];
    expect(findPeer(peers, 'c')).toBe(peers[1]);
    expect(findPeer(peers, '100.64.0.2')).toBe(peers[0]);
    expect(findPeer(peers, 'nodekey:' + 'cd'.repeat(32))).toBe(peers[1]);
    expect(findPeer(peers, 'd')).toBeUndefined();
    expect(parseRtt('64 bytes from 100.64.0.2: icmp_seq=1 ttl=64 time=1.23 ms\n')).toBe(1.23);
    expect(parseRtt('1 packets transmitted, 0 received, 100% packet loss')).toBeNull();
    expect(formatReply('b', '100.64.0.2', { seq: 1, rttMs: 1.2, path: 'direct', endpoint: '203.0.113.7:41641', region: null })).toBe('pong from b (100.64.0.2) via 203.0.113.7:41641 in 1.2 ms');
    expect(formatReply('b', '100.64.0.2', { seq: 2, rttMs: 23, path: 'relay', endpoint: null, region: 'fra' })).toBe('pong from b (100.64.0.2) via relay fra in 23 ms');
    expect(formatReply('b', '100.64.0.2', { seq: 3, rttMs: null, path: 'none', endpoint: null, region: null })).toBe('no reply from b (100.64.0.2) within 2 s');
  });
});

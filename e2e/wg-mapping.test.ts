/**
 * WireGuard's own public mapping on a real network (issue 9): host `a` sits behind a namespace
 * router doing nftables masquerade with port randomisation (so the NAT does not keep WireGuard's
 * port), the server and `b` outside. The server must learn a's reflexive endpoint from the
 * handshake initiations a's own wireguard-go sends to the responder key, and it must equal the
 * mapping in the router's conntrack table for WireGuard's port; a sees it as its own reflexive
 * endpoint, b's netmap lists it first. After the router's conntrack is flushed the mapping is
 * re-learned. The NAT router here is deliberately small and local to this file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Peer } from '@weft/protocol';
import { describe, expect, it } from 'vitest';
import type { Host } from './lab/host.js';
import { useLab } from './lab/vitest.js';
import { WeftAgent, WeftServer, wgKeyOf } from './lab/weft.js';
import { waitFor } from './lab/wait.js';

const WG_PORT = 41641;
const STUN_PORT = 3478;
const INSIDE = '192.168.77';

/**
 * Moves `inner` off the lab LAN behind `router`: a veth between them (router .1, inner .2 on
 * INSIDE/24), forwarding on, and source NAT with `masquerade random` on the router's LAN side.
 */
async function behindRandomisingNat(router: Host, inner: Host): Promise<void> {
  await inner.execOk('ip', ['link', 'del', 'eth0']);
  await router.execOk('ip', ['link', 'add', 'in0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', inner.ns]);
  await router.execOk('ip', ['addr', 'add', `${INSIDE}.1/24`, 'dev', 'in0']);
  await router.execOk('ip', ['link', 'set', 'in0', 'up']);
  await router.execOk('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await inner.execOk('ip', ['addr', 'add', `${INSIDE}.2/24`, 'dev', 'eth0']);
  await inner.execOk('ip', ['link', 'set', 'eth0', 'up']);
  await inner.execOk('ip', ['route', 'add', 'default', 'via', `${INSIDE}.1`]);
  await router.execOk('nft', ['-f', '-'], {
    input: `table ip weftnat {\n  chain post {\n    type nat hook postrouting priority srcnat;\n    oifname "eth0" masquerade random\n  }\n}\n`,
  });
}

/** The router's public mapping of inner's WireGuard port towards the server's UDP port, from conntrack; null = no entry. */
async function conntrackMapping(router: Host, serverIp: string): Promise<string | null> {
  const r = await router.execOk('conntrack', ['-L', '-p', 'udp', '--orig-src', `${INSIDE}.2`, '--orig-dst', serverIp, '--orig-port-src', String(WG_PORT), '--orig-port-dst', String(STUN_PORT)], { timeoutMs: 5000 });
  const line = r.stdout.split('\n').find((l) => l.includes(`sport=${WG_PORT}`));
  if (!line) return null;
  // Original tuple first, then the reply tuple: the reply's dst/dport is the mapping.
  const dst = [...line.matchAll(/dst=(\S+)/g)].map((m) => m[1]);
  const dport = [...line.matchAll(/dport=(\d+)/g)].map((m) => m[1]);
  if (dst.length < 2 || dport.length < 2) throw new Error(`cannot read conntrack line: ${line}`);
  return `${dst[1]}:${dport[1]}`;
}

/** b's netmap as its agent last persisted it. */
function persistedPeers(agent: WeftAgent): Peer[] {
  try {
    return (JSON.parse(readFileSync(join(agent.stateDir, 'state.json'), 'utf8')) as { peers?: Peer[] }).peers ?? [];
  } catch {
    return [];
  }
}

let server: WeftServer;
let a: WeftAgent;
let b: WeftAgent;
const ctx = useLab({ name: 'wgmap', hosts: ['server', 'nat', 'a', 'b'] }, async (lab) => {
  await behindRandomisingNat(lab.hosts.nat, lab.hosts.a);
  // The shared machine may be slow to create the embedded database: more than the default 60 s to ready.
  server = await WeftServer.start(lab, { stunListen: `0.0.0.0:${STUN_PORT}`, readyTimeoutMs: 150_000 });
  const authKey = await server.authKey('lab');
  [a, b] = await Promise.all([WeftAgent.start(lab.hosts.a, { listenPort: WG_PORT }), WeftAgent.start(lab.hosts.b, { listenPort: WG_PORT })]);
  await Promise.all([a.upOk({ server: server.url, authKey, hostname: 'a' }), b.upOk({ server: server.url, authKey, hostname: 'b' })]);
});

/**
 * Waits until a's own reflexive endpoint, the server's view and b's netmap all equal the router's
 * current conntrack mapping; returns it and when (ms after `t0`) each view first had it. a's own
 * view can lag after a conntrack flush: the flush also breaks a's control connection (TCP through
 * the same NAT), and a learns `self` only once it has reconnected.
 */
async function agreeOnMapping(what: string, t0: number, timeoutMs: number): Promise<{ mapped: string; atMs: Record<string, number> }> {
  const { nat, server: serverHost } = ctx.lab.hosts;
  let last = '';
  const atMs: Record<string, number> = {};
  const mapped = await waitFor(
    async () => {
      const mapped = await conntrackMapping(nat, serverHost.ip);
      const views = {
        server: (await server.api.nodes()).find((n) => n.hostname === 'a')?.endpoints[0],
        bNetmap: persistedPeers(b).find((p) => p.name === 'a')?.endpoints[0],
        aSelf: (await a.status()).self?.reflexiveEndpoint,
      };
      last = JSON.stringify({ conntrack: mapped, ...views });
      if (mapped === null) return false;
      for (const [k, v] of Object.entries(views)) if (v === mapped) atMs[k] ??= Date.now() - t0;
      return Object.values(views).every((v) => v === mapped) ? mapped : false;
    },
    { timeoutMs, intervalMs: 500, what: `${what}: a's reflexive endpoint everywhere equal to the router's conntrack mapping` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen ${last}`);
  });
  return { mapped, atMs };
}

describe('WireGuard public mapping behind a port-randomising NAT', () => {
  it("the server learns a's mapping from a's own WireGuard: equal to the router's conntrack entry, not the local port; a and b see it", async () => {
    const { mapped, atMs } = await agreeOnMapping('first join', Date.now(), 45_000);
    console.info(`reflexive endpoint ${mapped}; ms after both joined until each view had it: ${JSON.stringify(atMs)}`);
    expect(mapped.startsWith(`${ctx.lab.hosts.nat.ip}:`)).toBe(true);
    expect(Number(mapped.split(':')[1])).not.toBe(WG_PORT);
    // The responder is a WireGuard peer on a, but never a peer in `weft status`.
    const st = await a.status();
    expect(st.peers.map((p) => p.name)).toEqual(['b']);
    const dump = await a.wgDump();
    const responder = dump?.peers.find((p) => p.publicKey !== wgKeyOf(st.peers[0]!.nodeKey));
    expect(dump?.peers).toHaveLength(2);
    expect(responder).toMatchObject({ endpoint: `${ctx.lab.hosts.server.ip}:${STUN_PORT}`, allowedIps: [] });
    // a's local candidate is still offered after the reflexive one.
    const aNode = (await server.api.nodes()).find((n) => n.hostname === 'a');
    expect(aNode?.endpoints).toContain(`${INSIDE}.2:${WG_PORT}`);
  });

  it('after the router forgets its mappings (conntrack flushed), the new mapping is learned', async () => {
    const { nat, server: serverHost } = ctx.lab.hosts;
    const before = await conntrackMapping(nat, serverHost.ip);
    await nat.execOk('conntrack', ['-F']);
    // Bound: the next initiation (<= ~25 s, the keepalive gap) plus a's control reconnect (its silence timeout, 45 s).
    const { mapped, atMs } = await agreeOnMapping('after conntrack flush', Date.now(), 90_000);
    console.info(`after the flush: ${before} -> ${mapped}; ms until each view had it: ${JSON.stringify(atMs)}`);
    expect(Number(mapped.split(':')[1])).not.toBe(WG_PORT);
  });
});

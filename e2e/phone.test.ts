/**
 * A node-less peer ("phone") on a real network: it runs no Weft software, only wireguard-go
 * programmed with the official tools from the config `weft-server nodes add-peer` printed, the way
 * the WireGuard app would use it. The agents learn it from their netmaps (no endpoint: the phone
 * initiates), and deleting it on the server cuts it off.
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Node } from '@weft/protocol';
import type { Host } from './lab/host.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { startMesh, wgKeyOf, type Mesh, type WeftAgent } from './lab/weft.js';
import { startWireguardGo } from './lab/wg-pair.js';

const USER = 'lab';
const PEER_GONE_MS = 1000;
/** What add-peer puts on every [Peer] (phones sit behind NAT). */
const PHONE_KEEPALIVE_S = 25;
const AGENTS = ['a', 'b'] as const;

let mesh: Mesh<(typeof AGENTS)[number]>;
const ctx = useLab({ name: 'phone', hosts: ['server', 'a', 'b', 'phone'] }, async (lab) => {
  mesh = await startMesh(lab, AGENTS, { user: USER });
});

/** The parts of a wg-quick file that `wg setconf` does not take and wg-quick would apply itself. */
interface WgQuickExtras {
  addresses: string[];
  mtu: number | null;
  peers: Array<{ publicKey: string; allowedIps: string[]; endpoint: string | null; persistentKeepalive: number | null }>;
}

function parseWgQuick(text: string): WgQuickExtras {
  const out: WgQuickExtras = { addresses: [], mtu: null, peers: [] };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '[Peer]') out.peers.push({ publicKey: '', allowedIps: [], endpoint: null, persistentKeepalive: null });
    const m = line.match(/^(\w+)\s*=\s*(.*)$/);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    const peer = out.peers.at(-1);
    if (!peer) {
      if (key === 'Address') out.addresses.push(...list(value));
      if (key === 'MTU') out.mtu = Number(value);
    } else if (key === 'PublicKey') peer.publicKey = value;
    else if (key === 'AllowedIPs') peer.allowedIps.push(...list(value));
    else if (key === 'Endpoint') peer.endpoint = value;
    else if (key === 'PersistentKeepalive') peer.persistentKeepalive = Number(value);
  }
  return out;
}

/**
 * What `wg-quick up` does, minus DNS and the default-route dance: wireguard-go, `wg-quick strip` +
 * `wg setconf`, addresses, MTU, link up, a route per allowed IP. Returns the interface name.
 */
async function wgQuickUp(host: Host, config: string): Promise<string> {
  const ifname = host.ifname('wgp');
  // wg-quick derives the interface name from the file name.
  const file = host.tmpPath(`${ifname}.conf`);
  writeFileSync(file, config, { mode: 0o600 });
  const stripped = (await host.execOk('wg-quick', ['strip', file], { timeoutMs: 5000 })).stdout;
  writeFileSync(file, stripped, { mode: 0o600 });
  await startWireguardGo(host, ifname);
  await host.execOk('wg', ['setconf', ifname, file], { timeoutMs: 5000 });
  const q = parseWgQuick(config);
  for (const a of q.addresses) await host.execOk('ip', ['addr', 'add', a, 'dev', ifname], { timeoutMs: 5000 });
  await host.execOk('ip', ['link', 'set', ifname, ...(q.mtu ? ['mtu', String(q.mtu)] : []), 'up'], { timeoutMs: 5000 });
  for (const r of new Set(q.peers.flatMap((p) => p.allowedIps))) await host.execOk('ip', ['route', 'add', r, 'dev', ifname], { timeoutMs: 5000 });
  return ifname;
}

/** The row for `wgKey` in the agent's `wg show dump`, null when absent. */
const wgPeer = async (agent: WeftAgent, wgKey: string) => (await agent.wgDump())?.peers.find((p) => p.publicKey === wgKey) ?? null;

describe('a node-less peer (phone) configured from weft-server nodes add-peer', () => {
  let phone: Node;
  let config: string;
  let phoneWgKey: string;

  it('add-peer prints a wg-quick config: every agent as a [Peer] with its endpoint and keepalive 25', async () => {
    // The admin CLI reaches the server through the unix socket in its data dir.
    const out = await mesh.server.admin<{ node: Node; config: string }>(['nodes', 'add-peer', 'phone', '--user', USER]);
    ({ node: phone, config } = out);
    phoneWgKey = wgKeyOf(phone.nodeKey);
    expect(phone).toMatchObject({ hostname: 'phone', user: USER });

    const q = parseWgQuick(config);
    // The private key in the config belongs to the public key the server registered.
    const priv = config.match(/^PrivateKey\s*=\s*(\S+)/m)?.[1];
    expect(priv).toBeTruthy();
    const pub = (await ctx.lab.hosts.phone.execOk('wg', ['pubkey'], { input: `${priv}\n`, timeoutMs: 5000 })).stdout.trim();
    expect(pub).toBe(phoneWgKey);
    expect(q.addresses).toContain(`${phone.ipv4}/32`);

    const agents = await Promise.all(AGENTS.map(async (h) => ({ h, self: (await mesh.agents[h].status()).self! })));
    expect(q.peers.map((p) => p.publicKey).sort()).toEqual(agents.map((a) => wgKeyOf(a.self.nodeKey)).sort());
    for (const { h, self } of agents) {
      const peer = q.peers.find((p) => p.publicKey === wgKeyOf(self.nodeKey))!;
      expect(peer.allowedIps, h).toContain(`${self.ipv4}/32`);
      expect(peer.endpoint, `${h}'s endpoint must be reachable on the LAN`).toMatch(new RegExp(`^${ctx.lab.hosts[h].ip.replace(/\./g, '\\.')}:\\d+$`));
      expect(peer.persistentKeepalive, h).toBe(PHONE_KEEPALIVE_S);
    }
  });

  it('the phone, with only wireguard-go and wireguard-tools, pings both agents; their wg show lists it', async () => {
    const host = ctx.lab.hosts.phone;
    await wgQuickUp(host, config);
    // The agents get the phone from their netmaps, without an endpoint until it reaches them.
    await waitFor(async () => (await Promise.all(AGENTS.map((h) => wgPeer(mesh.agents[h], phoneWgKey)))).every(Boolean), {
      timeoutMs: 5000, intervalMs: 50, what: 'the phone in every agent\'s wg show',
    });
    for (const h of AGENTS) {
      const r = await waitFor(async () => {
        const p = await host.ping(mesh.ips[h], { count: 1, timeoutMs: 2000 });
        return p.ok ? p : null;
      }, { timeoutMs: 15_000, intervalMs: 200, what: `phone -> ${h} (${mesh.ips[h]})` });
      expect(r.ok).toBe(true);
      // The agent learned the phone's endpoint from its handshake: the phone initiated.
      const seen = await wgPeer(mesh.agents[h], phoneWgKey);
      expect(seen?.allowedIps, h).toContain(`${phone.ipv4}/32`);
      expect(seen?.endpoint, h).toMatch(new RegExp(`^${host.ip.replace(/\./g, '\\.')}:\\d+$`));
      expect(seen?.latestHandshake, h).toBeGreaterThan(0);
    }
    // And the agents reach it back over the same sessions.
    for (const h of AGENTS) expect((await ctx.lab.hosts[h].ping(phone.ipv4, { count: 1, timeoutMs: 3000 })).ok, `${h} -> phone`).toBe(true);
  });

  it('a netmap change (another node-less peer added) keeps the session and endpoint the agents learned from the phone', async () => {
    const before = await Promise.all(AGENTS.map((h) => wgPeer(mesh.agents[h], phoneWgKey)));
    const other = await mesh.server.admin<{ node: Node }>(['nodes', 'add-peer', 'tablet', '--user', USER]);
    await waitFor(async () => (await Promise.all(AGENTS.map((h) => wgPeer(mesh.agents[h], wgKeyOf(other.node.nodeKey))))).every(Boolean), {
      timeoutMs: 5000, intervalMs: 50, what: 'the tablet in every agent\'s wg show',
    });
    for (const [i, h] of AGENTS.entries()) {
      const after = await wgPeer(mesh.agents[h], phoneWgKey);
      // What the agent says of the phone's path goes with a failure: the log tails may be cut off.
      const seen = (await mesh.agents[h].status()).peers.find((p) => p.nodeKey === phone.nodeKey);
      const said = `${h}: ${JSON.stringify({ path: seen?.path, reason: seen?.reason, pathSince: seen?.pathSince, lastHandshake: seen?.lastHandshake })}`;
      expect(after?.endpoint, said).toBe(before[i]?.endpoint);
      expect(after?.latestHandshake, said).toBe(before[i]?.latestHandshake);
      // No handshake needed: one echo with a short wait is enough.
      expect((await ctx.lab.hosts[h].ping(phone.ipv4, { count: 1, replyTimeoutMs: 500, timeoutMs: 1000 })).ok, `${h} -> phone`).toBe(true);
    }
  });

  it(`DELETE /api/v1/nodes/<phone>: within ${PEER_GONE_MS} ms no agent has its key, and its pings fail`, async () => {
    await mesh.server.api.deleteNode(phone.id);
    const t0 = Date.now();
    await waitFor(async () => (await Promise.all(AGENTS.map((h) => wgPeer(mesh.agents[h], phoneWgKey)))).every((p) => p === null), {
      timeoutMs: PEER_GONE_MS, intervalMs: 25, what: `phone key removed from ${AGENTS.join(', ')}`,
    });
    console.info(`phone removed from ${AGENTS.join(',')} ${Date.now() - t0} ms after the REST call returned`);
    const pings = await Promise.all(AGENTS.map((h) => ctx.lab.hosts.phone.ping(mesh.ips[h], { count: 2, intervalMs: 200, timeoutMs: 2000 })));
    pings.forEach((p, i) => expect(p.received, `phone -> ${AGENTS[i]}: ${p.output}`).toBe(0));
    // The agents themselves keep reaching each other.
    expect((await ctx.lab.hosts.a.ping(mesh.ips.b, { count: 1, timeoutMs: 3000 })).ok).toBe(true);
    expect((await mesh.server.api.nodes()).map((n) => n.hostname).sort()).toEqual(['a', 'b', 'tablet']);
  });
});

/**
 * Idle peers cost nothing (issue 9), on the real network: two nodes behind endpoint-independent
 * NATs (as nat-lab case (a)) go direct, then nobody talks. Once the pair has been idle for the
 * agent's in-use window (keepalive off) and the other side went quiet too, both sides park it on
 * the relay, and
 * nothing at all moves between them (WireGuard's counters for the peer stand still over more
 * than a keepalive interval). Then the first ping to the idle peer gets its reply at once (over
 * the relay: the direct path's NAT mappings had no keepalive to hold them), and the pair is
 * punched back to direct.
 */
import { describe, expect, it } from 'vitest';
import { IN_USE_WINDOW_MS, PARK_AFTER_SILENCE_MS, PERSISTENT_KEEPALIVE_S } from '../apps/agent/src/tunables.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { WeftAgent, WeftServer, type AgentPeerStatus } from './lab/weft.js';

let server: WeftServer;
let authKey: string;

const ctx = useLab({ name: 'idl', hosts: ['server', 'a', 'b'] }, async (lab) => {
  server = await WeftServer.start(lab, { stunListen: '0.0.0.0:3478', readyTimeoutMs: 180_000 });
  authKey = await server.authKey('lab');
});

async function peerOf(agent: WeftAgent): Promise<AgentPeerStatus> {
  const st = await agent.status();
  expect(st.peers).toHaveLength(1);
  return st.peers[0]!;
}

/** WireGuard's keepalive for `peerKey` on `agent` (`wg show IFACE persistent-keepalive`): seconds, or 'off'. */
async function keepaliveOf(agent: WeftAgent, peerKey: string): Promise<string> {
  const r = await agent.host.execOk('wg', ['show', agent.iface, 'persistent-keepalive']);
  return r.stdout.split('\n').map((l) => l.split('\t')).find(([k]) => k === peerKey)?.[1]?.trim() ?? 'missing';
}

describe('idle peers cost nothing', () => {
  it('an idle pair is parked on the relay and sends nothing; its first ping gets a reply at once, then it is direct again', async () => {
    const { lab } = ctx;
    const r1 = await lab.addRouter('eim1', { nat: 'eim' });
    const r2 = await lab.addRouter('eim2', { nat: 'eim' });
    await r1.attach(lab.hosts.a);
    await r2.attach(lab.hosts.b);
    const [a, b] = await Promise.all((['a', 'b'] as const).map((h) => WeftAgent.start(lab.hosts[h], { listenPort: 41641 })));
    const [sa, sb] = await Promise.all([a!.upOk({ server: server.url, authKey, hostname: 'a' }), b!.upOk({ server: server.url, authKey, hostname: 'b' })]);
    const ipB = sb.self!.ipv4;
    const aKey = (await a!.wgDump())!.publicKey;
    const bKey = (await b!.wgDump())!.publicKey;
    expect(sa.self!.ipv4).not.toBe(ipB);

    const both = async () => [await peerOf(a!), await peerOf(b!)] as const;
    const show = (xs: readonly AgentPeerStatus[]) => JSON.stringify(xs.map(({ path, endpoint, reason }) => ({ path, endpoint, reason })));
    await waitFor(async () => (await lab.hosts.a.ping(ipB, { count: 1, timeoutMs: 1000, replyTimeoutMs: 500 })).ok, { timeoutMs: 20_000, intervalMs: 50, what: 'a -> b over the tunnel' });
    await waitFor(async () => (await both()).every((x) => x.path === 'direct'), { timeoutMs: 20_000, intervalMs: 250, what: 'both direct' });
    expect(await keepaliveOf(a!, bKey)).toBe(String(PERSISTENT_KEEPALIVE_S));

    // Nobody talks: within the in-use window (and a little), both park the pair on the relay, keepalive off.
    let last = '';
    await waitFor(async () => {
      const xs = await both();
      last = show(xs);
      return xs.every((x) => x.path === 'relay' && /idle/.test(x.reason ?? ''));
    }, { timeoutMs: IN_USE_WINDOW_MS + PARK_AFTER_SILENCE_MS + 30_000, intervalMs: 1000, what: 'both sides park the idle pair on the relay' }).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${last}`);
    });
    expect(await keepaliveOf(a!, bKey)).toBe('off');
    expect(await keepaliveOf(b!, aKey)).toBe('off');

    // Nothing moves between them over more than a keepalive interval.
    const counters = async () => {
      const x = (await a!.wgDump())!.peers.find((p) => p.publicKey === bKey)!;
      const y = (await b!.wgDump())!.peers.find((p) => p.publicKey === aKey)!;
      return [x.rxBytes, x.txBytes, y.rxBytes, y.txBytes];
    };
    const before = await counters();
    await new Promise((r) => setTimeout(r, (PERSISTENT_KEEPALIVE_S + 5) * 1000));
    expect(await counters()).toEqual(before);

    // The first packet to the idle peer: a reply at once (one ping, one second to answer).
    const first = await lab.hosts.a.ping(ipB, { count: 1, replyTimeoutMs: 1000, timeoutMs: 1000 });
    expect(first.ok, first.output).toBe(true);
    // Traffic wakes the pair: keepalive back on, punched to direct again.
    const traffic = lab.hosts.a.ping(ipB, { count: 40, intervalMs: 250, timeoutMs: 15_000 });
    await waitFor(async () => {
      const xs = await both();
      last = show(xs);
      return xs.every((x) => x.path === 'direct');
    }, { timeoutMs: 15_000, intervalMs: 250, what: 'both direct again' }).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${last}`);
    });
    expect(await keepaliveOf(a!, bKey)).toBe(String(PERSISTENT_KEEPALIVE_S));
    const pinged = await traffic;
    expect(pinged.received, pinged.output).toBeGreaterThanOrEqual(30);
  }, 300_000); // idle for the in-use window and the park delay, quiet for a keepalive interval, then back
});

/**
 * Issue 9's lab case (j): two server replicas on one Postgres behind ONE address (HAProxy,
 * deploy/haproxy/haproxy.cfg as shipped but for the addresses), the two nodes on different
 * replicas, UDP blocked: their pings pass relayed, the replicas' relays forwarding to each other
 * over the relay mesh (authenticated with the shared mesh secret).
 *
 * An agent opens two TCP connections through the balancer (the control WebSocket and the relay
 * WebSocket, both at the server URL), so `balance leastconn` alone would put a's two connections
 * on different replicas and leave it to a tie which replica b's relay lands on. For the mesh to
 * be the only way between the two relay clients, the test's HAProxy config adds one
 * `use-server` line per agent host (by source address) to the shipped backend: everything of a
 * goes to r1, everything of b to r2. The test then checks where they really are (each replica
 * reports one connected node and one relay client) and fails naming the placement if not.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Host } from './lab/host.js';
import { connectedOn, replicaMetric, startHaDeployment, type HaDeployment, type ReplicaName } from './lab/ha.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { WeftAgent } from './lab/weft.js';

let ha: HaDeployment;
let serverHost: Host;
const agents = {} as Record<'a' | 'b', WeftAgent>;
/** Where everything was once a alone was connected. */
let placementWithA: Awaited<ReturnType<typeof placement>>;

/** Every UDP datagram in or out of the LAN interface is dropped; loopback (the relay sockets) is not. */
async function blockUdp(h: Host): Promise<void> {
  const file = h.tmpPath('block-udp.nft');
  writeFileSync(file, `table inet lab_block {
  chain in { type filter hook input priority 0; policy accept; iifname "lo" accept; meta l4proto udp counter drop; }
  chain out { type filter hook output priority 0; policy accept; oifname "lo" accept; meta l4proto udp counter drop; }
}
`);
  await h.execOk('nft', ['-f', file]);
}

const metric = (r: ReplicaName, series: string) => replicaMetric(serverHost, ha, r, series);

/** Where the agents are: connected nodes (control WebSockets) and relay clients, per replica. */
async function placement(): Promise<Record<ReplicaName, { nodes: number; relayClients: number }>> {
  const one = async (r: ReplicaName) => ({ nodes: await connectedOn(ha.replicas[r]), relayClients: await metric(r, 'weft_relay_clients') });
  return { r1: await one('r1'), r2: await one('r2') };
}

useLab({ name: 'harly', hosts: ['server', 'a', 'b'] }, async (lab) => {
  serverHost = lab.hosts.server;
  ha = await startHaDeployment(lab, serverHost, { pin: { r1: lab.hosts.a, r2: lab.hosts.b } });
  const authKey = await ha.replicas.r1.authKey('ops');
  await Promise.all([lab.hosts.a, lab.hosts.b].map((h) => blockUdp(h)));
  // a first, connected (control and relay) before b starts.
  agents.a = await WeftAgent.start(lab.hosts.a);
  await agents.a.upOk({ server: ha.balancerUrl, authKey, hostname: 'a' });
  await waitFor(async () => { const p = await placement(); return p.r1.nodes + p.r2.nodes === 1 && p.r1.relayClients + p.r2.relayClients === 1; },
    { timeoutMs: 20_000, intervalMs: 250, what: 'a connected (control and relay) through haproxy' });
  placementWithA = await placement();
  agents.b = await WeftAgent.start(lab.hosts.b);
  await agents.b.upOk({ server: ha.balancerUrl, authKey, hostname: 'b' });
});
afterAll(async () => {
  await ha?.pg.stop();
});

describe('two replicas behind one HAProxy address, the nodes on different ones, UDP blocked (lab case j)', () => {
  it('a lands on r1 and b on r2 through the balancer, and they ping each other relayed across the replicas\' relay mesh', async () => {
    await waitFor(async () => { const p = await placement(); return p.r1.nodes + p.r2.nodes === 2 && p.r1.relayClients + p.r2.relayClients === 2; },
      { timeoutMs: 20_000, intervalMs: 250, what: 'both agents connected (control and relay) through haproxy' });
    // a alone: its control and relay connections both on r1; then b's both on r2.
    expect(placementWithA, `with a alone connected, per replica (a's control and relay must both be on r1): ${JSON.stringify(placementWithA)}`)
      .toEqual({ r1: { nodes: 1, relayClients: 1 }, r2: { nodes: 0, relayClients: 0 } });
    const p = await placement();
    expect(p, `with b connected too, per replica (b's control and relay must both be on r2): ${JSON.stringify(p)}`)
      .toEqual({ r1: { nodes: 1, relayClients: 1 }, r2: { nodes: 1, relayClients: 1 } });
    for (const [name, r] of Object.entries(ha.replicas)) {
      expect(r.process.output(), `${name} starts its relay mesh`).toMatch(/Relay mesh: http:\/\/127\.0\.0\.1:808\d linking to/);
    }
    expect(await metric('r1', 'weft_relay_mesh_links'), 'r1 linked to r2').toBe(1);
    expect(await metric('r2', 'weft_relay_mesh_links'), 'r2 linked to r1').toBe(1);
    const meshBefore = {
      r1: await metric('r1', 'weft_relay_mesh_packets_total{direction="to_replica"}'),
      r2: await metric('r2', 'weft_relay_mesh_packets_total{direction="to_replica"}'),
    };

    const ipA = (await agents.a.status()).self!.ipv4;
    const ipB = (await agents.b.status()).self!.ipv4;
    const t0 = Date.now();
    await waitFor(async () => (await agents.a.host.ping(ipB, { count: 1, timeoutMs: 2000 })).ok, { timeoutMs: 60_000, intervalMs: 250, what: 'a (on r1) -> b (on r2) through the relay mesh' });
    console.info(`first ping a -> b across replicas after ${Date.now() - t0} ms`);
    const back = await agents.b.host.ping(ipA, { count: 5, intervalMs: 200, timeoutMs: 5000 });
    expect(back.ok, back.output).toBe(true);
    for (const [h, other] of [['a', 'b'], ['b', 'a']] as const) {
      const st = await agents[h].status();
      expect(st.server, `${h}'s server is the balancer`).toBe(ha.balancerUrl);
      const peer = st.peers.find((x) => x.name === other)!;
      expect(peer.path, `${h} -> ${other}: ${JSON.stringify(peer)}`).toBe('relay');
      // No STUN in this lab, so no regions: the control server's own relay, named "server".
      expect(st.relay).toEqual({ connected: true, transport: 'websocket', region: 'server' });
    }
    // a -> r1 -> r2 -> b and back: both replicas forwarded packets to the other over the mesh.
    const meshAfter = {
      r1: await metric('r1', 'weft_relay_mesh_packets_total{direction="to_replica"}'),
      r2: await metric('r2', 'weft_relay_mesh_packets_total{direction="to_replica"}'),
    };
    console.info(`mesh packets to the other replica during the pings: r1 ${meshAfter.r1 - meshBefore.r1}, r2 ${meshAfter.r2 - meshBefore.r2}`);
    expect(meshAfter.r1 - meshBefore.r1, 'r1 -> r2 mesh packets').toBeGreaterThanOrEqual(5);
    expect(meshAfter.r2 - meshBefore.r2, 'r2 -> r1 mesh packets').toBeGreaterThanOrEqual(5);
    for (const [name, r] of Object.entries(ha.replicas)) {
      expect(r.process.output(), `${name} linked out`).toContain('relay mesh: linked to a replica');
      expect(r.process.output(), `${name} linked in`).toContain('relay mesh: a replica linked in');
    }
    expect(ha.haproxy.running).toBe(true);
  });
});

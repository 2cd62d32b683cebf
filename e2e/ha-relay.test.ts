/**
 * Issue 9's lab case (j): two server replicas on one Postgres, the two nodes attached to
 * different replicas, UDP blocked: their pings pass relayed, the replicas' relays forwarding to
 * each other over the relay mesh (authenticated with the shared mesh secret). Each agent is
 * pointed at one replica's own address, so which replica holds which node is fixed rather than
 * up to a balancer (e2e/ha.test.ts covers the same replicas behind HAProxy).
 */
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../test-support/postgres.js';
import type { Host } from './lab/host.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { WeftAgent, WeftServer } from './lab/weft.js';

let pg: TestPostgres;
let replicas: Record<'r1' | 'r2', WeftServer>;
const agents = {} as Record<'a' | 'b', WeftAgent>;

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

useLab({ name: 'harly', hosts: ['server', 'a', 'b'] }, async (lab) => {
  pg = await startPostgres();
  const databaseUrl = `postgres://postgres@localhost/weft?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}`;
  const mesh = (self: number, peer: number) => ({ WEFT_DATABASE_URL: databaseUrl, WEFT_RELAY_MESH_URL: `http://127.0.0.1:${self}`, WEFT_RELAY_MESH_PEERS: `http://127.0.0.1:${peer}` });
  const r1 = await WeftServer.start(lab, { name: 'r1', port: 8081, env: mesh(8081, 8082), readyTimeoutMs: 180_000 });
  const r2 = await WeftServer.start(lab, { name: 'r2', port: 8082, env: mesh(8082, 8081), readyTimeoutMs: 180_000 });
  replicas = { r1, r2 };
  const authKey = await r1.authKey('ops');
  await Promise.all([lab.hosts.a, lab.hosts.b].map((h) => blockUdp(h)));
  agents.a = await WeftAgent.start(lab.hosts.a);
  agents.b = await WeftAgent.start(lab.hosts.b);
  await agents.a.upOk({ server: r1.url, authKey, hostname: 'a' });
  await agents.b.upOk({ server: r2.url, authKey, hostname: 'b' });
});
afterAll(async () => {
  await pg?.stop();
});

describe('two replicas, the nodes on different ones, UDP blocked (lab case j)', () => {
  it('the replicas link their relays, and the two nodes ping each other relayed across them', async () => {
    const ctxHosts = { a: agents.a, b: agents.b };
    for (const [name, r] of Object.entries(replicas)) {
      expect(r.process.output(), `${name} starts its relay mesh`).toMatch(/Relay mesh: http:\/\/127\.0\.0\.1:808\d linking to/);
    }
    const ipA = (await ctxHosts.a.status()).self!.ipv4;
    const ipB = (await ctxHosts.b.status()).self!.ipv4;
    const t0 = Date.now();
    await waitFor(async () => (await agents.a.host.ping(ipB, { count: 1, timeoutMs: 2000 })).ok, { timeoutMs: 60_000, intervalMs: 250, what: 'a (on r1) -> b (on r2) through the relay mesh' });
    console.info(`first ping a -> b across replicas after ${Date.now() - t0} ms`);
    const back = await agents.b.host.ping(ipA, { count: 5, intervalMs: 200, timeoutMs: 5000 });
    expect(back.ok, back.output).toBe(true);
    for (const [h, other] of [['a', 'b'], ['b', 'a']] as const) {
      const st = await ctxHosts[h].status();
      expect(st.server, `${h}'s server`).toBe(h === 'a' ? replicas.r1.url : replicas.r2.url);
      const peer = st.peers.find((p) => p.name === other)!;
      expect(peer.path, `${h} -> ${other}: ${JSON.stringify(peer)}`).toBe('relay');
      expect(st.relay).toEqual({ connected: true, transport: 'websocket' });
    }
    // Each replica dialled the other and took the other's link in: the path a -> r1 -> r2 -> b exists only through the mesh.
    for (const [name, r] of Object.entries(replicas)) {
      expect(r.process.output(), `${name} linked out`).toContain('relay mesh: linked to a replica');
      expect(r.process.output(), `${name} linked in`).toContain('relay mesh: a replica linked in');
    }
  });
});

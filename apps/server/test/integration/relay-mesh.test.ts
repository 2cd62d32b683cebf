/**
 * The relay mesh between two replicas on one Postgres (in-process servers, real WebSockets on
 * loopback): nodes whose relay sockets are on different replicas relay to each other, the
 * replicas' relays forwarding over links each authenticated with the shared mesh secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { keyBytes } from '@weft/crypto';
import { meshToken } from '@weft/relay';
import { RelayPeer } from '../../../../test-support/relay-peer.js';
import type { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { meshReplicaId, RELAY_MESH_PATH, RelayMeshDialer } from '../../src/agent/relay-mesh.js';
import { startServer, type TestServer } from '../support/server.js';
import { joinedAgent, upgradeOutcome } from '../support/replicas.js';

const quiet = { info: () => {}, warn: () => {} };

const node = (s: TestServer, key: string, hostname: string): Promise<SimAgent> => joinedAgent(s.url, hostname, key);

/** One series' value from a replica's exposition (labels as prom-client writes them); absent = undefined. */
async function series(s: TestServer, name: string, labels = ''): Promise<number | undefined> {
  const line = (await s.metrics!.exposition()).split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('relay mesh between two replicas on one Postgres', () => {
  let r1: TestServer;
  let r2: TestServer;
  let dialers: RelayMeshDialer[] = [];
  beforeAll(async () => {
    const url = await createTestDatabase();
    r1 = await startServer('postgres', { metrics: {} }, url);
    r2 = await startServer('postgres', { metrics: {} }, url);
    dialers = [
      new RelayMeshDialer({ relay: r1.relay!, secret: r1.relayMeshSecret!, selfUrl: r1.url, peers: [r2.url, r1.url], log: quiet }),
      new RelayMeshDialer({ relay: r2.relay!, secret: r2.relayMeshSecret!, selfUrl: r2.url, peers: [r1.url], log: quiet }),
    ];
  });
  afterAll(async () => {
    for (const d of dialers) d.close();
    await r1?.close();
    await r2?.close();
  });

  it('both replicas read one mesh secret from the database, and link to each other (never to themselves)', async () => {
    expect(r1.relayMeshSecret!.equals(r2.relayMeshSecret!)).toBe(true);
    await until(() => dialers[0]!.linked.length === 1 && dialers[1]!.linked.length === 1, 'both links up');
    expect(dialers[0]!.linked).toEqual([r2.url]);
    expect([await series(r1, 'weft_relay_mesh_links'), await series(r2, 'weft_relay_mesh_links')]).toEqual([1, 1]);
  });

  it('two nodes with relay sockets on different replicas exchange packets both ways, stamped with the authenticated sender key', async () => {
    await until(() => dialers.every((d) => d.linked.length === 1), 'links');
    await r1.api('POST', '/api/v1/users', { name: 'ops' });
    const key = (await r1.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    const a = await node(r1, key, 'mesh-a');
    const b = await node(r2, key, 'mesh-b');
    const ra = await RelayPeer.open(r1.url, a.machine.privateKey);
    const rb = await RelayPeer.open(r2.url, b.machine.privateKey);
    // Each replica's mapper must know both nodes (the change outbox carries them across) and the
    // other replica must have announced the far node before a packet can cross.
    const [ida, idb] = [a.self!.id, b.self!.id];
    await until(() => r1.mapper.mayRelay(ida, idb) && r2.mapper.mayRelay(idb, ida), 'both mappers let the pair relay');
    let sent = 0;
    await until(() => {
      ra.send(b.node.publicKey, Buffer.from(`a->b ${sent++}`));
      return rb.packets.length > 0;
    }, 'a packet across the mesh');
    for (let i = 0; i < 20; i++) ra.send(b.node.publicKey, Buffer.from(`burst ${i}`));
    rb.send(a.node.publicKey, Buffer.from('b->a'));
    await rb.waitFor(() => rb.packets.filter((p) => p.packet.toString().startsWith('burst')).length === 20, 5000, '20 packets at b');
    await ra.waitFor(() => ra.packets.length === 1, 5000, 'reply at a');
    expect(rb.packets.every((p) => p.from.equals(Buffer.from(keyBytes(a.node.publicKey))))).toBe(true);
    expect(ra.packets[0]!.from.equals(Buffer.from(keyBytes(b.node.publicKey)))).toBe(true);
    expect(r1.relay!.counters.mesh.forwardedOut).toBeGreaterThanOrEqual(21);
    expect(r2.relay!.counters.mesh.deliveredIn).toBeGreaterThanOrEqual(21);
    expect(r2.relay!.counters.mesh.forwardedOut).toBe(1);
    // The same as Prometheus series, by direction.
    expect(await series(r1, 'weft_relay_mesh_packets_total', 'direction="to_replica"')).toBe(r1.relay!.counters.mesh.forwardedOut);
    expect(await series(r2, 'weft_relay_mesh_packets_total', 'direction="from_replica"')).toBe(r2.relay!.counters.mesh.deliveredIn);
    expect(await series(r2, 'weft_relay_mesh_packets_total', 'direction="to_replica"')).toBe(1);
    expect(await series(r1, 'weft_relay_mesh_packets_total', 'direction="from_replica"')).toBe(r1.relay!.counters.mesh.deliveredIn);
    expect(r1.relay!.counters.mesh.deliveredIn).toBeGreaterThanOrEqual(1);
    expect([await series(r2, 'weft_relay_mesh_bad_frames_total'), await series(r2, 'weft_relay_mesh_packets_dropped_total')]).toEqual([0, 0]);
    ra.close();
    rb.close();
    a.close();
    b.close();
  });

  it('a mesh link without a valid token is refused before the upgrade (401 problem+json); one with it is accepted', async () => {
    const open = (token: string) => upgradeOutcome(`${r1.url}${RELAY_MESH_PATH}`, `Bearer ${token}`);
    const refusedBefore = await series(r1, 'weft_relay_mesh_links_refused_total');
    expect(refusedBefore).toBe(0);
    const wrong = await open(meshToken(Buffer.alloc(32, 1), 'intruder', Date.now()));
    expect(wrong).toMatchObject({ status: 401, body: { code: 'machine_unauthorized', detail: expect.stringContaining('MAC') } });
    const stale = await open(meshToken(r1.relayMeshSecret!, 'old', Date.now() - 3_600_000));
    expect(stale).toMatchObject({ status: 401, body: { detail: expect.stringContaining('skew') } });
    expect(await open('')).toMatchObject({ status: 401 });
    expect(await series(r1, 'weft_relay_mesh_links_refused_total')).toBe(3);
    expect(await open(meshToken(r1.relayMeshSecret!, meshReplicaId('http://127.0.0.1:1'), Date.now()))).toEqual({ status: 101 });
  });
});

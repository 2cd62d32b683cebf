/**
 * A standalone relay region (apps/relay region-relay.ts, the code `weft-relay --server` runs) joined
 * to a real server over `GET /api/v1/relay/region`, with real WebSocket clients on loopback: who
 * gets in is the server's answer, packets pass only between pairs the server allows, the server's
 * cut-offs and policy changes reach the relay, and nodes homed on the server and on the region
 * reach each other over the link.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { keyBytes } from '@weft/crypto';
import { CloseCode } from '@weft/protocol';
import { meshToken, PeerGoneReason } from '@weft/relay';
import { RegionRelay } from '../../../relay/src/region-relay.js';
import { RelayPeer } from '../../../../test-support/relay-peer.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { RELAY_REGION_PATH } from '../../src/agent/relay-region.js';
import { upgradeOutcome } from '../support/replicas.js';
import { startServer, type TestServer } from '../support/server.js';

const quiet = { info: () => {}, warn: () => {} };

async function node(s: TestServer, key: string, hostname: string): Promise<SimAgent> {
  const a = new SimAgent(s.url, hostname);
  await a.register(key);
  await a.connect();
  await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
  return a;
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; type: string; body: any }> {
  const err = (await p.then(() => null, (e: unknown) => e)) as { refused?: { status: number; type: string; body: any } } | null;
  if (!err?.refused) throw new Error(`expected the upgrade to be refused, got ${String(err)}`);
  return err.refused;
}

async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Sends until one packet arrives (the far side's PRESENT may still be on its way), then a burst of `n`. */
async function exchange(from: RelayPeer, to: RelayPeer, toKey: string, tag: string, n = 5): Promise<void> {
  const before = to.packets.length;
  await until(() => {
    from.send(toKey as never, Buffer.from(`${tag} probe`));
    return to.packets.length > before;
  }, `a packet ${tag}`);
  for (let i = 0; i < n; i++) from.send(toKey as never, Buffer.from(`${tag} ${i}`));
  await to.waitFor(() => to.packets.filter((p) => p.packet.toString().startsWith(`${tag} `) && !p.packet.toString().endsWith('probe')).length === n, 5000, `${n} packets ${tag}`);
}

describe('standalone relay region joined to a server', () => {
  let s: TestServer;
  let region: RegionRelay;
  let regionUrl: string;
  let key: string;
  beforeAll(async () => {
    s = await startServer('pglite', {});
    region = await RegionRelay.start({ listen: '127.0.0.1:0', serverUrls: [s.url], secret: s.relayMeshSecret!, replicaId: 'region-2', log: quiet });
    regionUrl = `http://127.0.0.1:${region.address().port}`;
    await until(() => region.linked, 'the region linked to the server');
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
  });
  afterAll(async () => {
    await region?.close();
    await s?.close();
  });

  it('the server refuses a region link without a valid mesh token (401 problem+json)', async () => {
    const status = await upgradeOutcome(`${s.url}${RELAY_REGION_PATH}`, `Bearer ${meshToken(Buffer.alloc(32, 7), 'intruder', Date.now())}`);
    expect(status).toMatchObject({ status: 401, body: { code: 'machine_unauthorized', detail: expect.stringContaining('MAC') } });
  });

  it('a relay that cannot prove the secret to itself is never linked, and refuses clients 503 retryable', async () => {
    const lost = await RegionRelay.start({ listen: '127.0.0.1:0', serverUrls: [s.url], secret: Buffer.alloc(32, 9), replicaId: 'wrong-secret', log: quiet });
    try {
      const a = await node(s, key, 'region-lost');
      const r = await refusal(RelayPeer.open(`http://127.0.0.1:${lost.address().port}`, a.machine.privateKey));
      expect(r).toMatchObject({ status: 503, type: 'application/problem+json', body: { code: 'relay_unavailable', retryable: true } });
      expect(lost.linked).toBe(false);
      a.close();
    } finally {
      await lost.close();
    }
  });

  it('a bad machine token is refused with the server\'s own problem (401), before the upgrade', async () => {
    const r = await new Promise<{ status: number; body: any }>((resolve) => {
      const ws = new WebSocket(`${regionUrl.replace(/^http/, 'ws')}/api/v1/relay`, { headers: { authorization: 'Bearer not-a-token' } });
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
    });
    expect(r).toMatchObject({ status: 401, body: { code: 'machine_unauthorized' } });
  });

  it('two nodes on the region relay to each other, stamped with the keys the server authenticated', async () => {
    const a = await node(s, key, 'region-a');
    const b = await node(s, key, 'region-b');
    const ra = await RelayPeer.open(regionUrl, a.machine.privateKey);
    const rb = await RelayPeer.open(regionUrl, b.machine.privateKey);
    expect(Buffer.from(ra.info!.key).equals(Buffer.from(keyBytes(a.node.publicKey)))).toBe(true);
    await exchange(ra, rb, b.node.publicKey, 'a->b');
    await exchange(rb, ra, a.node.publicKey, 'b->a');
    expect(rb.packets.every((p) => p.from.equals(Buffer.from(keyBytes(a.node.publicKey))))).toBe(true);
    for (const x of [ra, rb, a, b]) x.close();
  });

  it('a node homed on the server and one homed on the region reach each other both ways (over the region link)', async () => {
    const a = await node(s, key, 'home-server');
    const b = await node(s, key, 'home-region');
    const ra = await RelayPeer.open(s.url, a.machine.privateKey);
    const rb = await RelayPeer.open(regionUrl, b.machine.privateKey);
    await exchange(ra, rb, b.node.publicKey, 'srv->reg');
    await exchange(rb, ra, a.node.publicKey, 'reg->srv');
    expect(ra.packets.every((p) => p.from.equals(Buffer.from(keyBytes(b.node.publicKey))))).toBe(true);
    expect(s.relay!.counters.mesh.forwardedOut).toBeGreaterThanOrEqual(5);
    expect(region.relay.counters.mesh.deliveredIn).toBeGreaterThanOrEqual(5);
    for (const x of [ra, rb, a, b]) x.close();
  });

  it('deleting a node closes its socket on the region with NodeDeleted, and it is refused at the door after', async () => {
    const v = await node(s, key, 'region-victim');
    const w = await node(s, key, 'region-witness');
    const rv = await RelayPeer.open(regionUrl, v.machine.privateKey);
    const rw = await RelayPeer.open(regionUrl, w.machine.privateKey);
    await exchange(rw, rv, v.node.publicKey, 'before', 1);
    expect((await s.api('DELETE', `/api/v1/nodes/${v.self!.id}`)).status).toBe(200);
    await rv.waitFor(() => rv.closed !== null, 5000, 'victim relay closed');
    expect(rv.closed!.code).toBe(CloseCode.NodeDeleted);
    await rw.waitFor(() => rw.gone.length === 1, 5000, 'witness told');
    expect(await refusal(RelayPeer.open(regionUrl, v.machine.privateKey))).toMatchObject({ status: 401 });
    rw.close();
    w.close();
  });

  it('a suspended user\'s node is cut on the region with UserSuspended', async () => {
    await s.api('POST', '/api/v1/users', { name: 'temp' });
    const tkey = (await s.api('POST', '/api/v1/authkeys', { user: 'temp' })).body.key;
    const t = await node(s, tkey, 'pol-temp');
    const rt = await RelayPeer.open(regionUrl, t.machine.privateKey);
    expect((await s.api('POST', '/api/v1/users/temp/suspend')).status).toBe(200);
    await rt.waitFor(() => rt.closed !== null, 5000, 'suspended relay socket closed');
    expect(rt.closed!.code).toBe(CloseCode.UserSuspended);
    t.close();
  });

  // Last: it leaves a deny-all policy in force.
  it('a policy that stops two nodes seeing each other stops the region relaying between them', async () => {
    const a = await node(s, key, 'pol-a');
    const b = await node(s, key, 'pol-b');
    const ra = await RelayPeer.open(regionUrl, a.machine.privateKey);
    const rb = await RelayPeer.open(regionUrl, b.machine.privateKey);
    await exchange(ra, rb, b.node.publicKey, 'allowed', 1);
    expect((await s.api('PUT', '/api/v1/policy', { text: JSON.stringify({ acls: [] }) }, { 'if-match': '"0"' })).status).toBe(200);
    const refusedBefore = region.relay.counters.dropped.notAllowed;
    await until(() => {
      ra.send(b.node.publicKey, Buffer.from('denied?'));
      return region.relay.counters.dropped.notAllowed > refusedBefore;
    }, 'the region refusing the pair');
    await ra.waitFor(() => ra.gone.some((g) => g.reason === PeerGoneReason.NotAllowed), 5000, 'sender told not allowed');
    // Once the push is in, every packet of the pair is refused: 5 more, 5 more refusals, none delivered.
    // Once the push is in, every packet of the pair is refused (a 'denied?' still in flight may be counted too).
    const refused = region.relay.counters.dropped.notAllowed;
    const forwarded = region.relay.counters.packetsForwarded;
    for (let i = 0; i < 5; i++) ra.send(b.node.publicKey, Buffer.from('after the policy'));
    await until(() => region.relay.counters.dropped.notAllowed >= refused + 5, '5 more refusals');
    expect(region.relay.counters.packetsForwarded).toBe(forwarded);
    expect(rb.packets.some((p) => p.packet.toString() === 'after the policy')).toBe(false);
    for (const x of [ra, rb, a, b]) x.close();
  });
});

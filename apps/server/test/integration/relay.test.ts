/**
 * The embedded packet relay (`GET /api/v1/relay`) with real WebSocket clients on a loopback port:
 * forwarding by node key, authentication at the door, drops and their counters, cut-off.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { generateMachineKey, generateNodeKey, keyBytes, signMachineToken } from '@weft/crypto';
import { CloseCode } from '@weft/protocol';
import { encodeFrame, FRAME_SEND_PACKET, PeerGoneReason, RelayClose, relayOverStunPort, RelayUdpClient, StunServer, type UdpTicket } from '@weft/relay';
import { RelayPeer, RELAY_PATH } from '../../../../test-support/relay-peer.js';
import type { SimAgent } from '../../../../test-support/sim-agent.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

/** A registered node with its control socket up, as an agent is before it opens the relay. */
const node = (s: TestServer, key: string, hostname: string): Promise<SimAgent> => joinedAgent(s.url, hostname, key);

/** One series' value in a text exposition (labels exactly as given, in prom-client's order); absent = undefined. */
function series(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; type: string; body: any }> {
  const err = (await p.then(() => null, (e: unknown) => e)) as { refused?: { status: number; type: string; body: any } } | null;
  if (!err?.refused) throw new Error(`expected the upgrade to be refused, got ${String(err)}`);
  return err.refused;
}

describe.each(BACKENDS)('relay on %s', (backend) => {
  let s: TestServer;
  let key: string;
  beforeAll(async () => {
    s = await startServer(backend, { relay: { maxQueueBytes: 256 * 1024 }, metrics: {} });
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    await s.api('POST', '/api/v1/users', { name: 'contractor' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
  });
  afterAll(async () => s?.close());

  it('two nodes exchange packets both ways; the sender key is the one the server authenticated', async () => {
    const a = await node(s, key, 'relay-a');
    const b = await node(s, key, 'relay-b');
    const ra = await RelayPeer.open(s.url, a.machine.privateKey);
    const rb = await RelayPeer.open(s.url, b.machine.privateKey);
    expect(ra.info!.key.equals(Buffer.from(keyBytes(a.node.publicKey)))).toBe(true);
    for (let i = 0; i < 100; i++) ra.send(b.node.publicKey, Buffer.from(`a->b ${i}`));
    rb.send(a.node.publicKey, Buffer.from('b->a'));
    await rb.waitFor(() => rb.packets.length === 100, 5000, '100 packets at b');
    await ra.waitFor(() => ra.packets.length === 1, 5000, 'reply at a');
    expect(rb.packets.map((p) => p.packet.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `a->b ${i}`));
    expect(rb.packets.every((p) => p.from.equals(Buffer.from(keyBytes(a.node.publicKey))))).toBe(true);
    expect(ra.packets[0]!.from.equals(Buffer.from(keyBytes(b.node.publicKey)))).toBe(true);
    expect(s.relay!.counters.packetsForwarded).toBeGreaterThanOrEqual(101);
    ra.close();
    rb.close();
  });

  it('a bad or missing machine token is 401 problem+json before the upgrade', async () => {
    const stranger = generateMachineKey();
    const unknown = await refusal(RelayPeer.open(s.url, stranger.privateKey));
    expect(unknown).toMatchObject({ status: 401, type: expect.stringContaining('application/problem+json'), body: { code: 'machine_unauthorized' } });
    const garbage = await refusal(
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}${RELAY_PATH}`, { headers: { authorization: 'Bearer not.a.jwt' } });
        ws.on('open', resolve);
        ws.on('unexpected-response', (_req, res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => reject({ refused: { status: res.statusCode, type: res.headers['content-type'], body: JSON.parse(text) } }));
        });
      }),
    );
    expect(garbage).toMatchObject({ status: 401, body: { code: 'machine_unauthorized', retryable: false } });
  });

  it('a node whose user is suspended is refused at the door, and packets to its key are not delivered (peer gone once)', async () => {
    const ckey = (await s.api('POST', '/api/v1/authkeys', { user: 'contractor', reusable: true })).body.key;
    const c = await node(s, ckey, 'contractor-laptop');
    const a = await node(s, key, 'relay-watcher');
    const rc = await RelayPeer.open(s.url, c.machine.privateKey);
    const ra = await RelayPeer.open(s.url, a.machine.privateKey);
    expect((await s.api('POST', '/api/v1/users/contractor/suspend')).status).toBe(200);
    await rc.waitFor(() => rc.closed !== null, 5000, 'suspended relay socket closed');
    expect(rc.closed!.code).toBe(CloseCode.UserSuspended);
    expect(await refusal(RelayPeer.open(s.url, c.machine.privateKey))).toMatchObject({ status: 403, body: { code: 'user_suspended' } });
    for (let i = 0; i < 10; i++) ra.send(c.node.publicKey, Buffer.from('hello?'));
    await ra.waitFor(() => ra.gone.length === 1, 5000, 'peer gone');
    expect(ra.gone[0]!.reason).toBe(PeerGoneReason.NotConnected);
    await new Promise((r) => setTimeout(r, 100));
    expect(ra.gone).toHaveLength(1);
    await s.api('POST', '/api/v1/users/contractor/resume');
    ra.close();
  });

  it('a pair the mapper does not let relay is dropped and counted, and the sender told not-allowed', async () => {
    // Today every live node sees every live node, so no connected pair is refused by the netmap;
    // the policy engine will answer mapper.mayRelay. Here it says no for one pair, as policy would.
    const a = await node(s, key, 'policy-a');
    const b = await node(s, key, 'policy-b');
    const ra = await RelayPeer.open(s.url, a.machine.privateKey);
    const rb = await RelayPeer.open(s.url, b.machine.privateKey);
    const real = s.mapper.mayRelay.bind(s.mapper);
    const spy = vi.spyOn(s.mapper, 'mayRelay').mockImplementation((src, dst) => (src === a.self!.id && dst === b.self!.id ? false : real(src, dst)));
    try {
      const before = s.relay!.counters.dropped.notAllowed;
      ra.send(b.node.publicKey, Buffer.from('denied'));
      ra.send(b.node.publicKey, Buffer.from('denied'));
      rb.send(a.node.publicKey, Buffer.from('allowed'));
      await ra.waitFor(() => ra.gone.length === 1 && ra.packets.length === 1, 5000, 'not-allowed and the other direction');
      expect(ra.gone[0]!.reason).toBe(PeerGoneReason.NotAllowed);
      expect(s.relay!.counters.dropped.notAllowed - before).toBe(2);
      expect(rb.packets).toHaveLength(0);
    } finally {
      spy.mockRestore();
    }
    ra.close();
    rb.close();
  });

  it('the mapper lets live nodes relay to each other, never to themselves or to unknown ids', async () => {
    const a = await node(s, key, 'mayrelay-a');
    const b = await node(s, key, 'mayrelay-b');
    expect(s.mapper.mayRelay(a.self!.id, b.self!.id)).toBe(true);
    expect(s.mapper.mayRelay(a.self!.id, a.self!.id)).toBe(false);
    expect(s.mapper.mayRelay(a.self!.id, 2_000_000_000)).toBe(false);
  });

  it('deleting a node closes its relay socket with NodeDeleted; its senders are told peer gone', async () => {
    const v = await node(s, key, 'relay-victim');
    const w = await node(s, key, 'relay-witness');
    const rv = await RelayPeer.open(s.url, v.machine.privateKey);
    const rw = await RelayPeer.open(s.url, w.machine.privateKey);
    rw.send(v.node.publicKey, Buffer.from('before'));
    await rv.waitFor(() => rv.packets.length === 1);
    expect((await s.api('DELETE', `/api/v1/nodes/${v.self!.id}`)).status).toBe(200);
    await rv.waitFor(() => rv.closed !== null, 5000, 'victim relay closed');
    expect(rv.closed!.code).toBe(CloseCode.NodeDeleted);
    await rw.waitFor(() => rw.gone.length === 1, 5000, 'witness told');
    expect(await refusal(RelayPeer.open(s.url, v.machine.privateKey))).toMatchObject({ status: 401 });
    rw.close();
  });

  it('a node that rotates its node key loses the relay socket bound to the old key, and reconnects with the new one', async () => {
    const r = await node(s, key, 'rotator');
    const relayed = await RelayPeer.open(s.url, r.machine.privateKey);
    const fresh = generateNodeKey();
    const res = await fetch(`${s.url}/agent/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signMachineToken(r.machine.privateKey)}` },
      body: JSON.stringify({ nodeKey: fresh.publicKey, hostname: 'rotator' }),
    });
    expect(res.status).toBe(200);
    await relayed.waitFor(() => relayed.closed !== null, 5000, 'old-key relay socket closed');
    expect(relayed.closed).toEqual({ code: 4409, reason: 'node key changed; reconnect' });
    const again = await RelayPeer.open(s.url, r.machine.privateKey);
    expect(again.info!.key.equals(Buffer.from(keyBytes(fresh.publicKey)))).toBe(true);
    again.close();
  });

  it('a bad frame closes only that client, with the reason; the others keep relaying', async () => {
    const a = await node(s, key, 'bad-framer');
    const b = await node(s, key, 'good-1');
    const c = await node(s, key, 'good-2');
    const [ra, rb, rc] = await Promise.all([a, b, c].map((n) => RelayPeer.open(s.url, n.machine.privateKey)));
    ra!.socket.send('{"type":"hello"}');
    await ra!.waitFor(() => ra!.closed !== null);
    expect(ra!.closed).toEqual({ code: RelayClose.BadFrame, reason: 'relay frames are binary WebSocket messages' });
    const rb2 = rb!;
    rb2.socket.send(encodeFrame(FRAME_SEND_PACKET, keyBytes(c.node.publicKey), Buffer.from('still here')), { binary: true });
    await rc!.waitFor(() => rc!.packets.length === 1);
    rb!.close();
    rc!.close();
  });

  it('a destination that does not read fills its queue: newer packets are dropped and counted (metrics too)', async () => {
    const a = await node(s, key, 'flood-a');
    const b = await node(s, key, 'flood-b');
    const ra = await RelayPeer.open(s.url, a.machine.privateKey);
    const rb = await RelayPeer.open(s.url, b.machine.privateKey);
    rb.keep = false;
    rb.socket.pause();
    // 64 MB at a reader that takes nothing: kernel buffers on loopback hold a few MB at most.
    const packet = Buffer.alloc(60 * 1024, 1);
    for (let i = 0; i < 1100 && s.relay!.counters.dropped.queueFull === 0; i++) {
      while (ra.socket.bufferedAmount > 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
      ra.send(b.node.publicKey, packet);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await ra.waitFor(() => s.relay!.counters.dropped.queueFull > 0, 10_000, 'a queue-full drop');
    const text = await s.metrics!.exposition();
    expect(text).toMatch(/weft_relay_packets_dropped_total\{reason="queue_full"\} [1-9]/);
    expect(text).toMatch(/weft_relay_clients ([2-9]|\d\d+)\n/);
    // The sender is not punished for its peer's queue.
    expect(ra.closed).toBeNull();
    rb.socket.terminate();
    ra.close();
  });
  it('over UDP on the STUN port: a bound node relays to a UDP peer and to a WebSocket-only peer, and a stranger on that port gets nothing', async () => {
    const stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    try {
      relayOverStunPort(s.relay!, stun);
      const m0 = await s.metrics!.exposition();
      const [a, b, c] = [await node(s, key, 'udp-a'), await node(s, key, 'udp-b'), await node(s, key, 'ws-c')];
      const [ra, rb, rc] = await Promise.all([a, b, c].map((n) => RelayPeer.open(s.url, n.machine.privateKey)));
      const ticket = (p: RelayPeer) => (p.info as unknown as { udp?: UdpTicket }).udp!;
      expect(ticket(ra!).port).toBe(stun.address().port);
      const got: { at: string; from: Buffer; packet: string }[] = [];
      const udp = async (p: RelayPeer, at: string) => {
        const u = await RelayUdpClient.open({ ticket: ticket(p), host: '127.0.0.1', bindIntervalMs: 10_000, retryMs: 100, deadAfterMs: 25_000, onPacket: (from, packet) => got.push({ at, from: Buffer.from(from), packet: packet.toString() }) });
        await p.waitFor(() => u.usable, 5000, 'a bind-ack');
        return u;
      };
      const [ua, ub] = [await udp(ra!, 'a'), await udp(rb!, 'b')];
      expect(s.relay!.udpBound(a.self!.id) && s.relay!.udpBound(b.self!.id)).toBe(true);
      const before = { ...s.relay!.counters.udp };
      for (let i = 0; i < 50; i++) ua.send(keyBytes(b.node.publicKey), Buffer.from(`a->b ${i}`));
      ua.send(keyBytes(c.node.publicKey), Buffer.from('a->c'));
      rc!.send(a.node.publicKey, Buffer.from('c->a over ws'));
      await rc!.waitFor(() => rc!.packets.length === 1 && got.filter((g) => g.at === 'b').length === 50 && got.some((g) => g.at === 'a'), 5000, 'udp deliveries');
      expect(got.filter((g) => g.at === 'b').map((g) => g.packet)).toEqual(Array.from({ length: 50 }, (_, i) => `a->b ${i}`));
      expect(got.every((g) => g.at !== 'b' || g.from.equals(Buffer.from(keyBytes(a.node.publicKey))))).toBe(true);
      // The WebSocket-only peer gets a's UDP packet on its WebSocket, stamped with a's key; c's reply reaches a over UDP.
      expect([rc!.packets[0]!.packet.toString(), rc!.packets[0]!.from.equals(Buffer.from(keyBytes(a.node.publicKey)))]).toEqual(['a->c', true]);
      expect(got.find((g) => g.at === 'a')).toMatchObject({ packet: 'c->a over ws' });
      expect(rb!.packets).toHaveLength(0);
      expect(s.relay!.counters.udp.packetsIn - before.packetsIn).toBe(51);
      expect(s.relay!.counters.udp.packetsOut - before.packetsOut).toBe(51);
      const m1 = await s.metrics!.exposition();
      // A stranger sending relay datagrams to the port hears nothing back.
      const { createSocket } = await import('node:dgram');
      const stranger = createSocket('udp4');
      const heard: Buffer[] = [];
      stranger.on('message', (m) => heard.push(m));
      await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', () => r()));
      const t = ticket(ra!);
      stranger.send(Buffer.concat([Buffer.of(0xa3), t.id, Buffer.from(keyBytes(b.node.publicKey)), Buffer.from('stolen id')]), stun.address().port, '127.0.0.1');
      stranger.send(Buffer.concat([Buffer.of(0xa1), t.id, Buffer.alloc(24)]), stun.address().port, '127.0.0.1'); // sequence 0: replayed
      stranger.send(Buffer.of(0xa1, 1, 2, 3), stun.address().port, '127.0.0.1'); // too short: malformed
      stranger.send(Buffer.concat([Buffer.of(0xa1), Buffer.alloc(8, 0xee), Buffer.alloc(24)]), stun.address().port, '127.0.0.1'); // no such session
      const far = Buffer.alloc(8);
      far.writeBigUInt64BE(1n << 62n);
      stranger.send(Buffer.concat([Buffer.of(0xa1), t.id, far, Buffer.alloc(16)]), stun.address().port, '127.0.0.1'); // fresh sequence, zero MAC
      await new Promise((r) => setTimeout(r, 300));
      expect(heard).toHaveLength(0);
      expect(got.some((g) => g.packet === 'stolen id')).toBe(false);
      // The same as Prometheus series: binds by result, packets and payload bytes by direction.
      const m2 = await s.metrics!.exposition();
      const moved = (a: string, b: string, name: string, labels = '') => (series(b, name, labels) ?? NaN) - (series(a, name, labels) ?? 0);
      expect(moved(m0, m1, 'weft_relay_udp_binds_total', 'result="accepted"')).toBeGreaterThanOrEqual(2);
      expect(series(m1, 'weft_relay_udp_binds_total', 'result="accepted"')).toBe(s.relay!.counters.udp.binds);
      expect(['malformed', 'unknown_session', 'replayed', 'bad_mac'].map((r) => moved(m1, m2, 'weft_relay_udp_binds_total', `result="${r}"`))).toEqual([1, 1, 1, 1]);
      expect(moved(m1, m2, 'weft_relay_udp_unbound_total')).toBe(1);
      expect(series(m2, 'weft_relay_udp_unbinds_total')).toBe(s.relay!.counters.udp.unbinds);
      const ab = Array.from({ length: 50 }, (_, i) => `a->b ${i}`.length).reduce((x, y) => x + y, 0);
      expect([moved(m0, m1, 'weft_relay_udp_packets_total', 'direction="in"'), moved(m0, m1, 'weft_relay_udp_packets_total', 'direction="out"')]).toEqual([51, 51]);
      expect(moved(m0, m1, 'weft_relay_udp_bytes_total', 'direction="in"')).toBe(ab + 'a->c'.length);
      expect(moved(m0, m1, 'weft_relay_udp_bytes_total', 'direction="out"')).toBe(ab + 'c->a over ws'.length);
      // No mesh on a single replica: the series are there, at 0.
      for (const [name, labels] of [['weft_relay_mesh_links', ''], ['weft_relay_mesh_packets_total', 'direction="to_replica"'], ['weft_relay_mesh_packets_total', 'direction="from_replica"'],
        ['weft_relay_mesh_packets_dropped_total', ''], ['weft_relay_mesh_bad_frames_total', ''], ['weft_relay_mesh_links_refused_total', '']] as const) {
        expect(series(m2, name, labels), `${name}{${labels}}`).toBe(0);
      }
      stranger.close();
      ua.close();
      ub.close();
      for (const p of [ra, rb, rc]) p!.close();
    } finally {
      stun.relay = undefined;
      await stun.close();
    }
  });
});

describe('relay switched off', () => {
  it('relay off: no route, the upgrade is 404', async () => {
    const s = await startServer('pglite', { relay: false });
    try {
      await s.api('POST', '/api/v1/users', { name: 'ops' });
      const key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key;
      const a = await node(s, key, 'no-relay');
      expect(s.relay).toBeNull();
      expect((await refusal(RelayPeer.open(s.url, a.machine.privateKey))).status).toBe(404);
      // The agent channel still works (node() waited for its netmap).
      expect(a.closed).toBeNull();
      a.close();
    } finally {
      await s.close();
    }
  });
});

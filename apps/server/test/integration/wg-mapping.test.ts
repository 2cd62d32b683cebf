/**
 * The WireGuard responder on a real server and a real UDP port: nodes get the responder in their
 * netmap; an authenticated initiation from a node's UDP socket makes the source address that
 * node's reflexive endpoint (the node sees it as `self.reflexiveEndpoint`, peers first in its
 * endpoints, its own reported candidates kept after it); replays, unknown keys and junk are
 * counted and change nothing, and STUN on the same port keeps answering.
 */
import { createSocket, type Socket } from 'node:dgram';
import { keyBytes } from '@weft/crypto';
import { bindingRequest, StunServer } from '@weft/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { buildInitiation } from '../../../../test-support/wg-initiator.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

describe.each(BACKENDS)('WireGuard responder on %s', (backend) => {
  let s: TestServer;
  let stun: StunServer;
  let key: string;
  let responderPublic: Buffer;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    s = await startServer(backend, { wgResponder: { endpoint: stun.toString() }, metrics: {} });
    stun.wireGuard = (msg, from) => s.wgMapping!.receive(msg, from);
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
  });
  afterAll(async () => {
    for (const sock of sockets) sock.close();
    await stun?.close();
    await s?.close();
  });

  async function joined(hostname: string): Promise<SimAgent> {
    return joinedAgent(s.url, hostname, key);
  }
  async function udp(): Promise<Socket> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    sockets.push(sock);
    return sock;
  }
  const sendFrom = (sock: Socket, msg: Buffer) => new Promise<void>((r) => sock.send(msg, stun.address().port, '127.0.0.1', () => r()));
  const initiationOf = (a: SimAgent, atMs = Date.now()) => buildInitiation(keyBytes(a.node.privateKey), responderPublic, atMs);

  it('every netmap names the responder: the deployment key and the UDP port', async () => {
    const a = await joined('netmap-reader');
    const responders = a.received[0]!.msg.wgResponders as { publicKey: string; endpoint: string }[];
    expect(responders).toHaveLength(1);
    expect(responders[0]!.endpoint).toBe(stun.toString());
    expect(responders[0]!.publicKey).toMatch(/^nodekey:[0-9a-f]{64}$/);
    responderPublic = Buffer.from(responders[0]!.publicKey.slice('nodekey:'.length), 'hex');
    // The same key on every read (one per deployment, kept in the database).
    const again = Buffer.from(await s.state.wgResponderPrivateKey());
    expect(again).toHaveLength(32);
    expect(Buffer.from(await s.state.wgResponderPrivateKey()).equals(again)).toBe(true);
    a.close();
  });

  it("an authenticated initiation's source becomes the node's reflexive endpoint: the node sees it in self, peers first in its endpoints", async () => {
    const a = await joined('behind-nat');
    const b = await joined('watcher');
    a.send(JSON.stringify({ type: 'endpoints', endpoints: ['10.1.2.3:41641'] }));
    await b.waitFor(() => b.peers.get(a.self!.id)?.endpoints[0] === '10.1.2.3:41641', 5000, 'local endpoint');
    const sock = await udp();
    const seen = `127.0.0.1:${sock.address().port}`;
    const before = s.wgMapping!.counters.accepted;
    await sendFrom(sock, initiationOf(a));
    await a.waitFor(() => a.self?.reflexiveEndpoint === seen, 5000, 'self.reflexiveEndpoint');
    await b.waitFor(() => b.peers.get(a.self!.id)?.endpoints.join() === `${seen},10.1.2.3:41641`, 5000, 'reflexive first in peer endpoints');
    expect(s.wgMapping!.counters.accepted).toBe(before + 1);
    // A later report of local candidates keeps the reflexive one first.
    a.send(JSON.stringify({ type: 'endpoints', endpoints: ['10.1.2.3:41641', '10.9.9.9:41641'] }));
    await b.waitFor(() => b.peers.get(a.self!.id)?.endpoints.join() === `${seen},10.1.2.3:41641,10.9.9.9:41641`, 5000, 'merged after a report');
    // REST shows what peers get.
    expect((await s.api('GET', `/api/v1/nodes/${a.self!.id}`)).body.endpoints[0]).toBe(seen);
    // A new netmap carries it too.
    const fresh = await joined('late-joiner');
    expect(fresh.peers.get(a.self!.id)?.endpoints[0]).toBe(seen);
    // The mapping moves (NAT rebinding): the newer source wins.
    const moved = await udp();
    await new Promise((r) => setTimeout(r, 1100)); // past the per-node write window
    await sendFrom(moved, initiationOf(a));
    await a.waitFor(() => a.self?.reflexiveEndpoint === `127.0.0.1:${moved.address().port}`, 5000, 'moved mapping');
    for (const x of [a, b, fresh]) x.close();
  });

  it('a replayed initiation, one from an unknown key and junk are counted and change nothing; STUN keeps answering on the port', async () => {
    const a = await joined('replayed');
    const sock = await udp();
    const first = initiationOf(a);
    await sendFrom(sock, first);
    await a.waitFor(() => a.self?.reflexiveEndpoint === `127.0.0.1:${sock.address().port}`, 5000, 'first accepted');
    const c0 = { ...s.wgMapping!.counters };
    const attacker = await udp();
    await sendFrom(attacker, first); // the same bytes from elsewhere: a replay
    const stranger = new SimAgent(s.url, 'never-registered');
    await sendFrom(attacker, buildInitiation(keyBytes(stranger.node.privateKey), responderPublic));
    await sendFrom(attacker, initiationOf(a, Date.now() - 3_600_000)); // an hour old
    const junk = Buffer.from(first);
    junk[60] = junk[60]! ^ 1;
    await sendFrom(attacker, junk);
    // STUN on the same socket still answers (and this round trip orders us after the datagrams above).
    expect(await bindingRequest({ host: '127.0.0.1', port: stun.address().port, socket: attacker })).toMatchObject({ address: '127.0.0.1', port: attacker.address().port });
    const c1 = s.wgMapping!.counters;
    expect({ replayed: c1.replayed - c0.replayed, unknownKey: c1.unknownKey - c0.unknownKey, clockSkew: c1.clockSkew - c0.clockSkew, badMac1: c1.badMac1 - c0.badMac1, accepted: c1.accepted - c0.accepted })
      .toEqual({ replayed: 1, unknownKey: 1, clockSkew: 1, badMac1: 1, accepted: 0 });
    await s.mapper.settled();
    expect((await s.api('GET', `/api/v1/nodes/${a.self!.id}`)).body.endpoints[0]).toBe(`127.0.0.1:${sock.address().port}`);
    // The same counters as Prometheus series.
    const text = await s.metrics!.registry.metrics();
    expect(text).toContain(`weft_wg_initiations_total{result="replayed"} ${c1.replayed}`);
    expect(text).toContain(`weft_wg_initiations_total{result="accepted"} ${c1.accepted}`);
    a.close();
  });
});

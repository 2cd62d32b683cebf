/**
 * The agent's relayed data path against the real server's relay: two RelayPaths, each with a UDP
 * socket standing in for its WireGuard (the e2e lab runs the same path with real wireguard-go).
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { startServer, type TestServer } from '../../../server/test/support/server.js';
import { silentLogger } from '../../src/log.js';
import { relayOverStunPort, StunServer } from '@weft/relay';
import { RelayPath, relayTransport } from '../../src/relay-path.js';

interface Side {
  agent: SimAgent;
  wg: dgram.Socket;
  got: { data: string; from: string }[];
  inbound: { nodeKey: string; endpoint: string }[];
  path: RelayPath;
}

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function side(s: TestServer, key: string, name: string, peers: () => string[], portKnown: () => boolean = () => true, transport?: 'udp' | 'websocket'): Promise<Side> {
  const agent = new SimAgent(s.url, name);
  await agent.register(key);
  await agent.connect();
  await agent.waitFor(() => agent.received.some((r) => r.msg.type === 'netmap'));
  const wg = await udp();
  const got: Side['got'] = [];
  const inbound: Side['inbound'] = [];
  wg.on('message', (m, r) => got.push({ data: m.toString(), from: `${r.address}:${r.port}` }));
  const path = new RelayPath({
    serverUrl: s.url, machineKey: agent.machine.privateKey, log: silentLogger,
    wireguardPort: async () => (portKnown() ? wg.address().port : undefined),
    acceptFrom: (k) => peers().includes(k),
    onInbound: (nodeKey, endpoint) => inbound.push({ nodeKey, endpoint }),
    ...(transport ? { transport } : {}),
  });
  path.start();
  await until(() => path.connected, `${name} connected to the relay`);
  return { agent, wg, got, inbound, path };
}

describe('agent relayed data path', () => {
  let s: TestServer;
  let a: Side;
  let b: Side;

  beforeAll(async () => {
    s = await startServer('pglite');
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    a = await side(s, key, 'path-a', () => [b.agent.node.publicKey]);
    b = await side(s, key, 'path-b', () => [a.agent.node.publicKey]);
  });
  afterAll(async () => {
    for (const x of [a, b]) {
      x?.path.stop();
      x?.wg.close();
      x?.agent.close();
    }
    await s?.close();
  });

  it('carries WireGuard datagrams both ways; the side that did not choose the relay gets a socket and is told to aim WireGuard at it', async () => {
    const endpoint = await a.path.open(b.agent.node.publicKey as NodePublicKey);
    expect(endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    await until(() => a.path.connected, 'a connected to the relay');
    const [host, port] = endpoint.split(':');
    a.wg.send('handshake from a', Number(port), host);
    await until(() => b.got.length === 1, 'datagram at b');
    expect(b.got[0]!.data).toBe('handshake from a');
    expect(b.inbound).toEqual([{ nodeKey: a.agent.node.publicKey, endpoint: b.got[0]!.from }]);
    // WireGuard on b answers to where the datagram came from: b's socket for a.
    const [bh, bp] = b.got[0]!.from.split(':');
    b.wg.send('response from b', Number(bp), bh);
    await until(() => a.got.length === 1, 'reply at a');
    expect(a.got[0]).toEqual({ data: 'response from b', from: endpoint });
    expect(s.relay!.counters.packetsForwarded).toBe(2);
  });

  it('forwards only what comes from WireGuard\'s own port', async () => {
    const endpoint = a.path.endpointOf(b.agent.node.publicKey)!;
    const stranger = await udp();
    const before = b.got.length;
    const dropped = a.path.counters.dropped;
    const [host, port] = endpoint.split(':');
    stranger.send('injected', Number(port), host);
    await until(() => a.path.counters.dropped === dropped + 1, 'stranger dropped');
    expect(b.got.length).toBe(before);
    stranger.close();
  });

  it('a peer held for a hole punch: what the relay brings from it is not handed to WireGuard until the hold ends', async () => {
    const endpoint = a.path.endpointOf(b.agent.node.publicKey)!;
    const bSocket = b.path.endpointOf(a.agent.node.publicKey)!;
    b.path.hold(a.agent.node.publicKey, true);
    const before = b.got.length;
    const held = b.path.counters.heldForProbe;
    a.wg.send('straggler', Number(endpoint.split(':')[1]), endpoint.split(':')[0]);
    await until(() => b.path.counters.heldForProbe === held + 1, 'held at b');
    expect(b.got.length).toBe(before);
    b.path.hold(a.agent.node.publicKey, false);
    a.wg.send('after the probe', Number(endpoint.split(':')[1]), endpoint.split(':')[0]);
    await until(() => b.got.length === before + 1, 'delivered at b');
    expect(b.got.at(-1)).toEqual({ data: 'after the probe', from: bSocket });
  });

  it('a held peer that begins a new session over the relay ends the hold: its initiation and the data after it reach WireGuard', async () => {
    const endpoint = a.path.endpointOf(b.agent.node.publicKey)!;
    b.path.hold(a.agent.node.publicKey, true);
    const before = b.got.length;
    const held = b.path.counters.heldForProbe;
    // A WireGuard handshake initiation's shape (type 1, 148 bytes), then a data packet (type 4).
    const initiation = Buffer.alloc(148);
    initiation[0] = 1;
    const data = Buffer.from([4, 0, 0, 0, ...Buffer.from('first ping')]);
    const [host, port] = endpoint.split(':');
    a.wg.send(initiation, Number(port), host);
    await until(() => b.got.length === before + 1, 'the initiation at b');
    a.wg.send(data, Number(port), host);
    await until(() => b.got.length === before + 2, 'the data after it at b');
    expect(b.path.counters.heldForProbe).toBe(held);
    expect(b.path.lastInitiation(a.agent.node.publicKey)).toBeGreaterThan(0);
  });

  it('a socket opened by a relayed packet before WireGuard\'s port was known carries traffic once it is', async () => {
    let known = false;
    const d = await side(s, (await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key, 'path-d', () => [a.agent.node.publicKey], () => known);
    try {
      const toD = await a.path.open(d.agent.node.publicKey as NodePublicKey);
      const [host, port] = toD.split(':');
      // d's interface is not up yet: d makes a socket for a, but cannot hand the packet to WireGuard.
      a.wg.send('before the interface is up', Number(port), host);
      await until(() => d.inbound.length === 1, 'inbound socket at d');
      known = true;
      // WireGuard retries: this one gets through, and d's answer goes back over the same socket.
      await until(async () => {
        a.wg.send('retry', Number(port), host);
        await new Promise((r) => setTimeout(r, 50));
        return d.got.some((g) => g.data === 'retry');
      }, 'a retry delivered at d');
      const [dh, dp] = d.inbound[0]!.endpoint.split(':');
      d.wg.send('answer from d', Number(dp), dh);
      await until(() => a.got.some((g) => g.data === 'answer from d'), 'answer at a');
    } finally {
      d.path.stop();
      d.wg.close();
      d.agent.close();
    }
  });

  it('a socket opened before WireGuard\'s port was known sends WireGuard\'s first packet over the relay (a restarted daemon\'s first initiation)', async () => {
    let known = false;
    const e = await side(s, (await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key, 'path-e', () => [a.agent.node.publicKey], () => known);
    try {
      // e relays to a before its interface is configured: the socket is bound with no port to check against.
      const toA = await e.path.open(a.agent.node.publicKey as NodePublicKey);
      await a.path.open(e.agent.node.publicKey as NodePublicKey);
      known = true;
      const [host, port] = toA.split(':');
      e.wg.send('first initiation', Number(port), host);
      await until(() => a.got.some((g) => g.data === 'first initiation'), 'the first packet at a');
      expect(e.path.counters.dropped).toBe(0);
    } finally {
      e.path.stop();
      e.wg.close();
      e.agent.close();
    }
  });

  it('an initiation relayed to a peer not connected yet is sent again, the same bytes, the moment the relay says the peer connected', async () => {
    const f = new SimAgent(s.url, 'path-f');
    await f.register((await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key);
    await f.connect();
    await f.waitFor(() => f.received.some((r) => r.msg.type === 'netmap'));
    const fKey = f.node.publicKey as NodePublicKey;
    const toF = await a.path.open(fKey);
    // Shaped as WireGuard's first message (type 1, three reserved zeros, 148 bytes).
    const initiation = Buffer.alloc(148, 7);
    initiation.writeUInt32LE(1, 0);
    const [host, port] = toF.split(':');
    a.wg.send(initiation, Number(port), host);
    await until(() => a.path.cannotReach(fKey), 'a told f is not connected');
    const wg = await udp();
    const got: Buffer[] = [];
    wg.on('message', (m) => got.push(m));
    const path = new RelayPath({
      serverUrl: s.url, machineKey: f.machine.privateKey, log: silentLogger,
      wireguardPort: async () => wg.address().port, acceptFrom: (k) => k === a.agent.node.publicKey, onInbound: () => {},
    });
    try {
      path.start();
      await until(() => got.length > 0, 'the initiation at f\'s WireGuard');
      expect(got).toHaveLength(1);
      expect(got[0]!.equals(initiation)).toBe(true);
      expect(a.path.cannotReach(fKey)).toBe(false);
    } finally {
      path.stop();
      wg.close();
      f.close();
      a.path.release(fKey);
    }
  });

  it('a relayed packet from a key that is not a peer opens no socket; kept, it reaches WireGuard once the key is a peer there (the first initiation beating the netmap)', async () => {
    const c = await side(s, (await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key, 'path-c', () => [a.agent.node.publicKey]);
    try {
      const ep = await c.path.open(a.agent.node.publicKey as NodePublicKey);
      await until(() => c.path.connected, 'c connected');
      const [host, port] = ep.split(':');
      const kept = a.path.counters.keptEarly;
      const before = a.got.length;
      c.wg.send('initiation from c', Number(port), host);
      await until(() => a.path.counters.keptEarly === kept + 1, 'kept at a');
      expect(a.path.endpointOf(c.agent.node.publicKey)).toBeUndefined();
      // Nothing is handed over for a key with no socket (not a peer): still nothing at a's WireGuard.
      a.path.deliverEarly(c.agent.node.publicKey);
      expect(a.got.length).toBe(before);
      // c's netmap entry arrives at a: PeerPaths opens a's socket for c, aims WireGuard at it, then delivers what came early.
      const toC = await a.path.open(c.agent.node.publicKey as NodePublicKey);
      a.path.deliverEarly(c.agent.node.publicKey);
      await until(() => a.got.some((g) => g.data === 'initiation from c'), 'the early packet at a\'s WireGuard');
      expect(a.got.find((g) => g.data === 'initiation from c')!.from).toBe(toC);
    } finally {
      c.path.stop();
      c.wg.close();
      c.agent.close();
    }
  });
});

describe('agent relayed data path over UDP', () => {
  let s: TestServer;
  let stun: StunServer;
  let a: Side;
  let b: Side;
  /** With the default transport (no WEFT_RELAY_TRANSPORT). */
  let c: Side;
  beforeAll(async () => {
    s = await startServer('pglite');
    stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    relayOverStunPort(s.relay!, stun);
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    a = await side(s, key, 'udp-a', () => [b.agent.node.publicKey], undefined, 'udp');
    b = await side(s, key, 'udp-b', () => [a.agent.node.publicKey], undefined, 'udp');
    c = await side(s, key, 'default-c', () => [], undefined, relayTransport({}));
  });
  afterAll(async () => {
    for (const x of [a, b, c]) {
      x?.path.stop();
      x?.wg.close();
      x?.agent.close();
    }
    await stun?.close();
    await s?.close();
  });

  it('prefers UDP once the relay answers its bind: WireGuard datagrams cross both ways over UDP, none over the WebSocket', async () => {
    await until(() => a.path.transport === 'udp' && b.path.transport === 'udp', 'both on UDP');
    const endpoint = await a.path.open(b.agent.node.publicKey as NodePublicKey);
    const [host, port] = endpoint.split(':');
    a.wg.send('handshake over udp', Number(port), host);
    await until(() => b.got.length === 1, 'datagram at b');
    const [bh, bp] = b.got[0]!.from.split(':');
    b.wg.send('response over udp', Number(bp), bh);
    await until(() => a.got.length === 1, 'reply at a');
    expect([b.got[0]!.data, a.got[0]!.data]).toEqual(['handshake over udp', 'response over udp']);
    expect([a.path.counters.toRelayUdp, b.path.counters.toRelayUdp]).toEqual([1, 1]);
    expect(s.relay!.counters.udp).toMatchObject({ packetsIn: 2, packetsOut: 2 });
  });

  it('by default (the WebSocket measured faster) a relay offering UDP is not bound: the session stays on the WebSocket', async () => {
    expect(relayTransport({})).toBe('websocket');
    await until(() => a.path.transport === 'udp', 'a on UDP (so binds are answered here)');
    expect(c.path.transport).toBe('websocket');
    expect((c.path as unknown as { udp: unknown }).udp).toBeUndefined();
  });

  it('a direct path that died makes the UDP binding suspect: over the WebSocket at once, back on UDP once a fresh bind is answered', async () => {
    await until(() => a.path.transport === 'udp', 'a on UDP');
    const endpoint = a.path.endpointOf(b.agent.node.publicKey)!;
    const [host, port] = endpoint.split(':');
    a.path.udpSuspect();
    // The NAT's mapping to the relay's UDP port may be gone: nothing is sent into it until the relay answers again.
    expect(a.path.transport).toBe('websocket');
    await until(() => a.path.transport === 'udp', 'a back on UDP after the rebind');
    const before = b.got.length;
    const udpBefore = a.path.counters.toRelayUdp;
    a.wg.send('after the rebind', Number(port), host);
    await until(() => b.got.length === before + 1, 'datagram at b');
    expect(b.got.at(-1)!.data).toBe('after the rebind');
    expect(a.path.counters.toRelayUdp).toBe(udpBefore + 1);
  });
});

describe('agent relayed data path when UDP to the relay is blocked', () => {
  let s: TestServer;
  let a: Side;
  let b: Side;
  let hole: import('node:dgram').Socket;
  beforeAll(async () => {
    s = await startServer('pglite');
    // The ticket points at a port where datagrams vanish (bound, never read): no bind is ever answered.
    hole = await udp();
    s.relay!.attachUdp({ port: hole.address().port, send: () => {} });
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    a = await side(s, key, 'blocked-a', () => [b.agent.node.publicKey], undefined, 'udp');
    b = await side(s, key, 'blocked-b', () => [a.agent.node.publicKey], undefined, 'udp');
  });
  afterAll(async () => {
    for (const x of [a, b]) {
      x?.path.stop();
      x?.wg.close();
      x?.agent.close();
    }
    hole?.close();
    await s?.close();
  });

  it('falls back to the WebSocket: the same datagrams cross, over TCP', async () => {
    const endpoint = await a.path.open(b.agent.node.publicKey as NodePublicKey);
    const [host, port] = endpoint.split(':');
    a.wg.send('handshake over ws', Number(port), host);
    await until(() => b.got.length === 1, 'datagram at b');
    expect(b.got[0]!.data).toBe('handshake over ws');
    expect(a.path.transport).toBe('websocket');
    expect(a.path.counters.toRelayUdp).toBe(0);
    expect(s.relay!.counters.udp.packetsIn).toBe(0);
    expect(s.relay!.counters.packetsForwarded).toBe(1);
  });
});

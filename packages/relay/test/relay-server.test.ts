/** The relay core over fake sockets (pure forwarding logic; the real WebSocket path is in apps/server's relay tests). */
import { describe, expect, it } from 'vitest';
import {
  encodeClientInfo, encodeFrame, encodePeerPresent, FRAME_PEER_GONE, FRAME_PEER_PRESENT, FRAME_RECV_PACKET, FRAME_SEND_PACKET, FRAME_SERVER_INFO, PeerGoneReason, readClientFrame, readServerFrame, RelayClient, RelayClose, RelayServer,
  RELAY_VERSION,
} from '../src/index.js';
import { FakeSocket, key } from './fake-socket.js';

function setup(opts: { allow?: (a: number, b: number) => boolean; maxQueueBytes?: number; maxPacketBytes?: number } = {}) {
  const relay = new RelayServer({ mayRelay: opts.allow ?? (() => true), maxQueueBytes: opts.maxQueueBytes, maxPacketBytes: opts.maxPacketBytes, pingIntervalMs: 3_600_000 });
  const join = (id: number) => {
    const s = new FakeSocket();
    relay.accept(s, id, key(id));
    return s;
  };
  return { relay, join };
}

describe('relay frames', () => {
  it('a client frame reads back its key and body as views', () => {
    const f = encodeFrame(FRAME_SEND_PACKET, key(7), Buffer.from('hello'));
    const r = readClientFrame(f, true);
    expect(r.ok && r.frame.type === FRAME_SEND_PACKET && [r.frame.key.equals(key(7)), r.frame.body.toString()]).toEqual([true, 'hello']);
  });

  it.each([
    ['a text message', Buffer.alloc(40), false, 'binary'],
    ['a short frame', Buffer.alloc(10, 1), true, 'shorter than its 33-byte header'],
    ['a server-only type', encodeFrame(FRAME_RECV_PACKET, key(1), Buffer.alloc(1)), true, 'type 0x02 is not one a client sends'],
    ['an unknown type', encodeFrame(0x7f, key(1), Buffer.alloc(1)), true, 'type 0x7f'],
  ])('refuses %s with a reason', (_what, data, binary, reason) => {
    const r = readClientFrame(data, binary);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(reason);
  });

  it('refuses a key that is not 32 bytes at encode time', () => {
    expect(() => encodeFrame(FRAME_SEND_PACKET, Buffer.alloc(31), Buffer.alloc(0))).toThrow(/32 bytes/);
  });
});

describe('RelayServer', () => {
  it('greets each client with its own key, then forwards with the sender key it authenticated', () => {
    const { relay, join } = setup();
    const a = join(1);
    const b = join(2);
    expect(a.frames()[0]).toMatchObject({ type: FRAME_SERVER_INFO, version: RELAY_VERSION });
    expect(a.frames()[0]).not.toHaveProperty("udp");
    expect((a.frames()[0] as { key: Buffer }).key.equals(key(1))).toBe(true);
    a.packet(key(2), 'ping');
    const got = b.frames().at(-1)!;
    expect(got.type).toBe(FRAME_RECV_PACKET);
    expect(got.type === FRAME_RECV_PACKET && got.key.equals(key(1))).toBe(true);
    expect(got.type === FRAME_RECV_PACKET && got.body.toString()).toBe('ping');
    expect(relay.counters).toMatchObject({ packetsForwarded: 1, bytesForwarded: 4 });
  });

  it('a packet to an unknown key is dropped and the sender told peer-gone once, not per packet', () => {
    const { relay, join } = setup();
    const a = join(1);
    for (let i = 0; i < 5; i++) a.packet(key(9), 'x');
    const gone = a.frames().filter((f) => f.type === FRAME_PEER_GONE);
    expect(gone).toHaveLength(1);
    expect(gone[0]).toMatchObject({ reason: PeerGoneReason.NotConnected });
    expect(relay.counters.dropped.noSuchPeer).toBe(5);
    expect(relay.counters.peerGoneSent).toBe(1);
  });

  it('a pair mayRelay refuses is dropped, counted, and told not-allowed once', () => {
    const { relay, join } = setup({ allow: (s, d) => !(s === 1 && d === 3) });
    const a = join(1);
    const c = join(3);
    a.packet(key(3), 'x');
    a.packet(key(3), 'x');
    expect(c.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(0);
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toMatchObject([{ reason: PeerGoneReason.NotAllowed }]);
    expect(relay.counters.dropped.notAllowed).toBe(2);
  });

  it('drops the newest packet when the destination has more than maxQueueBytes unsent, and counts it', () => {
    const { relay, join } = setup({ maxQueueBytes: 1000 });
    const a = join(1);
    const b = join(2);
    b.bufferedAmount = 900;
    a.packet(key(2), Buffer.alloc(50));
    a.packet(key(2), Buffer.alloc(200));
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(1);
    expect(relay.counters.dropped.queueFull).toBe(1);
  });

  it('drops a packet over maxPacketBytes without closing the sender', () => {
    const { relay, join } = setup({ maxPacketBytes: 100 });
    const a = join(1);
    join(2);
    a.packet(key(2), Buffer.alloc(101));
    expect(relay.counters.dropped.tooBig).toBe(1);
    expect(a.closed).toBeNull();
  });

  it('a bad frame closes only that client, with the reason', () => {
    const { relay, join } = setup();
    const a = join(1);
    const b = join(2);
    a.emit('message', Buffer.from('{"type":"hello"}'), false);
    expect(a.closed).toMatchObject({ code: RelayClose.BadFrame, reason: expect.stringContaining('binary') });
    expect(b.closed).toBeNull();
    expect(relay.counters.badFrames).toBe(1);
    expect(relay.isConnected(1)).toBe(false);
    expect(relay.isConnected(2)).toBe(true);
  });

  it('when a client leaves, every client that sent to it is told once', () => {
    const { join } = setup();
    const a = join(1);
    const b = join(2);
    a.packet(key(2), 'x');
    b.close(1000, 'bye');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(1);
    a.packet(key(2), 'x');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(1);
  });

  it('a peer that comes back is reachable again and can be reported gone again later', () => {
    const { join } = setup();
    const a = join(1);
    a.packet(key(2), 'x');
    const b = join(2);
    a.packet(key(2), 'y');
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(1);
    b.close(1000, 'bye');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(2);
  });

  it('a client of version 4 told a peer is not connected is told once when it connects, and only then; an older client is not', () => {
    const { relay, join } = setup();
    const a = join(1);
    a.emit('message', encodeClientInfo(), true);
    const old = join(3);
    old.emit('message', encodeClientInfo(3), true);
    a.packet(key(2), 'into the void');
    old.packet(key(2), 'into the void');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_PRESENT)).toHaveLength(0);
    const b = join(2);
    const present = a.frames().filter((f) => f.type === FRAME_PEER_PRESENT);
    expect(present).toHaveLength(1);
    expect(present[0]!.type === FRAME_PEER_PRESENT && present[0]!.key.equals(key(2))).toBe(true);
    expect(old.frames().map((f) => f.type)).not.toContain(FRAME_PEER_PRESENT);
    expect(relay.counters.peerPresentSent).toBe(1);
    // The watch is over: the next absence is told again, and so is the next arrival.
    b.close(1000, 'bye');
    a.packet(key(2), 'into the void again');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(2);
    join(2);
    expect(a.frames().filter((f) => f.type === FRAME_PEER_PRESENT)).toHaveLength(2);
  });

  it('a peer that left is announced present when it comes back to everyone it had talked to', () => {
    const { join } = setup();
    const a = join(1);
    a.emit('message', encodeClientInfo(), true);
    const b = join(2);
    a.packet(key(2), 'x');
    b.close(1000, 'restarting');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(1);
    join(2);
    expect(a.frames().filter((f) => f.type === FRAME_PEER_PRESENT)).toHaveLength(1);
  });

  it('is not told present by a packet that got through, by a pair that may not talk, or after it left', () => {
    const { relay, join } = setup({ allow: (s, d) => !(s === 1 && d === 3) });
    const a = join(1);
    a.emit('message', encodeClientInfo(), true);
    a.packet(key(2), 'x');
    a.packet(key(3), 'x');
    // Forwarded since: nothing to announce (the watch ended with the packet that got through).
    const b = join(2);
    expect(relay.counters.peerPresentSent).toBe(1);
    a.packet(key(2), 'y');
    b.close(1000, 'bye');
    join(3); // 1 may not talk to 3: not told
    expect(a.frames().filter((f) => f.type === FRAME_PEER_PRESENT)).toHaveLength(1);
    const c = join(4);
    c.emit('message', encodeClientInfo(), true);
    c.packet(key(5), 'x');
    c.close(1000, 'gone first');
    join(5);
    expect(c.sent.filter((f) => f[0] === FRAME_PEER_PRESENT)).toHaveLength(0);
    expect(relay.counters.peerPresentSent).toBe(1);
  });

  it('a burst to one destination in one tick is written corked (one writev), uncorked when the tick ends', async () => {
    const relay = new RelayServer({ mayRelay: () => true, pingIntervalMs: 3_600_000 });
    const a = new FakeSocket();
    const b = new FakeSocket();
    const stream = { corks: 0, uncorks: 0, cork() { this.corks++; }, uncork() { this.uncorks++; } };
    relay.accept(a, 1, key(1));
    relay.accept(b, 2, key(2), stream);
    for (let i = 0; i < 10; i++) a.packet(key(2), `p${i}`);
    expect(stream).toMatchObject({ corks: 1, uncorks: 0 });
    await new Promise((r) => process.nextTick(r));
    expect(stream).toMatchObject({ corks: 1, uncorks: 1 });
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(10);
    relay.close(1001, 'done');
  });

  it('a newer connection of the same node replaces the older one', () => {
    const { relay, join } = setup();
    const old = join(1);
    join(1);
    expect(old.closed).toMatchObject({ code: RelayClose.Replaced });
    expect(relay.clientCount).toBe(1);
  });

  it('closeNode cuts off one node with the embedder code', () => {
    const { relay, join } = setup();
    const a = join(1);
    relay.closeNode(1, 4403, 'node deleted');
    expect(a.closed).toEqual({ code: 4403, reason: 'node deleted' });
    expect(relay.isConnected(1)).toBe(false);
  });

  it('a client that answers no ping is cut off at the next round, one that answers stays', () => {
    const relay = new RelayServer({ mayRelay: () => true, pingIntervalMs: 3_600_000 });
    const quiet = new FakeSocket();
    const lively = new FakeSocket();
    relay.accept(quiet, 1, key(1));
    relay.accept(lively, 2, key(2));
    const pingAll = () => (relay as unknown as { pingAll(): void }).pingAll();
    pingAll();
    lively.emit('pong');
    pingAll();
    expect(quiet.closed).toMatchObject({ code: RelayClose.Timeout });
    expect(lively.closed).toBeNull();
    expect(relay.counters.timeouts).toBe(1);
    relay.close(1001, 'done');
  });
});

describe('RelayClient', () => {
  it('sends addressed frames and reads packets, peer-gone and server info', () => {
    const sock = new FakeSocket();
    const got: string[] = [];
    const client = new RelayClient(sock, {
      onPacket: (from, p) => got.push(`${from[0]}:${p.toString()}`),
      onPeerGone: (k, r) => got.push(`gone ${k[0]} ${r}`),
      onServerInfo: (i) => got.push(`info ${i.maxPacketBytes}`),
    });
    sock.emit('message', encodeFrame(FRAME_SERVER_INFO, key(1), Buffer.from([1, 0, 0, 4, 0])), true);
    sock.emit('message', encodeFrame(FRAME_RECV_PACKET, key(2), Buffer.from('hi')), true);
    sock.emit('message', encodeFrame(FRAME_PEER_GONE, key(3), Buffer.from([1])), true);
    expect(got).toEqual(['info 1024', '2:hi', 'gone 3 1']);
    expect(client.send(key(2), Buffer.alloc(1025))).toBe(false);
    expect(client.send(key(2), Buffer.from('yo'))).toBe(true);
    const r = readClientFrame(sock.sent.at(-1)!, true);
    expect(r.ok && r.frame.type === FRAME_SEND_PACKET && r.frame.key.equals(key(2))).toBe(true);
  });

  it('reads peer-present; refuses one with a body', () => {
    const sock = new FakeSocket();
    const got: number[] = [];
    const errors: string[] = [];
    new RelayClient(sock, { onPacket: () => {}, onPeerPresent: (k) => got.push(k[0]!), onProtocolError: (r) => errors.push(r) });
    sock.emit('message', encodePeerPresent(key(4)), true);
    expect(got).toEqual([4]);
    const bad = readServerFrame(encodeFrame(FRAME_PEER_PRESENT, key(4), Buffer.of(1)));
    expect(!bad.ok && bad.reason).toContain('peer-present frame with 1 bytes of body');
    sock.emit('message', encodeFrame(FRAME_PEER_PRESENT, key(4), Buffer.of(1)), true);
    expect(errors).toHaveLength(1);
  });

  it('closes on a frame a server never sends', () => {
    const sock = new FakeSocket();
    const errors: string[] = [];
    new RelayClient(sock, { onPacket: () => {}, onProtocolError: (r) => errors.push(r) });
    sock.emit('message', encodeFrame(FRAME_SEND_PACKET, key(2), Buffer.alloc(0)), true);
    expect(errors[0]).toContain('not one a server sends');
    expect(sock.closed?.code).toBe(1002);
  });
});

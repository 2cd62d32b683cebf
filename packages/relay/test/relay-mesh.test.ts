/** The relay mesh between replicas: its frames, its token, and two RelayServers forwarding to each other over fake links. */
import { describe, expect, it } from 'vitest';
import {
  encodeAbsent, encodeForward, encodePresent, FRAME_PEER_GONE, FRAME_RECV_PACKET, MESH_FORWARD, meshToken, PeerGoneReason, readMeshFrame, readServerFrame, RelayServer, verifyMeshToken, type RelayMeshLink,
} from '../src/index.js';
import { FakeSocket, key } from './fake-socket.js';

/** A one-way link from `from`'s relay into `to`'s receiveMesh, as the embedder wires an authenticated WebSocket. */
class Link implements RelayMeshLink {
  bufferedAmount = 0;
  frames = 0;
  constructor(private readonly to: RelayServer, private readonly fromId: string) {}
  send(data: Buffer): void {
    this.frames++;
    const reason = this.to.receiveMesh(this.fromId, Buffer.from(data));
    if (reason) throw new Error(reason);
  }
}

function replicas(allow: (s: number, d: number) => boolean = () => true) {
  const r1 = new RelayServer({ mayRelay: allow, pingIntervalMs: 3_600_000 });
  const r2 = new RelayServer({ mayRelay: allow, pingIntervalMs: 3_600_000 });
  const join = (r: RelayServer, id: number) => {
    const s = new FakeSocket();
    r.accept(s, id, key(id));
    return s;
  };
  const link12 = new Link(r2, 'r1');
  const link21 = new Link(r1, 'r2');
  const connect = () => {
    r1.addMeshLink('r2', link12);
    r2.addMeshLink('r1', link21);
  };
  return { r1, r2, join, connect, link12, link21 };
}

describe('relay mesh frames and token', () => {
  it('present, absent and forward read back; a forward\'s tail has the RECV_PACKET layout', () => {
    const p = readMeshFrame(encodePresent(key(1), 77));
    expect(p.ok && p.frame).toMatchObject({ nodeId: 77 });
    expect(readMeshFrame(encodeAbsent(key(2))).ok).toBe(true);
    const f = readMeshFrame(encodeForward(key(3), 9, key(4), Buffer.from('body')));
    expect(f.ok && f.frame.type === MESH_FORWARD && [f.frame.dst[0], f.frame.srcNodeId, f.frame.src[0], f.frame.tail.length]).toEqual([3, 9, 4, 1 + 32 + 4]);
    const tail = Buffer.from(f.ok && f.frame.type === MESH_FORWARD ? f.frame.tail : Buffer.alloc(0));
    tail[0] = FRAME_RECV_PACKET;
    const recv = readServerFrame(tail);
    expect(recv.ok && recv.frame.type === FRAME_RECV_PACKET && [recv.frame.key[0], recv.frame.body.toString()]).toEqual([4, 'body']);
  });

  it.each([
    ['an unknown type', Buffer.of(0x7f, 1, 2), 'unknown'],
    ['a short present', encodePresent(key(1), 1).subarray(0, 20), 'not 37'],
    ['a short forward', Buffer.alloc(40, MESH_FORWARD), 'shorter than'],
  ])('refuses %s with a reason', (_what, data, reason) => {
    const r = readMeshFrame(data);
    expect(!r.ok && r.reason).toContain(reason);
  });

  it('a token verifies under its secret within the skew window, and names its replica', () => {
    const secret = Buffer.alloc(32, 8);
    const t = meshToken(secret, 'replica-1', 1_000_000);
    expect(verifyMeshToken(secret, t, 1_030_000, 60_000)).toEqual({ ok: true, replicaId: 'replica-1' });
    expect(verifyMeshToken(Buffer.alloc(32, 9), t, 1_000_000, 60_000)).toMatchObject({ ok: false, reason: expect.stringContaining('MAC') });
    expect(verifyMeshToken(secret, t, 1_100_000, 60_000)).toMatchObject({ ok: false, reason: expect.stringContaining('skew') });
    expect(verifyMeshToken(secret, t.replace('replica-1', 'replica-2'), 1_000_000, 60_000)).toMatchObject({ ok: false });
    expect(verifyMeshToken(secret, 'garbage', 1_000_000, 60_000)).toMatchObject({ ok: false, reason: expect.stringContaining('not') });
    expect(() => meshToken(secret, 'has.dot', 0)).toThrow(/replica id/);
  });
});

describe('RelayServer mesh', () => {
  it('two nodes on different replicas relay to each other, stamped with the authenticated sender key', () => {
    const { r1, r2, join, connect } = replicas();
    const a = join(r1, 1);
    const b = join(r2, 2);
    connect();
    a.packet(key(2), 'a->b');
    b.packet(key(1), 'b->a');
    expect(b.packets()).toEqual([{ from: 1, body: 'a->b' }]);
    expect(a.packets()).toEqual([{ from: 2, body: 'b->a' }]);
    expect(r1.counters.mesh).toMatchObject({ forwardedOut: 1, deliveredIn: 1 });
    expect(r2.counters.mesh).toMatchObject({ forwardedOut: 1, deliveredIn: 1 });
  });

  it('a client that connects after the link is announced at once; one that leaves is withdrawn (its senders are told peer gone)', () => {
    const { r1, r2, join, connect } = replicas();
    connect();
    const a = join(r1, 1);
    const b = join(r2, 2);
    a.packet(key(2), 'first');
    expect(b.packets()).toHaveLength(1);
    b.close();
    a.packet(key(2), 'after b left');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toMatchObject([{ reason: PeerGoneReason.NotConnected }]);
    expect(r1.counters.dropped.noSuchPeer).toBe(1);
  });

  it('a pair mayRelay refuses is not forwarded, on the sending replica and again on the receiving one', () => {
    const { r1, r2, join, connect } = replicas((s, d) => !(s === 1 && d === 2));
    const a = join(r1, 1);
    const b = join(r2, 2);
    connect();
    a.packet(key(2), 'not allowed');
    expect(b.packets()).toHaveLength(0);
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toMatchObject([{ reason: PeerGoneReason.NotAllowed }]);
    // A replica that forwards anyway (another replica's policy view lags) is refused on arrival.
    expect(r2.receiveMesh('r1', encodeForward(key(2), 1, key(1), Buffer.from('forced')))).toBeUndefined();
    expect(b.packets()).toHaveLength(0);
    expect(r2.counters.mesh.dropped).toBe(1);
  });

  it('a full mesh link drops newest and counts it; a bad mesh frame is reported for the embedder to close the link', () => {
    const { r1, r2, join, connect, link12 } = replicas();
    const a = join(r1, 1);
    join(r2, 2);
    connect();
    link12.bufferedAmount = 10 * 1024 * 1024;
    a.packet(key(2), 'x');
    expect(r1.counters.dropped.queueFull).toBe(1);
    expect(r2.receiveMesh('r1', Buffer.of(0x55))).toMatch(/unknown/);
    expect(r2.counters.mesh.badFrames).toBe(1);
  });

  it('when a replica goes away, the keys it announced are forgotten', () => {
    const { r1, r2, join, connect, link12 } = replicas();
    const a = join(r1, 1);
    join(r2, 2);
    connect();
    r1.removeMeshLink('r2', link12);
    r1.forgetReplica('r2');
    a.packet(key(2), 'nowhere');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(1);
    expect(r1.counters.mesh.forwardedOut).toBe(0);
  });
});

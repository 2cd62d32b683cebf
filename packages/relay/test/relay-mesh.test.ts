/** The relay mesh between replicas: its frames, its token, and two RelayServers forwarding to each other over fake links. */
import { describe, expect, it } from 'vitest';
import {
  encodeAbsent, encodeClientInfo, encodeForward, encodePresent, FRAME_PEER_GONE, FRAME_PEER_PRESENT, FRAME_RECV_PACKET, MESH_FORWARD, meshToken, PeerGoneReason, readMeshFrame, readServerFrame, RelayServer, verifyMeshToken, type MeshPeerKind, type RelayMeshLink,
} from '../src/index.js';
import { FakeSocket, key } from './fake-socket.js';

/** A one-way link from `from`'s relay into `to`'s receiveMesh, as the embedder wires an authenticated WebSocket. */
class Link implements RelayMeshLink {
  bufferedAmount = 0;
  frames = 0;
  constructor(private readonly to: RelayServer, private readonly fromId: string, private readonly fromKind: MeshPeerKind = 'replica') {}
  send(data: Buffer): void {
    this.frames++;
    const reason = this.to.receiveMesh(this.fromId, Buffer.from(data), this.fromKind);
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

  it('a client told a peer is not connected hears it is present when the peer connects to the other replica', () => {
    const { r1, r2, join, connect } = replicas();
    connect();
    const a = join(r1, 1);
    a.emit('message', encodeClientInfo(), true);
    a.packet(key(2), 'before b is anywhere');
    expect(a.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(1);
    const b = join(r2, 2);
    const present = a.frames().filter((f) => f.type === FRAME_PEER_PRESENT);
    expect(present).toHaveLength(1);
    expect(present[0]!.type === FRAME_PEER_PRESENT && present[0]!.key.equals(key(2))).toBe(true);
    a.packet(key(2), 'now');
    expect(b.packets()).toEqual([{ from: 1, body: 'now' }]);
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

/**
 * A deployment: replicas A and B (linked to each other both ways), standalone regions R1 and R3
 * linked to A and R2 linked to B, each region's one link carrying both directions.
 */
function deployment(allow: (s: number, d: number) => boolean = () => true) {
  const relay = () => new RelayServer({ mayRelay: (s, d) => allow(s, d), pingIntervalMs: 3_600_000 });
  const r = { A: relay(), B: relay(), R1: relay(), R2: relay(), R3: relay() };
  const links: Array<{ from: keyof typeof r; to: keyof typeof r; link: Link }> = [];
  const link = (from: keyof typeof r, to: keyof typeof r, toKind: MeshPeerKind) => {
    // `to` reads what `from` sends as coming from a peer of `from`'s kind.
    const fromKind: MeshPeerKind = from.startsWith('R') ? 'region' : 'replica';
    const l = new Link(r[to], from, fromKind);
    links.push({ from, to, link: l });
    r[from].addMeshLink(to, l, toKind);
    return l;
  };
  const up = () => {
    link('A', 'B', 'replica');
    link('B', 'A', 'replica');
    for (const [region, hub] of [['R1', 'A'], ['R3', 'A'], ['R2', 'B']] as const) {
      link(hub, region, 'region');
      link(region, hub, 'replica');
    }
  };
  const join = (at: keyof typeof r, id: number) => {
    const s = new FakeSocket();
    r[at].accept(s, id, key(id));
    return s;
  };
  /** Link `from` -> `to` goes away, as its WebSocket closing would tell both ends. */
  const cut = (a: keyof typeof r, b: keyof typeof r) => {
    for (const { from, to, link: l } of links) {
      if ((from === a && to === b) || (from === b && to === a)) {
        r[from].removeMeshLink(to, l);
        r[to].forgetReplica(from);
      }
    }
  };
  return { r, up, join, cut };
}

describe('RelayServer mesh across regions', () => {
  it('nodes on two regions linked to different replicas relay to each other both ways, whichever joined first', () => {
    const { r, up, join } = deployment();
    const x = join('R1', 1);
    up();
    const y = join('R2', 2);
    x.packet(key(2), 'x->y');
    y.packet(key(1), 'y->x');
    expect(y.packets()).toEqual([{ from: 1, body: 'x->y' }]);
    expect(x.packets()).toEqual([{ from: 2, body: 'y->x' }]);
    // Through both replicas: one hop out of each relay on the way.
    expect([r.A.counters.mesh.forwardedOut, r.B.counters.mesh.forwardedOut]).toEqual([2, 2]);
  });

  it('two regions on one replica, and a region and the other replica\'s embedded relay, reach each other', () => {
    const { up, join } = deployment();
    up();
    const x = join('R1', 1);
    const z = join('R3', 3);
    const w = join('B', 4);
    x.packet(key(3), 'x->z');
    z.packet(key(4), 'z->w');
    w.packet(key(1), 'w->x');
    expect(z.packets()).toEqual([{ from: 1, body: 'x->z' }]);
    expect(w.packets()).toEqual([{ from: 3, body: 'z->w' }]);
    expect(x.packets()).toEqual([{ from: 4, body: 'w->x' }]);
  });

  it('a node that leaves its region is withdrawn everywhere; one that moves to another region is found there', () => {
    const { up, join } = deployment();
    up();
    const x = join('R1', 1);
    const y = join('R2', 2);
    y.close();
    x.packet(key(2), 'gone');
    expect(x.frames().filter((f) => f.type === FRAME_PEER_GONE)).toMatchObject([{ reason: PeerGoneReason.NotConnected }]);
    const y2 = join('R3', 2);
    x.packet(key(2), 'moved');
    expect(y2.packets()).toEqual([{ from: 1, body: 'moved' }]);
  });

  it('a node on a region whose link dies is withdrawn from every other relay', () => {
    const { r, up, join, cut } = deployment();
    up();
    const x = join('R1', 1);
    join('R2', 2);
    cut('R2', 'B');
    x.packet(key(2), 'region gone');
    expect(x.frames().filter((f) => f.type === FRAME_PEER_GONE)).toHaveLength(1);
    expect(r.A.counters.mesh.forwardedOut).toBe(0);
  });

  it('a pair a hub\'s mayRelay refuses stops at that hub, and a replica never passes a replica\'s packet to another replica', () => {
    let allowed = true;
    const { r, up, join } = deployment(() => allowed);
    up();
    const x = join('R1', 1);
    const y = join('R2', 2);
    allowed = false;
    // R1 forwards anyway (its peer set lags): A drops it.
    expect(r.A.receiveMesh('R1', encodeForward(key(2), 1, key(1), Buffer.from('cut')), 'region')).toBeUndefined();
    expect(r.A.counters.mesh.dropped).toBe(1);
    allowed = true;
    // A key B holds, arriving at A from another replica, is not sent back to replica B (nor on to any replica).
    expect(r.A.receiveMesh('C', encodeForward(key(2), 1, key(1), Buffer.from('loop')), 'replica')).toBeUndefined();
    expect(r.A.counters.mesh.dropped).toBe(2);
    expect(y.packets()).toEqual([]);
    expect(x.packets()).toEqual([]);
  });
});

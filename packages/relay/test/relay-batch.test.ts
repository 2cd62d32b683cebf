/** Relay batches (frame version 3): the codec, the server's batching per turn, and the client's. */
import { describe, expect, it } from 'vitest';
import {
  BatchWriter, batchEntry, encodeClientInfo, encodeFrame, encodeServerInfo, FRAME_CLIENT_INFO, FRAME_PEER_GONE, FRAME_RECV_BATCH, FRAME_RECV_PACKET, FRAME_SEND_BATCH,
  FRAME_SEND_PACKET, MAX_BATCH_BYTES, PeerGoneReason, readClientFrame, readServerFrame, RelayClient, RelayClose, RelayServer,
} from '../src/index.js';
import { FakeSocket, key } from './fake-socket.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

function batch(entries: Array<[number, string]>, type = FRAME_SEND_BATCH, single = FRAME_SEND_PACKET): Buffer {
  const w = new BatchWriter(type, single);
  for (const [k, body] of entries) expect(w.add(key(k), Buffer.from(body))).toBeUndefined();
  return w.take()!;
}

function entries(data: Buffer): Array<[number, string]> {
  const r = readClientFrame(data, true);
  if (!r.ok || r.frame.type !== FRAME_SEND_BATCH) throw new Error(r.ok ? `type ${r.frame.type}` : r.reason);
  const b = r.frame.entries;
  return b.offsets.map((_, i) => {
    const e = batchEntry(b, i);
    return [e.key[0]!, e.body.toString()];
  });
}

function setup(opts: { maxQueueBytes?: number; maxPacketBytes?: number } = {}) {
  const relay = new RelayServer({ mayRelay: () => true, pingIntervalMs: 3_600_000, ...opts });
  const join = (id: number, batches: boolean) => {
    const s = new FakeSocket();
    relay.accept(s, id, key(id));
    if (batches) s.emit('message', encodeClientInfo(), true);
    return s;
  };
  return { relay, join };
}

describe('relay batch frames', () => {
  it('a batch reads back every entry in order, as views; a batch of one is the single-packet frame', () => {
    const b = batch([[2, 'one'], [3, ''], [2, 'three']]);
    expect(b[0]).toBe(FRAME_SEND_BATCH);
    expect(entries(b)).toEqual([[2, 'one'], [3, ''], [2, 'three']]);
    const one = batch([[5, 'solo']]);
    const r = readClientFrame(one, true);
    expect(r.ok && r.frame.type === FRAME_SEND_PACKET && [r.frame.key[0], r.frame.body.toString()]).toEqual([5, 'solo']);
    const recv = readServerFrame(batch([[1, 'a'], [1, 'b']], FRAME_RECV_BATCH, FRAME_RECV_PACKET));
    expect(recv.ok && recv.frame.type).toBe(FRAME_RECV_BATCH);
  });

  it('a packet that would take a batch past MAX_BATCH_BYTES ends it and starts the next', () => {
    const w = new BatchWriter(FRAME_SEND_BATCH, FRAME_SEND_PACKET);
    const big = Buffer.alloc(10_000, 7);
    const done: Buffer[] = [];
    for (let i = 0; i < 7; i++) {
      const full = w.add(key(2), big);
      if (full) done.push(full);
    }
    done.push(w.take()!);
    expect(done.every((b) => b.length <= MAX_BATCH_BYTES)).toBe(true);
    expect(done.map((b) => (b[0] === FRAME_SEND_BATCH ? entries(b).length : 1))).toEqual([3, 3, 1]);
    expect(w.take()).toBeUndefined();
  });

  it.each([
    ['no entry', Buffer.of(FRAME_SEND_BATCH), 'no entry'],
    ['an entry cut short in its header', Buffer.concat([Buffer.of(FRAME_SEND_BATCH), key(2).subarray(0, 20)]), 'cut short in its header'],
    ['an entry longer than what follows', Buffer.concat([Buffer.of(FRAME_SEND_BATCH), key(2), Buffer.of(0, 9), Buffer.from('abc')]), 'says 9 bytes but only 3 follow'],
    ['a second entry cut short', Buffer.concat([batch([[2, 'x'], [3, 'y']]), Buffer.of(1)]), 'entry 3'],
    ['a client-info of the wrong length', Buffer.of(FRAME_CLIENT_INFO, 3, 0), 'client-info frame of 3 bytes'],
  ])('refuses %s with a reason', (_what, data, reason) => {
    const r = readClientFrame(data, true);
    expect(!r.ok && r.reason).toContain(reason);
  });
});

describe('RelayServer batches', () => {
  it('a client that sent CLIENT_INFO gets what arrives for it in one turn as one RECV_BATCH; an older client one frame per packet', async () => {
    const { relay, join } = setup();
    const a = join(1, false);
    const b = join(2, true);
    const c = join(3, false);
    for (const body of ['p1', 'p2', 'p3']) a.packet(key(2), body);
    for (const body of ['q1', 'q2']) b.packet(key(3), body);
    const before = b.sent.length;
    await turn();
    expect(b.sent.length).toBe(before + 1);
    expect(b.frames().at(-1)!.type).toBe(FRAME_RECV_BATCH);
    expect(b.packets()).toEqual([{ from: 1, body: 'p1' }, { from: 1, body: 'p2' }, { from: 1, body: 'p3' }]);
    expect(c.frames().slice(1).map((f) => f.type)).toEqual([FRAME_RECV_PACKET, FRAME_RECV_PACKET]);
    expect(c.packets()).toEqual([{ from: 2, body: 'q1' }, { from: 2, body: 'q2' }]);
    expect(relay.counters).toMatchObject({ packetsForwarded: 5, batchesSent: 1 });
  });

  it('a SEND_BATCH is forwarded entry by entry: the sender key stamped, an unknown key told gone, a too-big entry dropped', async () => {
    const { relay, join } = setup({ maxPacketBytes: 8 });
    const a = join(1, true);
    const b = join(2, false);
    const c = join(3, true);
    a.emit('message', batch([[2, 'to-b'], [9, 'nobody'], [3, 'to-c'], [2, 'too-big-for-8'], [3, 'c-again']]), true);
    await turn();
    expect(b.packets()).toEqual([{ from: 1, body: 'to-b' }]);
    expect(c.packets()).toEqual([{ from: 1, body: 'to-c' }, { from: 1, body: 'c-again' }]);
    const gone = a.frames().filter((f) => f.type === FRAME_PEER_GONE);
    expect(gone.map((f) => f.type === FRAME_PEER_GONE && [f.key[0], f.reason])).toEqual([[9, PeerGoneReason.NotConnected]]);
    expect(relay.counters).toMatchObject({ batchesReceived: 1, packetsForwarded: 3, dropped: { noSuchPeer: 1, tooBig: 1 } });
  });

  it('a malformed batch closes that client with BadFrame and forwards none of it', async () => {
    const { relay, join } = setup();
    const a = join(1, true);
    const b = join(2, true);
    const bad = Buffer.concat([batch([[2, 'first'], [2, 'second']]), Buffer.of(0xff)]);
    a.emit('message', bad, true);
    await turn();
    expect(a.closed?.code).toBe(RelayClose.BadFrame);
    expect(a.closed?.reason).toContain('entry 3');
    expect(b.packets()).toEqual([]);
    expect(relay.counters.badFrames).toBe(1);
  });

  it('what waits in a batch counts toward the queue bound: past it, newer packets are dropped', async () => {
    const { relay, join } = setup({ maxQueueBytes: 100 });
    const a = join(1, false);
    const b = join(2, true);
    for (let i = 0; i < 5; i++) a.packet(key(2), Buffer.alloc(30, 0x41 + i));
    await turn();
    expect(b.packets().map((p) => p.body[0])).toEqual(['A', 'B', 'C']);
    expect(relay.counters.dropped.queueFull).toBe(2);
  });
});

describe('RelayClient batches', () => {
  it('with a version 3 server: sends CLIENT_INFO, packets sent in one turn leave as one SEND_BATCH, and a RECV_BATCH is read entry by entry', async () => {
    const sock = new FakeSocket();
    const got: string[] = [];
    const client = new RelayClient(sock, { onPacket: (from, p) => got.push(`${from[0]}:${p.toString()}`) });
    sock.emit('message', encodeServerInfo(key(1), 65536), true);
    expect(sock.sent).toEqual([encodeClientInfo()]);
    const reused = Buffer.from('aa');
    client.send(key(2), reused);
    reused.write('zz'); // the caller reuses its buffer: what was sent is what it held then
    client.send(key(3), Buffer.from('bb'));
    expect(sock.sent).toHaveLength(1);
    await turn();
    expect(sock.sent).toHaveLength(2);
    expect(entries(sock.sent[1]!)).toEqual([[2, 'aa'], [3, 'bb']]);
    expect(client.counters).toMatchObject({ sent: 2, batchesSent: 1 });
    sock.emit('message', batch([[4, 'x'], [5, 'y']], FRAME_RECV_BATCH, FRAME_RECV_PACKET), true);
    expect(got).toEqual(['4:x', '5:y']);
    expect(client.counters.received).toBe(2);
  });

  it('with a version 2 server: no CLIENT_INFO and one SEND_PACKET per packet, at once', async () => {
    const sock = new FakeSocket();
    const client = new RelayClient(sock, { onPacket: () => {} });
    sock.emit('message', encodeFrame(0x04, key(1), Buffer.from([2, 0, 1, 0, 0])), true);
    client.send(key(2), Buffer.from('aa'));
    client.send(key(2), Buffer.from('bb'));
    expect(sock.sent.map((b) => b[0])).toEqual([FRAME_SEND_PACKET, FRAME_SEND_PACKET]);
    await turn();
    expect(sock.sent).toHaveLength(2);
  });
});

/** The relay over UDP: its datagrams, the ticket, and the relay core's binding and forwarding over fake sockets. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  bindMacValid, encodeBind, encodeFrame, encodeSendHeader, encodeServerInfo, FRAME_RECV_PACKET, FRAME_SEND_PACKET, FRAME_SERVER_INFO, isRelayDatagram, readBindHeader, readRecv, readServerFrame, RelayServer, UDP_BIND, UDP_BIND_ACK, UDP_BIND_BYTES, UDP_RECV,
} from '../src/index.js';
import { FakeSocket, key } from './fake-socket.js';

class FakeUdp {
  readonly port = 3478;
  readonly out: { msg: Buffer; port: number; address: string }[] = [];
  send(msg: Buffer, port: number, address: string): void {
    this.out.push({ msg: Buffer.from(msg), port, address });
  }
}

const A = { address: '198.51.100.7', port: 40001 };
const B = { address: '203.0.113.9', port: 50002 };

function setup(udpOn = true) {
  const relay = new RelayServer({ mayRelay: () => true, pingIntervalMs: 3_600_000, udpBindingTtlMs: 30_000 });
  const udp = new FakeUdp();
  if (udpOn) relay.attachUdp(udp);
  const join = (id: number) => {
    const s = new FakeSocket();
    relay.accept(s, id, key(id));
    return s;
  };
  const bind = (s: FakeSocket, from: { address: string; port: number }, seq = 1n) => {
    const t = s.ticket();
    relay.receiveUdp(encodeBind(UDP_BIND, t.id, t.secret, seq), from);
  };
  const sendUdp = (s: FakeSocket, from: { address: string; port: number }, dst: Buffer, body: string) => {
    relay.receiveUdp(Buffer.concat([encodeSendHeader(s.ticket().id, dst), Buffer.from(body)]), from);
  };
  return { relay, udp, join, bind, sendUdp };
}

afterEach(() => vi.useRealTimers());

describe('relay UDP datagrams', () => {
  it('a bind round-trips its id and seq, and its mac holds only under its own secret', () => {
    const id = Buffer.alloc(8, 5);
    const secret = Buffer.alloc(32, 6);
    const b = encodeBind(UDP_BIND, id, secret, 42n);
    expect(b.length).toBe(UDP_BIND_BYTES);
    const h = readBindHeader(b, UDP_BIND);
    expect(h.ok && [h.id.equals(id), h.seq]).toEqual([true, 42n]);
    expect(bindMacValid(b, secret)).toBe(true);
    expect(bindMacValid(b, Buffer.alloc(32, 7))).toBe(false);
    const tampered = Buffer.from(b);
    tampered[12]! ^= 1;
    expect(bindMacValid(tampered, secret)).toBe(false);
    expect(readBindHeader(b, UDP_BIND_ACK).ok).toBe(false);
    expect(readBindHeader(b.subarray(0, 20), UDP_BIND)).toMatchObject({ ok: false, reason: expect.stringContaining('20 bytes') });
  });

  it('relay datagrams never look like STUN (first two bits 0) or WireGuard (first byte 1..4)', () => {
    for (let b = 0; b < 256; b++) {
      const looks = isRelayDatagram(Buffer.of(b, 0, 0, 0));
      if (looks) expect(b >> 6 !== 0 && (b < 1 || b > 4)).toBe(true);
    }
    expect(isRelayDatagram(Buffer.of(UDP_RECV))).toBe(false); // a relay never takes its own RECV as input
  });

  it('SERVER_INFO carries the ticket after version and limit; a reader that knows only 5 bytes still reads it', () => {
    const ticket = { port: 3478, id: Buffer.alloc(8, 1), secret: Buffer.alloc(32, 2) };
    const f = readServerFrame(encodeServerInfo(key(1), 1500, ticket));
    expect(f.ok && f.frame.type === FRAME_SERVER_INFO && f.frame.udp).toEqual(ticket);
    const plain = readServerFrame(encodeServerInfo(key(1), 1500));
    expect(plain.ok && plain.frame).not.toHaveProperty('udp');
  });

  it('a RECV reads its sender and packet; anything shorter than its header is not one', () => {
    const r = readRecv(Buffer.concat([Buffer.of(UDP_RECV), key(3), Buffer.from('pkt')]));
    expect(r && [r.from.equals(key(3)), r.packet.toString()]).toEqual([true, 'pkt']);
    expect(readRecv(Buffer.of(UDP_RECV, 1, 2))).toBeUndefined();
  });
});

describe('RelayServer over UDP', () => {
  it('hands a ticket only when UDP is attached, a different id and secret per client', () => {
    const off = setup(false);
    expect(off.join(1).frames()[0]).not.toHaveProperty('udp');
    const { join } = setup();
    const [a, b] = [join(1), join(2)];
    expect(a.ticket().port).toBe(3478);
    expect(a.ticket().id.equals(b.ticket().id)).toBe(false);
    expect(a.ticket().secret.equals(b.ticket().secret)).toBe(false);
  });

  it('a bind with the right mac binds the source and is answered with a bind-ack of the same length', () => {
    const { relay, udp, join, bind } = setup();
    const a = join(1);
    bind(a, A);
    expect(udp.out).toHaveLength(1);
    const ack = udp.out[0]!;
    expect([ack.address, ack.port, ack.msg.length]).toEqual([A.address, A.port, UDP_BIND_BYTES]);
    expect(bindMacValid(ack.msg, a.ticket().secret)).toBe(true);
    expect(readBindHeader(ack.msg, UDP_BIND_ACK)).toMatchObject({ ok: true, seq: 1n });
    expect(relay.udpBound(1)).toBe(true);
    expect(relay.counters.udp.binds).toBe(1);
  });

  it('a bind with a wrong mac, an unknown id, a replayed seq or a bad length is refused and answered with nothing (no amplification)', () => {
    const { relay, udp, join, bind } = setup();
    const a = join(1);
    const t = a.ticket();
    relay.receiveUdp(encodeBind(UDP_BIND, t.id, Buffer.alloc(32), 1n), A);
    relay.receiveUdp(encodeBind(UDP_BIND, Buffer.alloc(8, 9), t.secret, 1n), A);
    relay.receiveUdp(encodeBind(UDP_BIND, t.id, t.secret, 1n).subarray(0, 30), A);
    expect(udp.out).toHaveLength(0);
    expect(relay.udpBound(1)).toBe(false);
    bind(a, A, 5n);
    const replay = encodeBind(UDP_BIND, t.id, t.secret, 5n);
    relay.receiveUdp(replay, B); // the same bind again, from elsewhere: still bound to A
    relay.receiveUdp(encodeBind(UDP_BIND, t.id, t.secret, 4n), B);
    expect(udp.out).toHaveLength(1);
    expect(relay.counters.udp.bindsRefused).toBe(5);
    expect(relay.counters.udp.bindsRefusedBy).toEqual({ badMac: 1, unknownSession: 1, malformed: 1, replayed: 2 });
  });

  it('a newer bind from another address (the NAT moved the client) rebinds it', () => {
    const { udp, join, bind, relay } = setup();
    const a = join(1);
    const b = join(2);
    bind(a, A, 1n);
    bind(a, B, 2n);
    udp.out.length = 0;
    b.emit('message', encodeFrame(FRAME_SEND_PACKET, key(1), Buffer.from('hi')), true);
    expect(udp.out.map((o) => `${o.address}:${o.port}`)).toEqual([`${B.address}:${B.port}`]);
    expect(relay.counters.udp.packetsOut).toBe(1);
  });

  it('a send from an unbound source, or with another client\'s id from the wrong address, is dropped unanswered', () => {
    const { relay, udp, join, bind, sendUdp } = setup();
    const a = join(1);
    const b = join(2);
    sendUdp(a, A, key(2), 'before bind');
    bind(a, A);
    udp.out.length = 0;
    sendUdp(a, B, key(2), 'spoofed id, wrong address');
    relay.receiveUdp(Buffer.of(0xa3, 1, 2), A);
    expect(udp.out).toHaveLength(0);
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(0);
    expect(relay.counters.udp.unbound).toBe(3);
  });

  it('a bound sender reaches a WebSocket-only peer as RECV_PACKET stamped with its authenticated key', () => {
    const { relay, join, bind, sendUdp } = setup();
    const a = join(1);
    const b = join(2);
    bind(a, A);
    sendUdp(a, A, key(2), 'over udp');
    const got = b.frames().filter((f) => f.type === FRAME_RECV_PACKET);
    expect(got).toHaveLength(1);
    expect(got[0]!.key.equals(key(1))).toBe(true);
    expect(got[0]!.type === FRAME_RECV_PACKET && got[0]!.body.toString()).toBe('over udp');
    expect(relay.counters).toMatchObject({ packetsForwarded: 1, bytesForwarded: 8, udp: { packetsIn: 1, packetsOut: 0 } });
  });

  it('packets to a bound peer leave over UDP as RECV to its bound address, from UDP and WebSocket senders alike', () => {
    const { udp, join, bind, sendUdp } = setup();
    const a = join(1);
    const b = join(2);
    const c = join(3);
    bind(a, A);
    bind(b, B);
    udp.out.length = 0;
    sendUdp(a, A, key(2), 'udp to udp');
    c.emit('message', encodeFrame(FRAME_SEND_PACKET, key(2), Buffer.from('ws to udp')), true);
    expect(udp.out.map((o) => [o.address, o.port])).toEqual([[B.address, B.port], [B.address, B.port]]);
    const recv = udp.out.map((o) => readRecv(o.msg)!);
    expect(recv.map((r) => [r.from[0], r.packet.toString()])).toEqual([[1, 'udp to udp'], [3, 'ws to udp']]);
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(0);
  });

  it('a binding not refreshed within its ttl lapses: packets go to the WebSocket again', () => {
    vi.useFakeTimers();
    const { relay, udp, join, bind } = setup();
    const a = join(1);
    const b = join(2);
    const pingAll = () => (relay as unknown as { pingAll(): void }).pingAll();
    bind(b, B);
    vi.advanceTimersByTime(29_000);
    pingAll();
    expect(relay.udpBound(2)).toBe(true);
    a.emit('pong');
    b.emit('pong');
    vi.advanceTimersByTime(2_000);
    pingAll();
    expect(relay.udpBound(2)).toBe(false);
    udp.out.length = 0;
    a.emit('message', encodeFrame(FRAME_SEND_PACKET, key(2), Buffer.from('back on ws')), true);
    expect(udp.out).toHaveLength(0);
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(1);
    relay.close(1001, 'done');
  });

  it('a bound client that sends over its WebSocket (its UDP stopped working) is unbound: packets to it go to the WebSocket until it binds again', () => {
    const { relay, udp, join, bind } = setup();
    const a = join(1);
    const b = join(2);
    bind(b, B, 1n);
    b.emit('message', encodeFrame(FRAME_SEND_PACKET, key(1), Buffer.from('b fell back')), true);
    expect(relay.udpBound(2)).toBe(false);
    udp.out.length = 0;
    a.emit('message', encodeFrame(FRAME_SEND_PACKET, key(2), Buffer.from('to b')), true);
    expect(udp.out).toHaveLength(0);
    expect(b.frames().filter((f) => f.type === FRAME_RECV_PACKET)).toHaveLength(1);
    bind(b, B, 2n);
    a.emit('message', encodeFrame(FRAME_SEND_PACKET, key(2), Buffer.from('to b again')), true);
    expect(udp.out.filter((o) => readRecv(o.msg)).map((o) => readRecv(o.msg)!.packet.toString())).toEqual(['to b again']);
    expect(relay.counters.udp.unbinds).toBe(1);
  });

  it('a client that closed its WebSocket loses its UDP id: its binds and sends are refused', () => {
    const { relay, udp, join, bind, sendUdp } = setup();
    const a = join(1);
    join(2);
    bind(a, A);
    a.close();
    udp.out.length = 0;
    const t = a.ticket();
    relay.receiveUdp(encodeBind(UDP_BIND, t.id, t.secret, 9n), A);
    sendUdp(a, A, key(2), 'after close');
    expect(udp.out).toHaveLength(0);
    expect(relay.counters.udp).toMatchObject({ bindsRefused: 1, unbound: 1 });
  });
});

/** RelayUdpClient against a stand-in relay on a real loopback UDP socket: what goes on the wire, and what is let in. */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBind, readBindHeader, RelayUdpClient, UDP_BIND, UDP_BIND_ACK, UDP_RECV, UDP_SEND, UDP_SEND_HEADER_BYTES, type UdpTicket } from '../src/index.js';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  open.push(s);
  return s;
}

/** A relay stand-in that answers each BIND with a BIND_ACK and records the rest. */
async function fakeRelay(ticket: Omit<UdpTicket, 'port'>) {
  const s = await udp();
  const got: Buffer[] = [];
  s.on('message', (msg, from) => {
    if (msg[0] === UDP_BIND) {
      const h = readBindHeader(msg, UDP_BIND);
      if (h.ok) s.send(encodeBind(UDP_BIND_ACK, ticket.id, ticket.secret, h.seq), from.port, from.address);
      return;
    }
    got.push(Buffer.from(msg));
  });
  return { socket: s, port: s.address().port, got };
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('RelayUdpClient', () => {
  const base = { id: Buffer.alloc(8, 7), secret: Buffer.alloc(32, 9) };

  it('its socket is connected to the relay (sends name no address: no per-datagram lookup), and a datagram from another port never reaches onPacket', async () => {
    const relay = await fakeRelay(base);
    const packets: Buffer[] = [];
    const c = await RelayUdpClient.open({ ticket: { ...base, port: relay.port }, host: '127.0.0.1', bindIntervalMs: 60_000, retryMs: 50, deadAfterMs: 60_000, onPacket: (_from, p) => packets.push(Buffer.from(p)) });
    open.push(c);
    await until(() => c.usable);
    expect(c.usable).toBe(true);
    const remote = (c as unknown as { socket: Socket }).socket.remoteAddress();
    expect(remote).toEqual({ address: '127.0.0.1', family: 'IPv4', port: relay.port });
    const local = (c as unknown as { socket: Socket }).socket.address().port;
    const stranger = await udp();
    const recv = (body: string) => Buffer.concat([Buffer.from([UDP_RECV]), Buffer.alloc(32, 1), Buffer.from(body)]);
    stranger.send(recv('from a stranger'), local, '127.0.0.1');
    relay.socket.send(recv('from the relay'), local, '127.0.0.1');
    await until(() => packets.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(packets.map((p) => p.toString())).toEqual(['from the relay']);
  });

  it('SEND carries the header for each destination, cached per key object; forget drops it and the next send builds it again', async () => {
    const relay = await fakeRelay(base);
    const c = await RelayUdpClient.open({ ticket: { ...base, port: relay.port }, host: '127.0.0.1', bindIntervalMs: 60_000, retryMs: 50, deadAfterMs: 60_000, onPacket: () => {} });
    open.push(c);
    await until(() => c.usable);
    const [k1, k2] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
    c.send(k1, Buffer.from('one'));
    c.send(k2, Buffer.from('two'));
    c.send(k1, Buffer.from('three'));
    c.forget(k1);
    c.send(k1, Buffer.from('four'));
    await until(() => relay.got.length === 4);
    expect(relay.got.map((m) => [m[0], m.subarray(1, 9).equals(base.id), m.subarray(9, UDP_SEND_HEADER_BYTES)[0], m.subarray(UDP_SEND_HEADER_BYTES).toString()])).toEqual([
      [UDP_SEND, true, 1, 'one'],
      [UDP_SEND, true, 2, 'two'],
      [UDP_SEND, true, 1, 'three'],
      [UDP_SEND, true, 1, 'four'],
    ]);
    expect(c.counters.sent).toBe(4);
  });
});

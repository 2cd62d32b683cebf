/**
 * StunServer on real loopback UDP sockets: IPv4, dual-stack IPv6, garbage, counters, port in use,
 * close; each case on both sockets (the batched native one and node:dgram), and the batch path's
 * own cases (bursts, hooks' copies, fds after close).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bindingRequest, encodeBindingRequest, readBindingResponse, StunServer, type StunServerOptions } from '../src/index.js';
import { udpBatchAddon } from '../src/native-udp.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

const addon = udpBatchAddon();
const ios: { io: 'native' | 'dgram'; native: boolean }[] = [{ io: 'native', native: true }, { io: 'dgram', native: false }];

let native = false;
async function server(listen: string, opts: Partial<StunServerOptions> = {}): Promise<StunServer> {
  const s = await StunServer.listen({ listen, native, ...opts });
  open.push(s);
  return s;
}

async function boundSocket(type: 'udp4' | 'udp6', address: string): Promise<Socket> {
  const sock = createSocket(type);
  await new Promise<void>((r) => sock.bind(0, address, r));
  open.push({ close: () => new Promise<void>((r) => sock.close(() => r())) });
  return sock;
}

/** Waits until the server has counted `n` of something, without asserting a time. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

it('the batched UDP addon loads (scripts/build.mjs builds it with gcc, which install-test-deps.sh installs)', () => {
  expect(addon.addon ? 'loaded' : addon.reason).toBe('loaded');
});

describe.each(ios)('StunServer ($io)', ({ io, native: useNative }) => {
  // Without the addon the native cases fail (StunServer.listen with native: true says why), as a
  // missing wireguard-go fails the e2e tier: scripts/install-test-deps.sh installs gcc.
  beforeEach(() => {
    native = useNative;
  });

  it('uses the socket it was asked for', async () => {
    expect((await server('127.0.0.1:0')).io).toBe(io);
  });

  it('answers an IPv4 Binding request with the address and port the request came from', async () => {
    const s = await server('127.0.0.1:0');
    expect(s.address().port).toBeGreaterThan(0);
    const sock = await boundSocket('udp4', '127.0.0.1');
    const mapped = await bindingRequest({ host: '127.0.0.1', port: s.address().port, socket: sock });
    expect(mapped).toEqual({ family: 'IPv4', address: '127.0.0.1', port: sock.address().port });
    expect(s.counters).toMatchObject({ requests: 1, responses: 1, malformed: 0 });
  });

  it('[::]:PORT is dual-stack: IPv4 clients get their IPv4 address, IPv6 clients their IPv6 one', async () => {
    const s = await server('[::]:0');
    const port = s.address().port;
    const v4 = await boundSocket('udp4', '127.0.0.1');
    expect(await bindingRequest({ host: '127.0.0.1', port, socket: v4 })).toEqual({ family: 'IPv4', address: '127.0.0.1', port: v4.address().port });
    const v6 = await boundSocket('udp6', '::1');
    expect(await bindingRequest({ host: '::1', port, socket: v6 })).toEqual({ family: 'IPv6', address: '::1', port: v6.address().port });
  });

  it('drops garbage, counts it, and keeps answering everyone else', async () => {
    const s = await server('127.0.0.1:0');
    const port = s.address().port;
    const sock = await boundSocket('udp4', '127.0.0.1');
    for (const junk of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(1400, 0xff), Buffer.from('000100ff2112a442000000000000000000000000', 'hex')]) sock.send(junk, port, '127.0.0.1');
    await until(() => s.counters.malformed === 4);
    expect(s.counters.malformed).toBe(4);
    await bindingRequest({ host: '127.0.0.1', port });
    expect(s.counters).toMatchObject({ requests: 1, responses: 1, malformed: 4, errorResponses: 0 });
  });

  it('a port in use rejects with EADDRINUSE; after close() the port can be bound again', async () => {
    const s = await server('127.0.0.1:0');
    const port = s.address().port;
    await expect(StunServer.listen({ listen: `127.0.0.1:${port}` })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await s.close();
    const again = await server(`127.0.0.1:${port}`);
    expect(again.address().port).toBe(port);
  });

  it('rejects a listen address that is not HOST:PORT, naming it', async () => {
    await expect(StunServer.listen({ listen: 'localhost' })).rejects.toThrow(/"localhost" is not HOST:PORT/);
  });

  it('answers a burst of more than a batch from several sockets, each with its own address and port', async () => {
    const s = await server('127.0.0.1:0');
    const port = s.address().port;
    const socks = await Promise.all([0, 1, 2, 3].map(() => boundSocket('udp4', '127.0.0.1')));
    const PER_SOCKET = 50; // 200 in all, sent back to back: more than one recvmmsg batch (64)
    const answers = socks.map(() => new Map<string, number>());
    socks.forEach((sock, k) => sock.on('message', (msg) => {
      const id = msg.subarray(8, 20);
      answers[k]!.set(id.toString('hex'), readBindingResponse(msg, id)?.port ?? -1);
    }));
    socks.forEach((sock, k) => {
      for (let i = 0; i < PER_SOCKET; i++) {
        const id = Buffer.alloc(12);
        id.writeUInt32BE(k, 0);
        id.writeUInt32BE(i, 8);
        // Half bare, half with FINGERPRINT: both take the quick path.
        sock.send(i % 2 ? encodeBindingRequest(id) : Buffer.concat([Buffer.from('000100002112a442', 'hex'), id]), port, '127.0.0.1');
      }
    });
    await until(() => answers.every((a) => a.size === PER_SOCKET));
    socks.forEach((sock, k) => {
      expect(answers[k]!.size).toBe(PER_SOCKET);
      expect(new Set(answers[k]!.values())).toEqual(new Set([sock.address().port]));
    });
    expect(s.counters).toMatchObject({ requests: 4 * PER_SOCKET, responses: 4 * PER_SOCKET, malformed: 0 });
  });

  it('answers IPv6 and IPv4-mapped peers in one burst on [::]', async () => {
    const s = await server('[::]:0');
    const port = s.address().port;
    const v4 = await boundSocket('udp4', '127.0.0.1');
    const v6 = await boundSocket('udp6', '::1');
    const seen: string[] = [];
    const collect = (sock: Socket) => sock.on('message', (msg) => {
      const m = readBindingResponse(msg, msg.subarray(8, 20));
      seen.push(`${m?.address}:${m?.port}`);
    });
    collect(v4);
    collect(v6);
    for (let i = 0; i < 40; i++) {
      v4.send(encodeBindingRequest(), port, '127.0.0.1');
      v6.send(encodeBindingRequest(), port, '::1');
    }
    await until(() => seen.length === 80);
    expect(new Set(seen)).toEqual(new Set([`127.0.0.1:${v4.address().port}`, `::1:${v6.address().port}`]));
  });

  it('hands relay datagrams and WireGuard initiations to their hooks as copies, with the peer', async () => {
    const s = await server('[::]:0');
    const port = s.address().port;
    const got: { kind: string; msg: Buffer; from: RemoteInfo }[] = [];
    s.relay = (msg, from) => got.push({ kind: 'relay', msg, from });
    s.wireGuard = (msg, from) => got.push({ kind: 'wg', msg, from });
    const sock = await boundSocket('udp4', '127.0.0.1');
    const relayMsg = Buffer.concat([Buffer.from([0xa1]), Buffer.alloc(60, 7)]);
    const initiation = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(144, 9)]);
    // Binding requests around them reuse the receive buffer; the copies must not change.
    for (let i = 0; i < 70; i++) sock.send(encodeBindingRequest(), port, '127.0.0.1');
    sock.send(relayMsg, port, '127.0.0.1');
    sock.send(initiation, port, '127.0.0.1');
    for (let i = 0; i < 70; i++) sock.send(encodeBindingRequest(), port, '127.0.0.1');
    await until(() => got.length === 2 && s.counters.responses === 140);
    expect(got.map((g) => g.kind)).toEqual(['relay', 'wg']);
    expect(got[0]!.msg).toEqual(relayMsg);
    expect(got[1]!.msg).toEqual(initiation);
    for (const g of got) expect(g.from).toMatchObject({ address: '::ffff:127.0.0.1', family: 'IPv6', port: sock.address().port });
    // The relay answers from the server's socket, to the address its hook saw.
    const back = new Promise<string>((r) => sock.on('message', (m) => m[0] === 0x72 /* r */ && r(m.toString())));
    s.send(Buffer.from('relayed'), got[0]!.from.port, got[0]!.from.address);
    expect(await back).toBe('relayed');
  });

  it('a hook that throws costs that datagram only', async () => {
    const s = await server('127.0.0.1:0');
    s.relay = () => {
      throw new Error('boom');
    };
    const sock = await boundSocket('udp4', '127.0.0.1');
    sock.send(Buffer.from([0xa1, 1, 2, 3]), s.address().port, '127.0.0.1');
    expect(await bindingRequest({ host: '127.0.0.1', port: s.address().port, socket: sock })).toMatchObject({ port: sock.address().port });
  });

  it('counts and drops malformed datagrams in a burst and answers the requests among them', async () => {
    const s = await server('127.0.0.1:0');
    const port = s.address().port;
    const sock = await boundSocket('udp4', '127.0.0.1');
    let answers = 0;
    sock.on('message', () => answers++);
    const junk = [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(1400, 0xff), Buffer.from('000100ff2112a442000000000000000000000000', 'hex'), Buffer.alloc(8000, 0)];
    for (let i = 0; i < 20; i++) for (const j of junk) sock.send(j, port, '127.0.0.1');
    for (let i = 0; i < 30; i++) sock.send(encodeBindingRequest(), port, '127.0.0.1');
    await until(() => s.counters.malformed === 100 && answers === 30);
    expect(s.counters).toMatchObject({ malformed: 100, requests: 30, responses: 30 });
    expect(answers).toBe(30);
  });

  it('a send to an invalid or unreachable address does not throw', async () => {
    const warned: string[] = [];
    const s = await server('127.0.0.1:0', { log: { warn: (_o, msg) => warned.push(msg), debug: () => {} } });
    for (const [port, address] of [[9, 'not-an-address'], [0, '127.0.0.1'], [70000, '127.0.0.1'], [9, '::1'], [9, '192.0.2.1'], [9, '']] as const) expect(() => s.send(Buffer.from('x'), port, address)).not.toThrow();
    await new Promise((r) => setTimeout(r, 20));
    expect(await bindingRequest({ host: '127.0.0.1', port: s.address().port })).toMatchObject({ address: '127.0.0.1' });
  });

  it('close() frees the socket: many opens and closes leave no fd behind', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const first = await StunServer.listen({ listen: '127.0.0.1:0', native });
    await first.close();
    const before = fds();
    for (let i = 0; i < 200; i++) {
      const s = await StunServer.listen({ listen: '127.0.0.1:0', native });
      await s.close();
      await s.close(); // twice is fine
    }
    // dgram closes its handle on a later tick; the native socket at once.
    await until(() => fds() <= before);
    expect(fds()).toBeLessThanOrEqual(before);
  });
});

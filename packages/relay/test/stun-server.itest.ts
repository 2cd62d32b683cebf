/** StunServer on real loopback UDP sockets: IPv4, dual-stack IPv6, garbage, counters, port in use, close. */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { bindingRequest, StunServer } from '../src/index.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

async function server(listen: string): Promise<StunServer> {
  const s = await StunServer.listen({ listen });
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

describe('StunServer', () => {
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
});

/**
 * Interop both ways with other STUN implementations: the npm `stun` package (client and server)
 * and Debian coturn (`turnutils_stunclient` against us; our client against `turnserver
 * --stun-only`).
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { promisify } from 'node:util';
import { bindingRequest, encodeBindingRequest, parseMessage, readBindingResponse, StunServer } from '@weft/relay';
// The `stun` package ships no types; only what these tests touch is declared.
// @ts-expect-error no declaration file
import stunPkg from 'stun';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireCoturn, startCoturn, type Coturn } from '../../../../test-support/coturn.js';

interface StunPkgMessage {
  getXorAddress(): { address: string; port: number; family: string } | undefined;
  getAddress(): { address: string; port: number; family: string } | undefined;
}
const stun = stunPkg as {
  request(url: string, opts: { socket?: Socket; timeout?: number; retries?: number }): Promise<StunPkgMessage>;
  decode(buf: Buffer): StunPkgMessage;
  validateFingerprint(m: StunPkgMessage): boolean;
  createServer(opts: { type: 'udp4'; socket: Socket }): {
    on(event: string, cb: (req: unknown, rinfo: { address: string; port: number }) => void): void;
    send(m: unknown, port: number, address: string): void;
    close(): void;
  };
  createMessage(type: number): { addXorAddress(address: string, port: number): void };
  constants: { STUN_BINDING_RESPONSE: number; STUN_EVENT_BINDING_REQUEST: string };
};

const run = promisify(execFile);
let server: StunServer;
const seen: { address: string; port: number }[] = [];

beforeAll(async () => {
  server = await StunServer.listen({ listen: '127.0.0.1:0', onRequest: (from) => seen.push({ address: from.address, port: from.port }) });
});
afterAll(() => server.close());

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});
async function udp4(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  sockets.push(s);
  return s;
}

describe('npm stun package <-> Weft', () => {
  it('its client gets XOR-MAPPED-ADDRESS = the address and port our server saw, and our FINGERPRINT validates', async () => {
    const sock = await udp4();
    const res = await stun.request(`127.0.0.1:${server.address().port}`, { socket: sock, timeout: 200, retries: 3 });
    expect(res.getXorAddress()).toMatchObject({ address: '127.0.0.1', port: sock.address().port });
    expect(stun.validateFingerprint(res)).toBe(true);
    expect(seen.at(-1)).toEqual({ address: '127.0.0.1', port: sock.address().port });
  });

  it('it decodes what our codec encodes, and we parse what it encodes (a Binding request from its client)', async () => {
    const req = encodeBindingRequest();
    const decoded = stun.decode(req) as unknown as { type: number };
    expect(decoded.type).toBe(0x0001);
    // Capture the request the package's client sends, then answer it with our codec.
    const listener = await udp4();
    const got = new Promise<Buffer>((r) => listener.once('message', (m) => r(m)));
    void stun.request(`127.0.0.1:${listener.address().port}`, { timeout: 100, retries: 0 }).catch(() => {});
    const theirs = await got;
    const p = parseMessage(theirs);
    expect(p.ok && [p.message.method, p.message.cls, p.message.cookie]).toEqual([1, 0, true]);
  });

  it('our client gets its own address from the package\'s server', async () => {
    const serverSock = await udp4();
    const theirServer = stun.createServer({ type: 'udp4', socket: serverSock });
    theirServer.on(stun.constants.STUN_EVENT_BINDING_REQUEST, (req, rinfo) => {
      const res = stun.createMessage(stun.constants.STUN_BINDING_RESPONSE) as { addXorAddress(a: string, p: number): void; setTransactionID?(id: Buffer): void };
      res.setTransactionID?.((req as { transactionId: Buffer }).transactionId);
      res.addXorAddress(rinfo.address, rinfo.port);
      theirServer.send(res, rinfo.port, rinfo.address);
    });
    const client = await udp4();
    expect(await bindingRequest({ host: '127.0.0.1', port: serverSock.address().port, socket: client })).toEqual({ family: 'IPv4', address: '127.0.0.1', port: client.address().port });
  });
});

describe('Debian coturn <-> Weft', () => {
  let coturn: Coturn | undefined;
  beforeAll(async () => {
    requireCoturn();
    coturn = await startCoturn();
  }, 30_000);
  afterAll(async () => {
    await coturn?.stop();
  });

  it('turnutils_stunclient prints as its reflexive address exactly the source our server saw', async () => {
    const before = seen.length;
    const { stdout, stderr } = await run('turnutils_stunclient', ['-p', String(server.address().port), '127.0.0.1'], { timeout: 15_000 });
    const m = /UDP reflexive addr: (\S+):(\d+)/.exec(stdout + stderr);
    expect(m, stdout + stderr).not.toBeNull();
    const fromServer = seen.slice(before);
    expect(fromServer.length).toBeGreaterThan(0);
    expect({ address: m![1], port: Number(m![2]) }).toEqual(fromServer.at(-1));
    expect(m![1]).toBe('127.0.0.1');
  });

  it('our client learns its own address and port from turnserver --stun-only', async () => {
    const sock = await udp4();
    expect(await bindingRequest({ host: '127.0.0.1', port: coturn!.port, socket: sock })).toEqual({ family: 'IPv4', address: '127.0.0.1', port: sock.address().port });
  });

  it('our codec reads coturn\'s raw response (and its FINGERPRINT checks)', async () => {
    const sock = await udp4();
    const txid = Buffer.from('a1a2a3a4a5a6a7a8a9aaabac', 'hex');
    const got = new Promise<Buffer>((r) => sock.once('message', (m) => r(m)));
    sock.send(encodeBindingRequest(txid), coturn!.port, '127.0.0.1');
    const raw = await got;
    const p = parseMessage(raw);
    expect(p.ok, p.ok ? '' : p.reason).toBe(true);
    expect(p.ok && p.message.fingerprint).toBe(true);
    expect(readBindingResponse(raw, txid)).toEqual({ family: 'IPv4', address: '127.0.0.1', port: sock.address().port });
  });
});

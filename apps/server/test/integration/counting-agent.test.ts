/**
 * The fleet's counting reader (test-support/counting-socket.ts): a sim agent that does not parse
 * reads frames as they pass and keeps no netmap. Guards that it still sees every message end (a
 * netmap of many fragments, some longer than 64 KiB, counted to the byte as a parsing agent
 * receives it), parses the deltas it must (a removal), answers the server's pings and hears the
 * close code, so a storm bench that relies on it measures what it says.
 */
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { CloseCode } from '@weft/protocol';
import { CountingSocket, type CountedMessage } from '../../../../test-support/counting-socket.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { SYSTEM } from '../../src/state/context.js';
import { startServer, type TestServer } from '../support/server.js';

describe('a sim agent that counts instead of parsing', () => {
  let s: TestServer;
  let key: string;
  beforeAll(async () => {
    s = await startServer('pglite');
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key as string;
    // 300 peers: one 256-peer chunk is a fragment past 64 KiB (a 64-bit frame length).
    for (let i = 0; i < 300; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => s.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: `bulk-${i + j}`, nodeKey: generateNodeKey().publicKey })));
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('counts a many-fragment netmap to the byte, parses a removal, and hears its close code', async () => {
    const a = new SimAgent(s.url, 'counter');
    await a.register(key);
    await a.connect({ parse: true });
    await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'parsed netmap');
    const parsed = a.received.find((r) => r.msg.type === 'netmap')!;
    expect(a.peers.size).toBe(300);
    await a.disconnect();
    a.received.length = 0;

    await a.connect({ parse: false });
    await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'counted netmap');
    const counted = a.received.find((r) => r.msg.type === 'netmap')!;
    expect(counted.msg.seq).toBe(1);
    expect(counted.bytes).toBe(parsed.bytes);
    expect(counted.bytes).toBeGreaterThan(65_536);

    const gone = (await s.api('GET', '/api/v1/nodes')).body.items.find((n: { name: string }) => n.name === 'bulk-7').id as number;
    await s.state.nodes.delete(SYSTEM, gone);
    await a.waitFor(() => a.received.some((r) => (r.msg.remove as number[] | undefined)?.includes(gone)), 10_000, 'the removal');

    await s.state.nodes.delete(SYSTEM, a.self!.id);
    await a.waitFor(() => a.closed !== null, 10_000, 'close');
    expect(a.closed!.code).toBe(CloseCode.NodeDeleted);
  });

  it('counts a compressed netmap to the byte and reads its seq and revision from the inflated head', async () => {
    const a = new SimAgent(s.url, 'deflate-counter');
    await a.register(key);
    await a.connect({ parse: true, deflate: true });
    await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'parsed netmap');
    const parsed = a.received.find((r) => r.msg.type === 'netmap')!;
    expect(parsed.binary).toBe(true);
    await a.disconnect();
    a.received.length = 0;

    await a.connect({ parse: false, deflate: true });
    await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'counted netmap');
    const counted = a.received.find((r) => r.msg.type === 'netmap')!;
    expect(counted).toMatchObject({ binary: true, bytes: parsed.bytes, msg: { seq: 1, revision: parsed.msg.revision } });
    a.close();
  });

  it('keeps a message that came in the same read as the 101 until its listener is on', async () => {
    // A small netmap often arrives with the upgrade's answer; emitted before the sim agent had
    // its listener on, it was lost, and the agent waited out its netmap timeout.
    const body = Buffer.from('{"type":"netmap","seq":1,"peers":[]}');
    const frame = Buffer.concat([Buffer.from([0x81, body.length]), body]);
    const raw = createServer((c) => c.once('data', () => c.write(Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'), frame]))));
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const ws = await CountingSocket.open(`ws://127.0.0.1:${(raw.address() as AddressInfo).port}/agent/v1`, { headers: {}, keep: () => true });
      await new Promise((r) => setImmediate(r)); // any read it did on its own has happened by now
      const got: CountedMessage[] = [];
      ws.on('message', (m: CountedMessage) => got.push(m));
      ws.start();
      expect(got.map((m) => m.data?.toString())).toEqual([body.toString()]);
      ws.removeAllListeners();
    } finally {
      raw.close();
    }
  });
});

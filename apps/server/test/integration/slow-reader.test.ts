/**
 * A reader that does not keep up cannot make the server hold more than a bounded queue for it:
 * real server (PGlite; the guard is above storage, so one backend is enough), a few hundred nodes
 * so netmaps are big, sockets that never read next to an agent that does.
 */
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { CloseCode } from '@weft/protocol';
import { generateNodeKey, signMachineToken } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { StalledSocket } from '../../../../test-support/stalled-socket.js';
import { RESYNC_BURST, SOCKET_QUEUE_FLOOR_BYTES, SOCKET_QUEUE_NETMAPS } from '../../src/tunables.js';
import { startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

const BULK_NODES = 400;

describe('slow readers', () => {
  let s: TestServer;
  let key: string;
  /** Server-side socket of each client, by the client's port. */
  const serverSockets = new Map<number, WebSocket>();

  beforeAll(async () => {
    s = await startServer('pglite');
    s.app.websocketServer.on('connection', (ws: WebSocket, req: IncomingMessage) => serverSockets.set(req.socket.remotePort!, ws));
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    const keys = Array.from({ length: BULK_NODES }, () => generateNodeKey().publicKey);
    for (let i = 0; i < keys.length; i += 20) {
      const batch = keys.slice(i, i + 20).map((nodeKey, j) => s.api('POST', '/api/v1/nodes', { user: 'ops', hostname: `bulk-${i + j}`, nodeKey }));
      for (const res of await Promise.all(batch)) expect(res.status).toBe(201);
    }
  }, 120_000);
  afterAll(async () => s?.close());

  async function joined(hostname: string): Promise<SimAgent> {
    return joinedAgent(s.url, hostname, key);
  }

  /** A registered node whose socket never reads, and the server's side of it. */
  async function stalled(hostname: string): Promise<{ agent: SimAgent; socket: StalledSocket; server: WebSocket }> {
    const agent = new SimAgent(s.url, hostname);
    await agent.register(key);
    const socket = await StalledSocket.open(s.url, await signMachineToken(agent.machine.privateKey));
    await agent.waitFor(() => s.mapper.isAttached(agent.self!.id) && serverSockets.has(socket.localPort), 5000, 'stalled socket attached');
    return { agent, socket, server: serverSockets.get(socket.localPort)! };
  }

  /** The healthy agent still gets a delta, in sequence, after whatever the slow one did. */
  async function stillServed(healthy: SimAgent): Promise<void> {
    const other = await joined(`late-${healthy.received.length}`);
    await healthy.waitFor(() => healthy.peers.has(other.self!.id), 10_000, 'delta after the slow reader');
    const sinceNetmap = healthy.received.slice(healthy.received.findLastIndex((r) => r.msg.type === 'netmap'));
    expect(sinceNetmap.map((r) => r.msg.seq)).toEqual(sinceNetmap.map((_, i) => i + 1));
    expect(healthy.closed).toBeNull();
    other.close();
  }

  it('a socket that never reads and spams resyncs is dropped; a reading agent keeps getting deltas', async () => {
    const healthy = await joined('healthy-1');
    const netmapBytes = healthy.received[0]!.bytes;
    expect(netmapBytes).toBeGreaterThan(BULK_NODES * 200);
    const slow = await stalled('spammer');
    let maxQueued = 0;
    for (let i = 0; i < 50 && slow.server.readyState === slow.server.OPEN; i++) {
      slow.socket.sendText('{"type":"resync"}');
      await new Promise((r) => setTimeout(r, 5));
      maxQueued = Math.max(maxQueued, slow.server.bufferedAmount);
    }
    // Dropped well before 50 requests, then destroyed, not left in ws's 30 s close wait.
    await healthy.waitFor(() => slow.server.readyState === slow.server.CLOSED, 5000, 'spammer destroyed');
    expect(s.mapper.isAttached(slow.agent.self!.id)).toBe(false);
    // At most the first netmap and the burst that was answered are ever queued.
    expect(maxQueued).toBeLessThanOrEqual((1 + RESYNC_BURST) * netmapBytes);
    slow.socket.destroy();
    await stillServed(healthy);
    healthy.close();
  });

  it('an agent that reads but asks for a netmap again and again is answered a burst, then closed 1013', async () => {
    const a = await joined('asker');
    for (let i = 0; i < 20; i++) a.send('{"type":"resync"}');
    await a.waitFor(() => a.closed !== null, 5000, 'asker closed');
    expect(a.closed!.code).toBe(CloseCode.TryAgainLater);
    expect(a.received.filter((r) => r.msg.type === 'netmap').length).toBeLessThanOrEqual(1 + RESYNC_BURST);
  });

  it('a socket that never reads is dropped once its queue passes the bound, however the server came to send', async () => {
    const healthy = await joined('healthy-2');
    const netmapBytes = healthy.received[0]!.bytes;
    const limit = Math.max(SOCKET_QUEUE_FLOOR_BYTES, SOCKET_QUEUE_NETMAPS * netmapBytes);
    const slow = await stalled('stalled');
    let maxQueued = 0;
    let resyncs = 0;
    // Server-initiated netmaps for everyone (what follows a change the mapper could not apply):
    // the kernel buffers fill first, then the server-side queue, until the bound trips.
    while (slow.server.readyState === slow.server.OPEN && resyncs < 1000) {
      await s.mapper.resyncAll();
      resyncs++;
      const queued = slow.server.bufferedAmount;
      maxQueued = Math.max(maxQueued, queued);
      // Checked after each send too: never left open over the bound until the next send comes.
      if (slow.server.readyState === slow.server.OPEN) expect(queued).toBeLessThanOrEqual(limit);
    }
    expect(slow.server.readyState).not.toBe(slow.server.OPEN);
    // Checked after every send: over by at most the message that crossed it.
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(limit + netmapBytes);
    await healthy.waitFor(() => slow.server.readyState === slow.server.CLOSED, 5000, 'stalled socket destroyed');
    expect(s.mapper.isAttached(slow.agent.self!.id)).toBe(false);
    // The reading agent got every one of those netmaps and still gets deltas.
    await healthy.waitFor(() => healthy.received.filter((r) => r.msg.type === 'netmap').length === 1 + resyncs, 20_000, 'every netmap');
    slow.socket.destroy();
    await stillServed(healthy);
    healthy.close();
  });
});

/**
 * Netmap admission (mapper/netmap-gate.ts): at most `netmapsInFlight` full netmaps are being
 * written at once, later ones wait their turn in order, and a session waiting for its netmap is
 * sent nothing else meanwhile (its netmap, made when its turn comes, holds the changes made while
 * it waited). Real server (PGlite) with room for one netmap at a time, real WebSocket agents; the
 * first agent's netmap is held on the server's side (its TCP socket corked) so it does not leave.
 */
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { generateNodeKey } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { SYSTEM } from '../../src/state/context.js';
import { startServer, type TestServer } from '../support/server.js';

describe('netmap admission', () => {
  let s: TestServer;
  let key = '';
  /** The next agent socket to attach gets its writes held (corked) on the server's side. */
  let holdNext = false;

  beforeAll(async () => {
    s = await startServer('pglite', { netmapsInFlight: 1 });
    s.app.websocketServer.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
      if (!holdNext) return;
      holdNext = false;
      (ws as unknown as { _socket: { cork(): void } })._socket.cork();
    });
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key as string;
  });
  afterAll(async () => s?.close());

  const agent = async (name: string) => {
    const a = new SimAgent(s.url, name);
    await a.register(key);
    return a;
  };

  it('a netmap waits while the one before it is being written; meanwhile its session is sent nothing; then it holds what changed', async () => {
    const stuck = await agent('stuck');
    const waiting = await agent('waiting');
    holdNext = true;
    await stuck.connect();
    await stuck.waitFor(() => s.mapper.isAttached(stuck.self!.id), 5000, 'stuck attached');
    await waiting.connect();
    await waiting.waitFor(() => s.mapper.isAttached(waiting.self!.id), 5000, 'waiting attached');
    // A change while it waits: a delta to everyone else, not to it.
    const late = await s.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'late', nodeKey: generateNodeKey().publicKey });
    await s.mapper.settled();
    await new Promise((r) => setTimeout(r, 300));
    expect(waiting.received).toEqual([]);
    // The netmap being written goes (its agent drops): the next one starts.
    (stuck.socket as unknown as { terminate(): void }).terminate();
    await waiting.waitFor(() => waiting.received.length > 0, 10_000, 'its netmap');
    const [first] = waiting.received;
    expect(first!.msg).toMatchObject({ type: 'netmap', seq: 1 });
    expect(waiting.peers.has(late.id)).toBe(true);
    // Deltas follow it in sequence, as after any netmap.
    const later = await s.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'later', nodeKey: generateNodeKey().publicKey });
    await waiting.waitFor(() => waiting.peers.has(later.id), 10_000, 'a delta after it');
    expect(waiting.received.map((r) => r.msg.seq)).toEqual(waiting.received.map((_, i) => i + 1));
    waiting.close();
  });
});

/**
 * Compressed netmaps: an agent that sends NETMAP_ENCODING_HEADER gets its netmap (and resume) as
 * one binary message of raw deflate that inflates to exactly the text an agent without it gets,
 * with the list's pieces compressed once and shared; an agent without the header gets text, as
 * before. With the receiving node inside the list (its piece compressed for it without its
 * entry), on the list shared by every node and under an access policy. Real server (PGlite),
 * real WebSocket agents.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { SimAgent, type Received } from '../../../../test-support/sim-agent.js';
import { SYSTEM } from '../../src/state/context.js';
import { startServer, type TestServer } from '../support/server.js';

describe('compressed netmaps', () => {
  let s: TestServer;
  let agent: SimAgent;

  const externals = async (from: number, count: number) => {
    for (let i = from; i < from + count; i += 30) {
      await Promise.all(Array.from({ length: Math.min(30, from + count - i) }, (_, j) => s.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: `bulk-${i + j}`, nodeKey: generateNodeKey().publicKey })));
    }
  };
  /** The first message of a fresh connection. */
  const first = async (opts: { deflate: boolean; resume?: boolean; endpoints?: boolean }): Promise<Received> => {
    await agent.disconnect();
    await s.mapper.settled();
    const mark = agent.received.length;
    await agent.connect({ ...opts, parse: true });
    await agent.waitFor(() => agent.received.length > mark, 10_000, 'the first message');
    return agent.received[mark]!;
  };
  /** A netmap as text and as deflate, back to back: the same JSON. */
  const both = async (resume = false, endpoints = true) => {
    const text = await first({ deflate: false, resume, endpoints });
    const deflated = await first({ deflate: true, resume, endpoints });
    return { text, deflated };
  };

  beforeAll(async () => {
    s = await startServer('pglite', { metrics: {} });
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key as string;
    // The agent in the middle of the list (its id among the externals'): its piece is cut around it.
    await externals(0, 150);
    agent = new SimAgent(s.url, 'reader');
    await agent.register(key);
    await externals(150, 150);
  }, 120_000);
  afterAll(async () => {
    agent?.close();
    await s?.close();
  });

  it('an agent that asks gets a binary netmap that inflates to the text one; one that does not gets text', async () => {
    const { text, deflated } = await both();
    expect(text.binary).toBe(false);
    expect(deflated.binary).toBe(true);
    expect(deflated.msg.type).toBe('netmap');
    expect(deflated.raw).toBe(text.raw);
    expect((deflated.msg.peers as unknown[]).length).toBe(300);
    expect(deflated.bytes).toBeLessThan(text.bytes / 3);
  });

  it('a resume to an agent that asks is binary and inflates to the text one: the compact form (compressed whole) and the older one (shared pieces)', async () => {
    const compact = await both(true);
    expect(compact.text.msg.type).toBe('resume');
    expect(compact.text.msg.presence).toBeDefined();
    expect(compact.deflated.binary).toBe(true);
    expect(compact.deflated.raw).toBe(compact.text.raw);
    const older = await both(true, false);
    expect(older.text.msg.type).toBe('resume');
    expect((older.text.msg.patch as unknown[]).length).toBe(300);
    expect(older.deflated.binary).toBe(true);
    expect(older.deflated.raw).toBe(older.text.raw);
  });

  it('under an access policy: the binary netmap inflates to the text one (packet filter and all)', async () => {
    const policy = JSON.stringify({ acls: [{ action: 'accept', src: ['ops@'], dst: ['ops@:*'] }] });
    expect((await s.api('PUT', '/api/v1/policy', { text: policy }, { 'if-match': '"0"' })).status).toBe(200);
    await agent.waitFor(() => agent.received.some((r) => r.msg.packetFilter !== undefined), 10_000, 'the policy');
    const { text, deflated } = await both();
    expect(JSON.parse(text.raw).packetFilter).toBeDefined();
    expect(deflated.binary).toBe(true);
    expect(deflated.raw).toBe(text.raw);
    expect((deflated.msg.peers as unknown[]).length).toBe(300);
  });
});

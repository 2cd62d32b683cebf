/**
 * Without an access policy, like under one (policy-connect.test.ts): a session whose netmap was
 * sent after a window's patches (it connected in that window) is sent none of them, and one
 * connected before the window ends gets them all in one message. A reconnect storm at 1,000 nodes
 * sent 56 MiB of such patches before the skip. Real server (PGlite and Postgres), real WebSocket
 * agents; the patch window is longer than the test, which ends it (`Mapper.flushPatches`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { connected, drained, flushed, ids, online, patchMessages } from '../support/patch-window.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

describe.each(BACKENDS)('connecting without a policy on %s', (backend) => {
  let s: TestServer;
  let key: string;
  const all: SimAgent[] = [];

  async function join(): Promise<SimAgent> {
    const a = new SimAgent(s.url, `n-${all.length}`);
    await a.register(key);
    await connected(a);
    all.push(a);
    return a;
  }

  beforeAll(async () => {
    s = await startServer(backend, { patchIntervalMs: 3_600_000 });
    await s.api('POST', '/api/v1/users', { name: 'n' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'n', reusable: true })).body.key;
    for (let i = 0; i < 4; i++) await join();
    await online(s, all.length);
    await flushed(s, all);
  }, 300_000);
  afterAll(async () => {
    for (const a of all) a.close();
    await s?.close();
  });

  it('a session whose netmap was sent after the window\'s patches is sent none of them', async () => {
    const [n0, n1] = all;
    const from0 = n0!.received.length;
    n1!.close();
    await online(s, all.length - 1);
    // n1's offline patch is pending; the newcomer's netmap already says so.
    const late = await join();
    await online(s, all.length - 1);
    expect(late.peers.get(n1!.self!.id)?.online).toBe(false);
    const fromLate = late.received.length;
    s.mapper.flushPatches();
    const end = await drained(s, late);
    expect(late.received.slice(fromLate, end)).toEqual([]);
    // A session connected before the window ends gets both nodes of the window in one message.
    expect(patchMessages(n0!, from0, await drained(s, n0!))).toEqual([ids([n1!, late])]);
    await connected(n1!);
    await online(s, all.length);
    await flushed(s, all);
  });
});

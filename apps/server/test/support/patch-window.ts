/**
 * Helpers for tests that end the mapper's patch windows themselves (`Mapper.flushPatches`, with a
 * window longer than the test): wait for presence to be applied, for a session to have everything
 * sent to it, and read the patch messages an agent got.
 */
import type { SimAgent } from '../../../../test-support/sim-agent.js';
import type { TestServer } from './server.js';

/** Patch messages `a` got from index `from` up to `to`, as the ids each carried. */
export function patchMessages(a: SimAgent, from: number, to = a.received.length): number[][] {
  return a.received.slice(from, to).filter((r) => r.msg.type === 'delta' && 'patch' in r.msg).map((r) => (r.msg.patch as { id: number }[]).map((p) => p.id).sort((x, y) => x - y));
}

export const ids = (xs: SimAgent[]) => xs.map((x) => x.self!.id).sort((p, q) => p - q);

/** Everything sent to `a` before now has arrived: a resync is answered after it. Returns the resync netmap's index. */
export async function drained(s: TestServer, a: SimAgent): Promise<number> {
  await s.mapper.settled();
  const from = a.received.length;
  a.send(JSON.stringify({ type: 'resync' }));
  await a.waitFor(() => a.received.slice(from).some((r) => r.msg.type === 'netmap'), 10_000, 'resync netmap');
  return from + a.received.slice(from).findIndex((r) => r.msg.type === 'netmap');
}

/** Waits until the mapper has applied presence for `n` online nodes. */
export async function online(s: TestServer, n: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await s.mapper.settled();
    if (s.mapper.nodeStates().online === n) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} nodes online (have ${s.mapper.nodeStates().online})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Connects `a` and waits for its netmap. */
export async function connected(a: SimAgent): Promise<void> {
  const from = a.received.length;
  await a.connect();
  await a.waitFor(() => a.received.slice(from).some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
}

/** Ends the window and waits until every agent has what it was sent. */
export async function flushed(s: TestServer, all: SimAgent[]): Promise<void> {
  s.mapper.flushPatches();
  await Promise.all(all.map((a) => drained(s, a)));
}

/**
 * A fan-out to more sessions than the mapper sends in one event-loop turn (DELTA_SEND_SLICE) goes
 * on in later turns, so a write's queries and its REST response are not held behind thousands of
 * socket writes. Guards that the sliced fan-out still reaches every session, and in the order the
 * changes were made: an upsert queued behind a long fan-out must not be overtaken by the removal
 * made after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import type { SimAgent } from '../../../../test-support/sim-agent.js';
import { SYSTEM } from '../../src/state/context.js';
import { joinedAgent } from '../support/replicas.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

describe.each(BACKENDS)('sliced delta fan-out on %s', (backend) => {
  let s: TestServer;
  let agents: SimAgent[] = [];
  beforeAll(async () => {
    // Two deltas per turn: six sessions take three turns for every broadcast.
    s = await startServer(backend, { deltaSendSlice: 2 });
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key as string;
    for (let i = 0; i < 6; i++) agents.push(await joinedAgent(s.url, `slice-${i}`, key));
    await Promise.all(agents.map((a) => a.waitFor(() => a.peers.size === 5, 10_000, `${a.hostname} sees the other five`)));
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    agents = [];
    await s?.close();
  });

  it('reaches every session, in order, when changes follow each other faster than a fan-out', async () => {
    // Made back to back, without waiting for any fan-out: add a node, remove it, add another,
    // remove an agent's node. Each broadcast spans three turns; the next is queued behind it.
    const gone = await s.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'brief', nodeKey: generateNodeKey().publicKey });
    await s.state.nodes.delete(SYSTEM, gone.id);
    const stays = await s.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'stays', nodeKey: generateNodeKey().publicKey });
    const victim = agents[5]!;
    const victimId = victim.self!.id;
    await s.state.nodes.delete(SYSTEM, victimId);
    const survivors = agents.slice(0, 5);
    const want = (a: SimAgent) => [...survivors.map((x) => x.self!.id).filter((id) => id !== a.self!.id), stays.id].sort((x, y) => x - y);
    for (const a of survivors) {
      await a.waitFor(() => !a.peers.has(victimId) && a.peers.has(stays.id), 10_000, `${a.hostname} has the last two changes`);
      expect([...a.peers.keys()].sort((x, y) => x - y), a.hostname).toEqual(want(a));
      // In order: the upsert of `stays` reaches each agent before the removal that followed it,
      // and the brief node, gone before its upsert was applied, is not listed.
      expect(a.peers.has(gone.id), `${a.hostname} does not list the removed node`).toBe(false);
      const deltas = a.received.filter((m) => m.msg.type === 'delta').map((m) => m.msg as { upsert?: { id: number }[]; remove?: number[] });
      const added = deltas.findIndex((d) => d.upsert?.some((p) => p.id === stays.id));
      const removed = deltas.findIndex((d) => d.remove?.includes(victimId));
      expect(added, `${a.hostname} got the upsert of stays`).toBeGreaterThanOrEqual(0);
      expect(removed, `${a.hostname} got the removal after the upsert made before it`).toBeGreaterThan(added);
      const seqs = a.received.filter((m) => m.msg.type === 'netmap' || m.msg.type === 'delta').map((m) => (m.msg as { seq: number }).seq);
      expect(seqs, `${a.hostname} seq without gaps`).toEqual(seqs.map((_, i) => i + 1));
    }
  });
});

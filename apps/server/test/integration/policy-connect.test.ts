/**
 * Agents connecting under an access policy (the reconnect storm of a fleet where each node sees
 * its team only): online patches are batched per window and go only to the sessions whose view
 * holds the node, one message per session per window however many nodes came online; a session
 * whose netmap already holds the window's patches is sent none of them; and a connect costs the
 * database nothing beyond the batched presence write. Real server (PGlite and Postgres), real
 * WebSocket agents. The patch window is made longer than the test so that the test, not a
 * timer, says when a window ends (`Mapper.flushPatches`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { connected, drained as drainedOn, flushed as flushedOn, ids, online as onlineOn, patchMessages } from '../support/patch-window.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

/** Two teams: each user's nodes see each other and nothing of the other team. */
const TEAMS = JSON.stringify({
  acls: [
    { action: 'accept', src: ['ta@'], dst: ['ta@:*'] },
    { action: 'accept', src: ['tb@'], dst: ['tb@:*'] },
  ],
});

/** `weft_db_query_duration_seconds_count` by "model operation". */
function queryCounts(exposition: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of exposition.matchAll(/^weft_db_query_duration_seconds_count\{model="([^"]*)",operation="([^"]*)"\} (\d+)$/gm)) out.set(`${m[1]} ${m[2]}`, Number(m[3]));
  return out;
}

describe.each(BACKENDS)('connecting under an access policy on %s', (backend) => {
  let s: TestServer;
  const drained = (a: SimAgent) => drainedOn(s, a);
  const online = (n: number) => onlineOn(s, n);
  const flushed = () => flushedOn(s, all);
  const keys: Record<string, string> = {};
  const team: Record<'a' | 'b', SimAgent[]> = { a: [], b: [] };
  const all: SimAgent[] = [];

  async function join(t: 'a' | 'b'): Promise<SimAgent> {
    const a = new SimAgent(s.url, `t${t}-${team[t].length}`);
    await a.register(keys[t]);
    await connected(a);
    team[t].push(a);
    all.push(a);
    return a;
  }

  beforeAll(async () => {
    // One window lasts the whole test unless the test ends it.
    s = await startServer(backend, { loadPolicy: async () => TEAMS, patchIntervalMs: 3_600_000, metrics: {} });
    for (const t of ['a', 'b'] as const) {
      await s.api('POST', '/api/v1/users', { name: `t${t}` });
      keys[t] = (await s.api('POST', '/api/v1/authkeys', { user: `t${t}`, reusable: true })).body.key;
    }
    for (let i = 0; i < 4; i++) await join('a');
    for (let i = 0; i < 3; i++) await join('b');
    await online(all.length);
    await flushed();
  }, 300_000);
  afterAll(async () => {
    for (const a of all) a.close();
    await s?.close();
  });

  it('online patches go only to the sessions that see the node, in one message per session per window however many came online', async () => {
    const [a0, ...aRest] = team.a;
    const [b0, ...bRest] = team.b;
    const from = { a: a0!.received.length, b: b0!.received.length };
    for (const x of [...aRest, ...bRest]) x.close();
    await online(2);
    for (const x of [...aRest, ...bRest]) await connected(x);
    await online(all.length);
    // Offline then online again for five nodes: one window.
    s.mapper.flushPatches();
    const endA = await drained(a0!);
    const endB = await drained(b0!);
    expect(patchMessages(a0!, from.a, endA)).toEqual([ids(aRest)]);
    expect(patchMessages(b0!, from.b, endB)).toEqual([ids(bRest)]);
    // Every reconnected session: at most the one message, and only of its own team.
    for (const [t, mates] of [['a', team.a], ['b', team.b]] as const) {
      for (const x of mates.slice(1)) {
        const got = patchMessages(x, 0).slice(-1);
        expect(got.length).toBeLessThanOrEqual(1);
        for (const id of got.flat()) expect(ids(team[t])).toContain(id);
        expect(x.peers.size).toBe(mates.length - 1);
        for (const p of x.peers.values()) expect(p.online).toBe(true);
      }
    }
  });

  it('a session whose netmap was sent after the window\'s patches is sent none of them', async () => {
    const [a0, a1] = team.a;
    const b0 = team.b[0]!;
    const from0 = a0!.received.length;
    const fromB = b0.received.length;
    a1!.close();
    await online(all.length - 1);
    // a1's offline patch is pending; the newcomer's netmap already says so.
    const late = await join('a');
    await online(all.length - 1);
    expect(late.peers.get(a1!.self!.id)?.online).toBe(false);
    const fromLate = late.received.length;
    s.mapper.flushPatches();
    const end = await drained(late);
    expect(late.received.slice(fromLate, end)).toEqual([]);
    // A session connected before the window ends gets both nodes of the window in one message.
    const end0 = await drained(a0!);
    expect(patchMessages(a0!, from0, end0)).toEqual([ids([a1!, late])]);
    // Team b sees neither.
    expect(patchMessages(b0, fromB, await drained(b0))).toEqual([]);
    await connected(a1!);
    await online(all.length);
    await flushed();
  });

  it('a connect reads nothing from the database: the only queries are the batched presence writes', async () => {
    await online(all.length);
    await flushed();
    const before = queryCounts(await s.metrics!.exposition());
    const again = all.slice(1);
    for (const x of again) x.close();
    await online(1);
    await Promise.all(again.map((x) => connected(x)));
    await online(all.length);
    const after = queryCounts(await s.metrics!.exposition());
    const grew = [...after].filter(([k, v]) => v > (before.get(k) ?? 0)).map(([k, v]) => `${k} +${v - (before.get(k) ?? 0)}`);
    // The door finds each node in the mapper's table: no Node or User read per connect. What
    // remains is presence: the node_sessions rows, the raw row locks and outbox record of the
    // presence transaction (and a replica heartbeat, if one fell in).
    // A periodic sweep (key expiry, ephemeral nodes) may fall in: a few node reads in all, never one per connect.
    expect(grew.some((k) => k.startsWith('NodeSession createMany '))).toBe(true);
    expect(grew.filter((k) => k.startsWith('Node findUnique ') || k.startsWith('Node findFirst '))).toEqual([]);
    const nodeReads = grew.filter((k) => /^(Node|User) /.test(k)).reduce((n, k) => n + Number(k.split('+')[1]), 0);
    expect(nodeReads).toBeLessThan(again.length);
    expect(grew.filter((k) => !/^(NodeSession|Replica|raw|Node|User) /.test(k))).toEqual([]);
  });
});

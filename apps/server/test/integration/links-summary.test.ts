/**
 * `GET /api/v1/links/summary` (the dashboard's counts) against real servers with real WebSocket
 * agent sessions: zero before any report; the replica holding the sessions counts live reports at
 * once, another replica on the same Postgres counts the stored rows; the counts agree with the
 * per-state fleet query; a node that goes offline is no longer counted; read scope is enough,
 * no key is refused.
 */
import { describe, expect, it } from 'vitest';
import type { LinkStat, LinksSummary } from '@weft/protocol';
import { until, useTwoReplicas, type Replica } from '../support/replicas.js';

const link = (peer: number, over: Partial<LinkStat> = {}): LinkStat => ({
  peer, path: 'direct', endpoint: '192.0.2.10:51820', handshakeAgeS: 12, rxBytes: 1000, txBytes: 2000, stale: false, ...over,
});

describe('link summary across two replicas on one Postgres', () => {
  const t = useTwoReplicas({ patchIntervalMs: 20, linkWriteIntervalMs: 300, linkFlushMs: 100 });
  const get = async (r: Replica, path: string, bearer: string | null = t.key) => {
    const res = await fetch(r.url + path, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    return { status: res.status, body: (await res.json()) as any };
  };
  const summary = async (r: Replica): Promise<LinksSummary> => (await get(r, '/api/v1/links/summary')).body;

  it('counts direct, relayed, pathless and stale links of online nodes, live and stored, as the fleet query lists them', async () => {
    const none = { direct: 0, relay: 0, none: 0, stale: 0, nodes: 0 };
    expect(await get(t.r1, '/api/v1/links/summary')).toEqual({ status: 200, body: none });
    expect((await get(t.r1, '/api/v1/links/summary', null)).status).toBe(401);

    const authKey = await t.authKey();
    const a = await t.agent(t.r1, 'alpha', authKey);
    const b = await t.agent(t.r1, 'bravo', authKey);
    const c = await t.agent(t.r1, 'charlie', authKey);
    expect(await summary(t.r1)).toEqual(none); // connected, nothing reported yet
    const [ida, idb, idc] = [a.self!.id, b.self!.id, c.self!.id];
    a.send(JSON.stringify({ type: 'links', full: true, links: [link(idb), link(idc, { path: 'none', stale: true, handshakeAgeS: 400 })] }));
    b.send(JSON.stringify({ type: 'links', full: true, links: [link(ida, { path: 'relay', endpoint: null })] }));

    const want = { direct: 1, relay: 1, none: 1, stale: 1, nodes: 2 };
    await until(async () => (await summary(t.r1)).nodes === 2, 'both reports live on r1');
    expect(await summary(t.r1)).toEqual(want);
    for (const state of ['direct', 'relay', 'none', 'stale'] as const) {
      expect((await get(t.r1, `/api/v1/links?state=${state}`)).body.items.length, state).toBe(want[state]);
    }
    // The other replica has no session: it sums the stored rows.
    await until(async () => (await summary(t.r2)).nodes === 2, 'both reports stored, seen on r2');
    expect(await summary(t.r2)).toEqual(want);
    // With the rows stored, r1 still counts each node once (its live counts replace the rows).
    expect(await summary(t.r1)).toEqual(want);

    // alpha goes offline: its links are no longer counted anywhere.
    a.close();
    const left = { direct: 0, relay: 1, none: 0, stale: 0, nodes: 1 };
    await until(async () => (await summary(t.r1)).nodes === 1, 'alpha left, r1');
    expect(await summary(t.r1)).toEqual(left);
    await until(async () => (await summary(t.r2)).nodes === 1, 'alpha left, r2');
    expect(await summary(t.r2)).toEqual(left);
  });
});

/**
 * Link health against real servers with real WebSocket agent sessions: an agent's `links` report
 * is served per node and in the fleet query by the replica holding the session (live) and, once
 * its row is written, by another replica on the same Postgres (stored); metrics count it; a
 * malformed report closes that socket only, names what is wrong and stores nothing.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, type LinksMessage, type LinkStat } from '@weft/protocol';
import type { SimAgent } from '../../../../test-support/sim-agent.js';
import { until, useTwoReplicas, type Replica } from '../support/replicas.js';

const TOKEN = 'links-metrics-token-0123456789';

const link = (peer: number, over: Partial<LinkStat> = {}): LinkStat => ({
  peer, path: 'direct', endpoint: '192.0.2.10:51820', handshakeAgeS: 12, rxBytes: 1000, txBytes: 2000, stale: false, ...over,
});

describe('link reports across two replicas on one Postgres', () => {
  const t = useTwoReplicas({ patchIntervalMs: 20, linkWriteIntervalMs: 300, linkFlushMs: 100, metrics: { token: TOKEN } });
  const get = async (r: Replica, path: string) => {
    const res = await fetch(r.url + path, { headers: { authorization: `Bearer ${t.key}` } });
    return { status: res.status, body: (await res.json()) as any };
  };
  const metric = async (r: Replica, line: RegExp) => {
    const text = await (await fetch(`${r.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const m = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const send = (a: SimAgent, msg: LinksMessage | Record<string, unknown>) => a.send(JSON.stringify(msg));

  it('a stale link is in the fleet query on both replicas, per node, and counted in metrics', async () => {
    const authKey = await t.authKey();
    const a = await t.agent(t.r1, 'alpha', authKey);
    const b = await t.agent(t.r1, 'bravo', authKey);
    const c = await t.agent(t.r1, 'charlie', authKey);
    const [ida, idb, idc] = [a.self!.id, b.self!.id, c.self!.id];
    send(a, { type: 'links', full: true, links: [link(idb), link(idc, { path: 'none', stale: true, handshakeAgeS: 400 })] });
    send(b, { type: 'links', full: true, links: [link(ida)] });

    // Live on the replica holding the sessions, at once.
    await until(async () => (await get(t.r1, '/api/v1/links?state=stale')).body.items?.length === 1, 'stale link on r1');
    const stale = (await get(t.r1, '/api/v1/links?state=stale')).body.items;
    expect(stale).toEqual([expect.objectContaining({ nodeId: ida, nodeName: 'alpha', peerId: idc, peerName: 'charlie', path: 'none', stale: true })]);
    expect(stale[0].handshakeAgeSeconds).toBeGreaterThanOrEqual(400);
    const one = (await get(t.r1, `/api/v1/nodes/${ida}/links`)).body;
    expect(one).toMatchObject({ nodeId: ida, source: 'live' });
    expect(one.links.map((l: any) => [l.peerId, l.path, l.stale])).toEqual([[idb, 'direct', false], [idc, 'none', true]]);
    expect(await metric(t.r1, /weft_links_stale/)).toBe(1);
    expect(await metric(t.r1, /weft_links\{path="direct"\}/)).toBe(2);
    expect(await metric(t.r1, /weft_links\{path="none"\}/)).toBe(1);

    // The other replica reads the stored row (written within the short test interval).
    await until(async () => (await get(t.r2, '/api/v1/links?state=stale')).body.items?.length === 1, 'stale link stored, seen on r2');
    expect((await get(t.r2, `/api/v1/nodes/${ida}/links`)).body).toMatchObject({ source: 'stored', links: [{ peerId: idb }, { peerId: idc, stale: true }] });
    expect(await metric(t.r2, /weft_links_stale/)).toBe(0); // no sessions there: metrics are per replica

    // A delta: charlie's link recovers; the fleet query no longer lists it (live at once, stored soon).
    send(a, { type: 'links', full: false, links: [link(idc, { handshakeAgeS: 1 })] });
    await until(async () => (await get(t.r1, '/api/v1/links?state=stale')).body.items.length === 0, 'recovered on r1');
    await until(async () => (await get(t.r2, '/api/v1/links?state=stale')).body.items.length === 0, 'recovered on r2');
    // `removed` drops a link.
    send(a, { type: 'links', full: false, links: [], removed: [idb] });
    await until(async () => (await get(t.r1, `/api/v1/nodes/${ida}/links`)).body.links.length === 1, 'removed on r1');
    // Every link of every online node, without a filter.
    expect((await get(t.r1, '/api/v1/links')).body.items.map((l: any) => [l.nodeId, l.peerId])).toEqual([[ida, idc], [idb, ida]]);
  });

  it('a malformed report closes that socket with a reason naming the entry, stores nothing, and others keep reporting', async () => {
    const authKey = await t.authKey();
    const bad = await t.agent(t.r1, 'delta', authKey);
    const good = await t.agent(t.r1, 'echo', authKey);
    send(bad, { type: 'links', full: true, links: [link(good.self!.id, { endpoint: '192.0.2.1:0' })] });
    await bad.waitFor(() => bad.closed !== null, 10_000, 'bad reporter closed');
    expect(bad.closed!.code).toBe(CloseCode.BadMessage);
    expect(bad.closed!.reason).toMatch(/^links\[0\]\.endpoint: /);
    const tooMany = await t.agent(t.r1, 'foxtrot', authKey);
    for (let i = 0; i < 5; i++) send(tooMany, { type: 'links', full: i === 0, links: Array.from({ length: 64 }, (_, j) => link(1000 + i * 64 + j)) });
    await tooMany.waitFor(() => tooMany.closed !== null, 10_000, 'oversize reporter closed');
    expect(tooMany.closed).toEqual({ code: CloseCode.BadMessage, reason: 'links: more than 256 links for one node' });
    send(good, { type: 'links', full: true, links: [link(bad.self!.id, { stale: true, path: 'none' })] });
    await until(async () => (await get(t.r1, `/api/v1/nodes/${good.self!.id}/links`)).body.links.length === 1, 'good report applied');
    expect((await get(t.r1, `/api/v1/nodes/${bad.self!.id}/links`)).body).toEqual({ nodeId: bad.self!.id, source: 'none', links: [] });
    expect((await get(t.r2, '/api/v1/nodes/999999/links')).status).toBe(404);
    expect((await get(t.r1, '/api/v1/links?state=dead')).status).toBe(400);
  });
});

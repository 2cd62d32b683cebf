/**
 * `GET /api/v1/links/summary` (the dashboard's counts) against real servers with real WebSocket
 * agent sessions: zero before any report; the replica holding the sessions counts live reports at
 * once, another replica on the same Postgres counts the stored rows; the counts agree with the
 * per-state fleet query; a node that goes offline is no longer counted; read scope is enough,
 * no key is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@weft/db';
import type { LinkStat, LinksSummary } from '@weft/protocol';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { buildApp, type App } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';

interface Replica { app: App; db: Database; url: string }

async function replica(databaseUrl: string): Promise<Replica> {
  const db = await openDatabase({ databaseUrl });
  const app = await buildApp({ db, serverUrl: 'http://127.0.0.1', patchIntervalMs: 20, linkWriteIntervalMs: 300, linkFlushMs: 100 });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.app.server.address();
  return { app, db, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

const link = (peer: number, over: Partial<LinkStat> = {}): LinkStat => ({
  peer, path: 'direct', endpoint: '192.0.2.10:51820', handshakeAgeS: 12, rxBytes: 1000, txBytes: 2000, stale: false, ...over,
});

describe('link summary across two replicas on one Postgres', () => {
  let r1: Replica;
  let r2: Replica;
  let key: string;
  const agents: SimAgent[] = [];
  const get = async (r: Replica, path: string, bearer: string | null = key) => {
    const res = await fetch(r.url + path, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    return { status: res.status, body: (await res.json()) as any };
  };
  const summary = async (r: Replica): Promise<LinksSummary> => (await get(r, '/api/v1/links/summary')).body;
  const agent = async (name: string, authKey: string) => {
    const a = new SimAgent(r1.url, name);
    agents.push(a);
    await a.register(authKey);
    await a.connect();
    await a.waitFor(() => a.received.some((m) => m.msg.type === 'netmap'), 10_000, `${name} netmap`);
    return a;
  };
  const until = async (pred: () => Promise<boolean>, what: string, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!(await pred())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    const url = await createTestDatabase();
    r1 = await replica(url);
    r2 = await replica(url);
    key = (await r1.app.state.apiKeys.create(SYSTEM, { scopes: ['read'] })).key;
    await r1.app.state.users.create(SYSTEM, { name: 'fleet' });
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    for (const r of [r1, r2]) {
      await r?.app.app.close();
      await r?.db.close();
    }
  });

  it('counts direct, relayed, pathless and stale links of online nodes, live and stored, as the fleet query lists them', async () => {
    const none = { direct: 0, relay: 0, none: 0, stale: 0, nodes: 0 };
    expect(await get(r1, '/api/v1/links/summary')).toEqual({ status: 200, body: none });
    expect((await get(r1, '/api/v1/links/summary', null)).status).toBe(401);

    const authKey = (await r1.app.state.authKeys.create(SYSTEM, { user: 'fleet', reusable: true })).key;
    const a = await agent('alpha', authKey);
    const b = await agent('bravo', authKey);
    const c = await agent('charlie', authKey);
    expect(await summary(r1)).toEqual(none); // connected, nothing reported yet
    const [ida, idb, idc] = [a.self!.id, b.self!.id, c.self!.id];
    a.send(JSON.stringify({ type: 'links', full: true, links: [link(idb), link(idc, { path: 'none', stale: true, handshakeAgeS: 400 })] }));
    b.send(JSON.stringify({ type: 'links', full: true, links: [link(ida, { path: 'relay', endpoint: null })] }));

    const want = { direct: 1, relay: 1, none: 1, stale: 1, nodes: 2 };
    await until(async () => (await summary(r1)).nodes === 2, 'both reports live on r1');
    expect(await summary(r1)).toEqual(want);
    for (const state of ['direct', 'relay', 'none', 'stale'] as const) {
      expect((await get(r1, `/api/v1/links?state=${state}`)).body.items.length, state).toBe(want[state]);
    }
    // The other replica has no session: it sums the stored rows.
    await until(async () => (await summary(r2)).nodes === 2, 'both reports stored, seen on r2');
    expect(await summary(r2)).toEqual(want);
    // With the rows stored, r1 still counts each node once (its live counts replace the rows).
    expect(await summary(r1)).toEqual(want);

    // alpha goes offline: its links are no longer counted anywhere.
    a.close();
    const left = { direct: 0, relay: 1, none: 0, stale: 0, nodes: 1 };
    await until(async () => (await summary(r1)).nodes === 1, 'alpha left, r1');
    expect(await summary(r1)).toEqual(left);
    await until(async () => (await summary(r2)).nodes === 1, 'alpha left, r2');
    expect(await summary(r2)).toEqual(left);
  });
});

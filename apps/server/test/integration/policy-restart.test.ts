/**
 * A one-rule policy change right after a server restart: the restarted server builds its views
 * from the database (no incremental state carried over), the agents reconnect and get netmaps,
 * and the first change then goes out as deltas to the affected agents only, as it does on a
 * server that never restarted: no full netmaps, and nothing at all to the agents whose view and
 * filter stay the same. Real server (PGlite and Postgres), real WebSocket agents, the policy
 * stored with PUT /api/v1/policy. Delivery times are printed, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '@weft/db';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import type { App } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';
import { BACKENDS, listenOn } from '../support/server.js';

const RULES = [
  { action: 'accept', src: ['group:ops'], dst: ['tag:web:443'] },
  { action: 'accept', src: ['group:dev'], dst: ['tag:db:5432'] },
];
const BASE = { groups: { 'group:ops': ['olga@'], 'group:dev': ['dora@'] }, tagOwners: { 'tag:web': [], 'tag:db': [] }, acls: RULES };
// The one-rule change: ops may reach the database too. Affected: olga's devices and the db node.
const PLUS_ONE = { ...BASE, acls: [...RULES, { action: 'accept', src: ['group:ops'], dst: ['tag:db:5432'] }] };

describe.each(BACKENDS)('the first policy change after a restart on %s', (backend) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-restart-'));
  let databaseUrl: string | undefined;
  let db: Database;
  let app: App;
  let url = '';
  let adminKey = '';
  const agents: Record<string, SimAgent> = {};

  const start = async () => {
    db = await openDatabase(backend === 'pglite' ? { dataDir: dir } : { databaseUrl: databaseUrl! });
    ({ app, url } = await listenOn(db));
    adminKey = (await app.state.apiKeys.create(SYSTEM, { scopes: ['admin'] })).key;
  };
  const stop = async () => {
    await app.app.close();
    await db.close();
  };
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${adminKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any, headers: res.headers };
  };
  const putPolicy = async (policy: unknown) => {
    const etag = (await api('GET', '/api/v1/policy')).headers.get('etag')!;
    const r = await api('PUT', '/api/v1/policy', { text: JSON.stringify(policy) }, { 'if-match': etag });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };
  const connectAll = async () => {
    for (const a of Object.values(agents)) {
      await a.connect({ url });
      await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 20_000, `${a.hostname} netmap`);
    }
  };
  const ids = (...names: string[]) => names.map((n) => agents[n]!.self!.id).sort((x, y) => x - y);
  const peersOf = (name: string) => [...agents[name]!.peers.keys()].sort((x, y) => x - y);
  /** What an agent was sent since `mark`, presence and endpoint patches left out. */
  const substantive = (name: string, mark: number) => agents[name]!.received.slice(mark).filter((r) => !(r.msg.type === 'delta' && Object.keys(r.msg).every((k) => k === 'type' || k === 'seq' || k === 'patch')));

  beforeAll(async () => {
    if (backend === 'postgres') databaseUrl = await createTestDatabase();
    await start();
    const keys: Record<string, string> = {};
    for (const name of ['olga', 'dora']) {
      expect((await api('POST', '/api/v1/users', { name })).status).toBe(201);
      keys[name] = (await api('POST', '/api/v1/authkeys', { user: name, reusable: true })).body.key;
    }
    await putPolicy(BASE);
    keys.web = (await api('POST', '/api/v1/authkeys', { user: 'olga', reusable: true, tags: ['tag:web'] })).body.key;
    keys.db = (await api('POST', '/api/v1/authkeys', { user: 'dora', reusable: true, tags: ['tag:db'] })).body.key;
    for (const [name, key] of [['olga-1', 'olga'], ['olga-2', 'olga'], ['dora-1', 'dora'], ['web-1', 'web'], ['db-1', 'db']] as const) {
      const a = new SimAgent(url, name);
      await a.register(keys[key]);
      agents[name] = a;
    }
    await connectAll();
  }, 120_000);
  afterAll(async () => {
    for (const a of Object.values(agents)) a.close();
    await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('after the restart the agents get the same views back, and a one-rule change reaches only the affected ones, as deltas', async () => {
    await app.mapper.settled();
    const before = Object.fromEntries(Object.keys(agents).map((n) => [n, peersOf(n)]));
    expect(before['olga-1']).toEqual(ids('web-1'));
    expect(before['db-1']).toEqual(ids('dora-1'));

    // Restart: every agent's socket goes with the old process; the new one loads views from the database.
    for (const a of Object.values(agents)) a.close();
    await stop();
    await start();
    await connectAll();
    for (const n of Object.keys(agents)) expect(peersOf(n), n).toEqual(before[n]);

    await app.mapper.settled();
    const marks = Object.fromEntries(Object.keys(agents).map((n) => [n, agents[n]!.received.length]));
    const t0 = performance.now();
    await putPolicy(PLUS_ONE);
    await agents['olga-1']!.waitFor(() => agents['olga-1']!.peers.has(agents['db-1']!.self!.id), 5000, 'db-1 in olga-1 netmap');
    await agents['olga-2']!.waitFor(() => agents['olga-2']!.peers.has(agents['db-1']!.self!.id), 5000, 'db-1 in olga-2 netmap');
    await agents['db-1']!.waitFor(() => agents['db-1']!.peers.has(agents['olga-2']!.self!.id) && agents['db-1']!.peers.has(agents['olga-1']!.self!.id), 5000, "olga's devices in db-1 netmap");
    console.log(`[${backend}] first one-rule change after a restart: all affected agents had it after ${Math.round(performance.now() - t0)} ms`);
    expect(peersOf('olga-1')).toEqual(ids('web-1', 'db-1'));
    expect(peersOf('db-1')).toEqual(ids('olga-1', 'olga-2', 'dora-1'));

    // Anything sent by mistake is queued before a resync's answer: ask the unaffected for one and read what came first.
    await app.mapper.settled();
    for (const n of ['dora-1', 'web-1']) agents[n]!.send(JSON.stringify({ type: 'resync' }));
    for (const n of ['dora-1', 'web-1']) await agents[n]!.waitFor(() => substantive(n, marks[n]!).some((r) => r.msg.type === 'netmap'), 5000, `${n} resync netmap`);
    for (const n of ['dora-1', 'web-1']) expect(substantive(n, marks[n]!).map((r) => r.msg.type), n).toEqual(['netmap']);
    // The affected got deltas, never a full netmap: db-1 its two new peers and its new filter, olga's devices db-1.
    for (const n of ['olga-1', 'olga-2', 'db-1']) {
      const got = substantive(n, marks[n]!);
      expect(got.length, n).toBeGreaterThan(0);
      expect(got.every((r) => r.msg.type === 'delta'), n).toBe(true);
    }
    const dbDelta = substantive('db-1', marks['db-1']!).map((r) => r.msg as { upsert?: { id: number }[]; packetFilter?: { srcIPs: string[] }[] });
    expect(dbDelta.flatMap((m) => m.upsert ?? []).map((p) => p.id).sort((x, y) => x - y)).toEqual(ids('olga-1', 'olga-2'));
    const filter = dbDelta.map((m) => m.packetFilter).filter((f) => f !== undefined).at(-1)!;
    expect(filter.flatMap((r) => r.srcIPs)).toEqual(expect.arrayContaining([agents['olga-1']!.self!.ipv4, agents['dora-1']!.self!.ipv4]));
    expect(substantive('olga-1', marks['olga-1']!).every((r) => (r.msg as { packetFilter?: unknown }).packetFilter === undefined)).toBe(true);
  }, 120_000);
});

/**
 * `GET /api/v1/nodes` with search, status, sort and offset paging (the admin UI's devices page),
 * and without parameters the whole list as before (`weft-server nodes list` reads it).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const nodeKey = () => `nodekey:${randomBytes(32).toString('hex')}`;
type N = { id: number; name: string; user: string; online: boolean; expired: boolean; tags: string[]; lastSeen: string | null };

describe.each(BACKENDS)('GET /api/v1/nodes paging, search and sort on %s', (backend) => {
  let s: TestServer;
  const names: string[] = [];
  beforeAll(async () => {
    s = await startServer(backend);
    await s.api('POST', '/api/v1/users', { name: 'dora' });
    await s.api('POST', '/api/v1/users', { name: 'emil' });
    // Tags given at creation must be defined in the stored policy's tagOwners (node-tags.test.ts).
    const policy = JSON.stringify({ tagOwners: { 'tag:db': [] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] });
    expect((await s.api('PUT', '/api/v1/policy', { text: policy }, { 'if-match': '"0"' })).status).toBe(200);
    // 12 node-less peers: dora-00..05 (two tagged), emil-06..11.
    for (let i = 0; i < 12; i++) {
      const user = i < 6 ? 'dora' : 'emil';
      const r = await s.api('POST', '/api/v1/nodes', { user, hostname: `${user}-${String(i).padStart(2, '0')}`, nodeKey: nodeKey(), tags: i < 2 ? ['tag:db'] : [] });
      expect(r.status).toBe(201);
      names.push(r.body.name);
    }
    await s.api('POST', `/api/v1/nodes/${(await s.api('GET', '/api/v1/nodes?q=emil-11')).body.items[0].id}/expire`);
  });
  afterAll(async () => s?.close());

  it('without parameters lists every node in id order, with total and no next page (backward compatible)', async () => {
    const r = await s.api('GET', '/api/v1/nodes');
    expect(r.status).toBe(200);
    expect(r.body.items.map((n: N) => n.name)).toEqual(names);
    expect(r.body).toMatchObject({ total: 12, next: null });
  });

  it('pages with limit and offset: pages join up to the whole list, next is the following offset', async () => {
    const seen: string[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const r: { body: { items: N[]; total: number; next: number | null } } = await s.api('GET', `/api/v1/nodes?limit=5&offset=${offset}&sort=name&order=desc`);
      expect(r.body.total).toBe(12);
      seen.push(...r.body.items.map((n) => n.name));
      offset = r.body.next;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...names].sort().reverse());
  });

  it('searches name, owner and address case-insensitively, and tags exactly', async () => {
    const q = async (query: string) => (await s.api('GET', `/api/v1/nodes?${query}`)).body as { items: N[]; total: number };
    expect((await q('q=DORA-0')).total).toBe(6);
    expect((await q('q=emil&limit=2')).total).toBe(6);
    expect((await q('q=emil&limit=2')).items).toHaveLength(2);
    expect((await q('q=tag:db')).items.map((n) => n.name)).toEqual(names.slice(0, 2));
    const one = (await s.api('GET', '/api/v1/nodes')).body.items[3];
    expect((await q(`q=${encodeURIComponent(one.ipv4)}`)).items.map((n) => n.id)).toEqual([one.id]);
    expect((await q('q=nobody-has-this')).items).toEqual([]);
  });

  it('filters by status and sorts by owner, last seen (never seen last) and online', async () => {
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'emil' })).body.key;
    const a = new SimAgent(s.url, 'emil-live');
    await a.register(key);
    await a.connect();
    try {
      await a.waitFor(() => a.received.length > 0);
      await s.mapper.settled();
      await expect.poll(async () => (await s.api('GET', '/api/v1/nodes?status=online')).body.items.map((n: N) => n.name)).toEqual(['emil-live']);
      const expired = (await s.api('GET', '/api/v1/nodes?status=expired')).body;
      expect(expired.items.map((n: N) => n.name)).toEqual(['emil-11']);
      expect((await s.api('GET', '/api/v1/nodes?status=offline')).body.total).toBe(11);
      const bySeen = (await s.api('GET', '/api/v1/nodes?sort=lastSeen&order=desc&limit=2')).body.items as N[];
      expect(bySeen[0]!.name).toBe('emil-live');
      expect(bySeen[1]!.lastSeen).toBeNull();
      const byOnline = (await s.api('GET', '/api/v1/nodes?sort=online&order=desc&limit=1')).body.items as N[];
      expect(byOnline[0]!.name).toBe('emil-live');
      const byUser = ((await s.api('GET', '/api/v1/nodes?sort=user&order=desc')).body.items as N[]).map((n) => n.user);
      expect(byUser).toEqual([...byUser].sort().reverse());
    } finally {
      a.close();
    }
  });

  it('refuses bad values with 400 problem+json naming the parameter, and unknown parameters', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=abc', 'limit'], ['offset=-1', 'offset'], ['sort=password', 'sort'],
      ['order=sideways', 'order'], ['status=asleep', 'status'], ['q=%00', 'q'], [`q=${'x'.repeat(201)}`, 'q'], ['colour=red', ''],
    ] as const) {
      const r = await s.api('GET', `/api/v1/nodes?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.type).toContain('application/problem+json');
      expect(r.body.code, query).toBe('invalid_request');
      expect(JSON.stringify(r.body), query).toContain(field);
    }
  });

  it('is documented in the OpenAPI document', async () => {
    const doc = (await s.api('GET', '/api/v1/openapi.json')).body;
    const params = (doc.paths['/api/v1/nodes'].get.parameters as { name: string }[]).map((p) => p.name).sort();
    expect(params).toEqual(['limit', 'offset', 'order', 'q', 'sort', 'status']);
    expect(Object.keys(doc.paths['/api/v1/nodes'].get.responses['200'].content['application/json'].schema.properties).sort()).toEqual(['items', 'next', 'total']);
  });
});

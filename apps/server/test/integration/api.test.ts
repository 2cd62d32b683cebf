import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

describe.each(BACKENDS)('REST API on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(backend);
  });
  afterAll(async () => s?.close());

  it('creates, lists, gets and deletes users', async () => {
    const created = await s.api('POST', '/api/v1/users', { name: 'alice', email: 'alice@example.com' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'alice', email: 'alice@example.com' });
    expect((await s.api('POST', '/api/v1/users', { name: 'alice' })).body.code).toBe('user_exists');
    expect((await s.api('GET', '/api/v1/users')).body.items.map((u: { name: string }) => u.name)).toContain('alice');
    expect((await s.api('GET', '/api/v1/users/alice')).body.id).toBe(created.body.id);
    expect((await s.api('GET', `/api/v1/users/${created.body.id}`)).body.name).toBe('alice');
    await s.api('POST', '/api/v1/users', { name: 'temp' });
    expect((await s.api('DELETE', '/api/v1/users/temp')).status).toBe(200);
    const gone = await s.api('GET', '/api/v1/users/temp');
    expect(gone.status).toBe(404);
    expect(gone.type).toContain('application/problem+json');
    expect(gone.body.code).toBe('user_not_found');
  });

  it('auth keys are shown once, stored hashed, listed by prefix, revocable', async () => {
    await s.api('POST', '/api/v1/users', { name: 'bob' });
    // A key's tags must be defined in the stored policy's tagOwners (node-tags.test.ts); this one lets everyone reach everyone, as no policy does.
    const policy = JSON.stringify({ tagOwners: { 'tag:ci': [] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] });
    expect((await s.api('PUT', '/api/v1/policy', { text: policy }, { 'if-match': '"0"' })).status).toBe(200);
    const k = await s.api('POST', '/api/v1/authkeys', { user: 'bob', reusable: true, tags: ['tag:ci'] });
    expect(k.status).toBe(201);
    expect(k.body.key).toMatch(/^weft-auth-[0-9a-f]{12}-/);
    expect(k.body.key.startsWith(k.body.prefix)).toBe(true);
    const list = await s.api('GET', '/api/v1/authkeys');
    const listed = list.body.items.find((x: { id: number }) => x.id === k.body.id);
    expect(listed).toMatchObject({ prefix: k.body.prefix, reusable: true, tags: ['tag:ci'], revoked: false });
    expect(JSON.stringify(list.body)).not.toContain(k.body.key);
    const row = await s.state.ctx.prisma.authKey.findUniqueOrThrow({ where: { id: k.body.id } });
    expect(row.hash).not.toContain(k.body.key.slice(k.body.prefix.length + 1));
    expect((await s.api('DELETE', `/api/v1/authkeys/${k.body.id}`)).body.revoked).toBe(true);
    const agent = new SimAgent(s.url);
    await expect(agent.register(k.body.key)).rejects.toMatchObject({ body: { code: 'auth_key_revoked' } });
  });

  it('API keys carry scopes: read cannot write, no key is refused', async () => {
    const read = { authorization: `Bearer ${s.readKey}` };
    expect((await s.api('GET', '/api/v1/nodes', undefined, read)).status).toBe(200);
    const denied = await s.api('POST', '/api/v1/users', { name: 'mallory' }, read);
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('forbidden');
    const anon = await fetch(`${s.url}/api/v1/users`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { code: string }).code).toBe('unauthenticated');
    const bogus = await s.api('GET', '/api/v1/users', undefined, { authorization: 'Bearer weft-api-000000000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(bogus.status).toBe(401);
    const k = await s.api('POST', '/api/v1/apikeys', { scopes: ['read'], description: 'dashboards' });
    expect(k.status).toBe(201);
    expect((await s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${k.body.key}` })).status).toBe(200);
    await s.api('DELETE', `/api/v1/apikeys/${k.body.id}`);
    expect((await s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${k.body.key}` })).status).toBe(401);
  });

  it('lists nodes with id, name, user, addresses, node key, online and last seen', async () => {
    await s.api('POST', '/api/v1/users', { name: 'carol' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'carol', reusable: true })).body.key;
    const a = new SimAgent(s.url, 'Carol’s MacBook Pro');
    await a.register(key);
    await a.connect();
    await a.waitFor(() => a.received.length > 0);
    const b = new SimAgent(s.url, 'Carol’s MacBook Pro');
    await b.register(key);
    await s.mapper.settled();
    const nodes = (await s.api('GET', '/api/v1/nodes')).body.items.filter((n: { user: string }) => n.user === 'carol');
    expect(nodes).toHaveLength(2);
    const [na, nb] = nodes;
    expect(na).toMatchObject({ name: 'carol-s-macbook-pro', user: 'carol', nodeKey: a.node.publicKey });
    expect(nb.name).toBe('carol-s-macbook-pro-1');
    expect(na.ipv4).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
    expect(na.ipv6).toMatch(/^fd[0-9a-f]{2}:/);
    expect(na.ipv4).not.toBe(nb.ipv4);
    // The connect's presence write is batched: wait for it rather than racing it.
    await s.state.presence.settled();
    const fresh = (await s.api('GET', `/api/v1/nodes/${na.id}`)).body;
    expect(fresh.online).toBe(true);
    expect(fresh.lastSeen).not.toBeNull();
    expect((await s.api('GET', `/api/v1/nodes/${nb.id}`)).body.online).toBe(false);
    const renamed = await s.api('POST', `/api/v1/nodes/${nb.id}/rename`, { name: 'carol-laptop' });
    expect(renamed.body.name).toBe('carol-laptop');
    expect((await s.api('POST', `/api/v1/nodes/${na.id}/rename`, { name: 'carol-laptop' })).body.code).toBe('name_taken');
    a.close();
  });

  it('publishes an OpenAPI document covering every route', async () => {
    const res = await fetch(`${s.url}/api/v1/openapi.json`);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/api/v1/users', '/api/v1/users/{user}', '/api/v1/nodes', '/api/v1/nodes/{id}', '/api/v1/nodes/{id}/expire', '/api/v1/nodes/{id}/rename', '/api/v1/authkeys', '/api/v1/authkeys/{id}', '/api/v1/apikeys', '/api/v1/apikeys/{id}', '/api/v1/status', '/agent/v1/register']) {
      expect(doc.paths[p], p).toBeDefined();
    }
    expect(Object.keys(doc.paths['/api/v1/users']!)).toEqual(expect.arrayContaining(['get', 'post']));
  });

  it('health and readiness', async () => {
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${s.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('readiness tells an anonymous caller nothing about the fleet; the connected count needs an API key', async () => {
    expect(await (await fetch(`${s.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const anonymous = await fetch(`${s.url}/api/v1/status`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const withRead = await s.api('GET', '/api/v1/status', undefined, { authorization: `Bearer ${s.readKey}` });
    expect(withRead).toMatchObject({ status: 200, body: { connectedNodes: s.mapper.connectedCount } });
    expect(Object.keys(withRead.body)).toEqual(['connectedNodes']);
  });
});

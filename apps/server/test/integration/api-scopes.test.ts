/**
 * API key scopes on every /api/v1 route, walked from the app's own route list (App.routes, an
 * onRoute hook), so a route added later is covered without touching this file: a `read` key is
 * refused (403 forbidden) on every route that changes something and changes nothing; it is
 * answered (not 403) on every GET; a SCIM token is refused on all of them. Exceptions (read-only
 * POSTs, admin-only GETs, routes taking other credentials, public ones) are listed below with the reason.
 */
import { generateNodeKey } from '@weft/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const READ_SAFE_METHODS = new Set(['GET', 'HEAD']);

/** Non-GET routes a read key may call: they only read (the policy routes that judge a text or a flow). */
const READ_MAY_CALL: Record<string, string> = {
  'POST /api/v1/policy/check': 'judges a policy text against the stored tagOwners and writes nothing',
  'POST /api/v1/policy/explain': 'answers whether src may reach dst under the active policy; writes nothing',
};
/** GET routes a read key is refused (403): they need admin. */
const GET_NEEDS_ADMIN: Record<string, string> = {
  'GET /api/v1/backup': 'a full dump of the database (key hashes, policy history, audit): admin only',
  'GET /api/v1/doctor': 'replica internals (database, bus, listener, TLS): admin only, like weft-server doctor',
  'GET /api/v1/apikeys': 'who holds API keys (prefixes, scopes, owners) is admin only, like making and revoking them',
};
/** Routes that take other credentials than an API key, so any API key is answered 401 there. */
const OTHER_CREDENTIALS: Record<string, string> = {
  'GET /api/v1/relay': "the relay WebSocket: a node's machine token (a JWT signed with its machine key)",
  'GET /api/v1/relay/mesh': "the relay mesh WebSocket between replicas: a token MACed with the mesh's shared secret",
  'GET /api/v1/relay/region': "a standalone relay region's link to the server: a mesh token MACed with the mesh's shared secret",
};
/** Routes that answer without any credentials, so a SCIM token is not refused there. */
const PUBLIC: Record<string, string> = {
  'GET /api/v1/openapi.json': 'the OpenAPI document is public: it describes the API, holds no data',
};

/** A plausible body per write route, so schema validation passes and the scope check is what answers. */
const BODIES: Record<string, unknown> = {
  'PATCH /api/v1/settings': { deviceApprovalRequired: true },
  'POST /api/v1/users': { name: 'mallory' },
  'PUT /api/v1/users/:user/password': { password: 'correct horse battery staple' },
  'POST /api/v1/nodes': { user: 'alice', hostname: 'mallory-phone', nodeKey: generateNodeKey().publicKey },
  'POST /api/v1/nodes/:id/expiry': { disabled: true },
  'POST /api/v1/nodes/:id/rename': { name: 'renamed' },
  'PUT /api/v1/nodes/:id/tags': { tags: ['tag:ci'] },
  'POST /api/v1/logins/:code/approve': { user: 'alice' },
  'POST /api/v1/authkeys': { user: 'alice', reusable: true },
  'POST /api/v1/apikeys': { scopes: ['admin'] },
  'PUT /api/v1/policy': { text: JSON.stringify({ acls: [] }) },
  'POST /api/v1/policy/rollback': { version: 1 },
  'POST /api/v1/policy/check': { text: JSON.stringify({ acls: [] }) },
  'POST /api/v1/policy/explain': { src: '100.64.0.1', dst: '100.64.0.2:22' },
};
const HEADERS: Record<string, Record<string, string>> = {
  'PUT /api/v1/policy': { 'if-match': '"1"' },
  'POST /api/v1/policy/rollback': { 'if-match': '"1"' },
};

describe.each(BACKENDS)('API key scopes on every route on %s', (backend) => {
  let s: TestServer;
  let scimKey: string;
  let ids: { node: number; authKey: number; apiKey: number };
  const routes = () =>
    [...new Map(s.routes.filter((r) => r.url.startsWith('/api/v1/') && r.method !== 'HEAD').map((r) => [`${r.method} ${r.url}`, r])).values()];

  /** Every row that a write route could touch (api_keys without last_used_at, which a read is allowed to bump). */
  async function snapshot(): Promise<Record<string, string[]>> {
    const p = s.state.ctx.prisma;
    const rows = (xs: object[]) => xs.map((x) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).sort();
    return {
      users: rows(await p.user.findMany()),
      nodes: rows(await p.node.findMany()),
      authKeys: rows(await p.authKey.findMany()),
      apiKeys: rows((await p.apiKey.findMany()).map(({ lastUsedAt: _, ...k }) => k)),
      policyVersions: rows(await p.policyVersion.findMany()),
      settings: rows(await p.setting.findMany()),
      pendingLogins: rows(await p.pendingLogin.findMany()),
      localCredentials: rows(await p.localCredential.findMany()),
      auditEvents: [String(await p.auditEvent.count())],
    };
  }

  function fill(method: string, url: string): string {
    return url.replace(/:(\w+)/g, (_m, name: string) => {
      if (name === 'user') return 'alice';
      if (name === 'code') return 'ABCD-EFGH'; // no such login: the scope check comes before the lookup
      if (name === 'version') return '1';
      if (name === 'id' && url.startsWith('/api/v1/nodes/')) return String(ids.node);
      if (name === 'id' && url.startsWith('/api/v1/authkeys/')) return String(ids.authKey);
      if (name === 'id' && url.startsWith('/api/v1/apikeys/')) return String(ids.apiKey);
      throw new Error(`${method} ${url}: no value for :${name}; add one to fill() in api-scopes.test.ts`);
    });
  }

  const call = (method: string, url: string, key: string) => {
    const route = `${method} ${url}`;
    return s.api(method, fill(method, url), BODIES[route], { authorization: `Bearer ${key}`, ...HEADERS[route] });
  };

  beforeAll(async () => {
    s = await startServer(backend);
    const ok = (r: { status: number; body: any }) => {
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      return r.body;
    };
    ok(await s.api('POST', '/api/v1/users', { name: 'alice' }));
    ok(await s.api('PUT', '/api/v1/policy', { text: JSON.stringify({ tagOwners: { 'tag:ci': [] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] }) }, { 'if-match': '"0"' }));
    ids = {
      node: ok(await s.api('POST', '/api/v1/nodes', { user: 'alice', hostname: 'alice-phone', nodeKey: generateNodeKey().publicKey })).id,
      authKey: ok(await s.api('POST', '/api/v1/authkeys', { user: 'alice' })).id,
      apiKey: ok(await s.api('POST', '/api/v1/apikeys', { scopes: ['read'], description: 'to be revoked' })).id,
    };
    scimKey = ok(await s.api('POST', '/api/v1/apikeys', { scopes: ['scim'] })).key;
  });
  afterAll(async () => s?.close());

  it('the route list comes from the app and is not trivially small', () => {
    const list = routes();
    expect(list.length).toBeGreaterThan(30);
    expect(list.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(['POST /api/v1/users', 'DELETE /api/v1/nodes/:id', 'PUT /api/v1/policy']));
    for (const table of [READ_MAY_CALL, GET_NEEDS_ADMIN, OTHER_CREDENTIALS, PUBLIC, BODIES, HEADERS]) {
      for (const route of Object.keys(table)) expect(list.map((r) => `${r.method} ${r.url}`), `${route} is listed here but not registered`).toContain(route);
    }
  });

  it('a read key is refused (403 forbidden) on every route that changes something, and nothing changes', async () => {
    const before = await snapshot();
    const writes = routes().filter((r) => !READ_SAFE_METHODS.has(r.method));
    expect(writes.length).toBeGreaterThan(15);
    const wrong: string[] = [];
    for (const { method, url } of writes) {
      const route = `${method} ${url}`;
      const r = await call(method, url, s.readKey);
      if (route in OTHER_CREDENTIALS) {
        if (r.status !== 401) wrong.push(`${route} (other credentials) answered ${r.status} ${JSON.stringify(r.body)}`);
      } else if (route in READ_MAY_CALL) {
        if (r.status === 403 || r.status === 401 || r.status >= 500) wrong.push(`${route} (reads only) answered ${r.status} ${JSON.stringify(r.body)}`);
      } else if (r.status !== 403 || r.body?.code !== 'forbidden') {
        wrong.push(`${route} answered ${r.status} ${JSON.stringify(r.body)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it('a read key is answered (not 403) on every GET, except the admin-only ones', async () => {
    const wrong: string[] = [];
    for (const { method, url } of routes().filter((r) => r.method === 'GET')) {
      const route = `${method} ${url}`;
      const r = await call(method, url, s.readKey);
      if (route in GET_NEEDS_ADMIN) {
        if (r.status !== 403 || r.body?.code !== 'forbidden') wrong.push(`${route} (admin only) answered ${r.status}`);
      } else if (route in OTHER_CREDENTIALS) {
        if (r.status !== 401) wrong.push(`${route} (other credentials) answered ${r.status}`);
      } else if (r.status === 403 || r.status === 401 || r.status >= 500) {
        wrong.push(`${route} answered ${r.status} ${JSON.stringify(r.body)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('a SCIM token is refused (403 forbidden) on every /api/v1 route, and nothing changes', async () => {
    const before = await snapshot();
    const wrong: string[] = [];
    for (const { method, url } of routes()) {
      const route = `${method} ${url}`;
      const r = await call(method, url, scimKey);
      if (route in PUBLIC) continue;
      if (route in OTHER_CREDENTIALS) {
        if (r.status !== 401) wrong.push(`${route} (other credentials) answered ${r.status}`);
      } else if (r.status !== 403 || r.body?.code !== 'forbidden') wrong.push(`${route} answered ${r.status} ${JSON.stringify(r.body)}`);
    }
    expect(wrong).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });
});

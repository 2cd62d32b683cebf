import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

/** Counts of everything a bad request might have written. */
async function snapshot(s: TestServer) {
  const p = s.state.ctx.prisma;
  return { users: await p.user.count(), keys: await p.authKey.count(), apiKeys: await p.apiKey.count(), nodes: await p.node.count(), audit: await p.auditEvent.count() };
}

describe.each(BACKENDS)('bad input on %s: 4xx problem+json, nothing written', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(backend);
    await s.api('POST', '/api/v1/users', { name: 'dave' });
  });
  afterAll(async () => s?.close());

  const cases: [string, string, string, unknown, Record<string, string>?, number?, string?][] = [
    ['malformed JSON', 'POST', '/api/v1/users', '{"name": "eve"', undefined, 400, 'malformed_json'],
    ['empty JSON body', 'POST', '/api/v1/users', '', { 'content-type': 'application/json' }, 400, 'malformed_json'],
    ['wrong type', 'POST', '/api/v1/users', { name: 42 }, undefined, 400, 'invalid_request'],
    ['unknown field', 'POST', '/api/v1/users', { name: 'eve', admin: true }, undefined, 400, 'invalid_request'],
    ['invalid name', 'POST', '/api/v1/users', { name: '../../etc' }, undefined, 400, 'invalid_request'],
    ['oversize body', 'POST', '/api/v1/users', { name: 'eve', displayName: 'x'.repeat(70 * 1024) }, undefined, 413, 'body_too_large'],
    ['wrong content type', 'POST', '/api/v1/users', 'name=eve', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'unsupported_media_type'],
    ['auth key for unknown user', 'POST', '/api/v1/authkeys', { user: 'nobody' }, undefined, 404, 'user_not_found'],
    ['bad tag', 'POST', '/api/v1/authkeys', { user: 'dave', tags: ['ci'] }, undefined, 400, 'invalid_request'],
    ['negative expiry', 'POST', '/api/v1/authkeys', { user: 'dave', expiresIn: -5 }, undefined, 400, 'invalid_request'],
    ['unknown scope', 'POST', '/api/v1/apikeys', { scopes: ['root'] }, undefined, 400, 'invalid_request'],
    ['non-numeric id', 'DELETE', '/api/v1/nodes/abc', undefined, undefined, 400, 'invalid_request'],
    ['missing node', 'DELETE', '/api/v1/nodes/999999', undefined, undefined, 404, 'node_not_found'],
    ['unknown route', 'GET', '/api/v1/nope', undefined, undefined, 404, 'not_found'],
    ['broken %-escape in the path', 'DELETE', '/api/v1/users/%zz', undefined, undefined, 400, 'invalid_request'],
    ['over-long path segment', 'POST', `/api/v1/nodes/${'1'.repeat(300)}/expire`, undefined, undefined, 400, 'invalid_request'],
    ['malformed register body', 'POST', '/agent/v1/register', { nodeKey: 'nodekey:zz', hostname: 'x' }, undefined, 400, 'invalid_request'],
    ['register without machine proof', 'POST', '/agent/v1/register', { nodeKey: 'nodekey:' + 'a'.repeat(64), hostname: 'x', authKey: 'k' }, {}, 401, 'machine_unauthorized'],
    ['register with forged machine token', 'POST', '/agent/v1/register', { nodeKey: 'nodekey:' + 'a'.repeat(64), hostname: 'x' }, { authorization: 'Bearer a.b.c' }, 401, 'machine_unauthorized'],
  ];

  it.each(cases)('%s', async (_name, method, path, body, headers, status, code) => {
    const before = await snapshot(s);
    const res = await s.api(method, path, body, headers);
    expect(res.status).toBe(status);
    expect(res.type).toContain('application/problem+json');
    expect(res.body).toMatchObject({ status, code, title: expect.any(String), retryable: false });
    expect(await snapshot(s)).toEqual(before);
  });

  it('validation errors name the field', async () => {
    const res = await s.api('POST', '/api/v1/users', { name: 42 });
    expect(res.body.errors[0].path).toBe('body.name');
    expect(res.body.detail).toContain('name');
  });
});

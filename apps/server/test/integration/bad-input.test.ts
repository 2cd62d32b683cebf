import { connect } from 'node:net';
import { SignJWT, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMachineKey, generateNodeKey, machinePrivateJwk } from '@weft/crypto';
import { MACHINE_TOKEN_AUDIENCE } from '@weft/protocol';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

/** Counts of everything a bad request might have written. */
async function snapshot(s: TestServer) {
  const p = s.state.ctx.prisma;
  return { users: await p.user.count(), keys: await p.authKey.count(), apiKeys: await p.apiKey.count(), nodes: await p.node.count(), audit: await p.auditEvent.count() };
}

/** Writes bytes on a fresh connection and returns everything the server answers until it closes. */
function rawRequest(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname, () => sock.write(bytes));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve(out) : reject(err)));
    sock.on('close', () => resolve(out));
  });
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
    // Postgres text cannot hold U+0000 and int4 stops at 2^31-1: refused as input, never a 500.
    ['NUL in a display name', 'POST', '/api/v1/users', { name: 'eve', displayName: 'E\u0000ve' }, undefined, 400, 'invalid_request'],
    ['NUL in an API key description', 'POST', '/api/v1/apikeys', { scopes: ['read'], description: 'ci\u0000' }, undefined, 400, 'invalid_request'],
    ['NUL in a register hostname', 'POST', '/agent/v1/register', { nodeKey: 'nodekey:' + 'a'.repeat(64), hostname: 'h\u0000' }, undefined, 400, 'invalid_request'],
    ['node id at 2^31', 'GET', '/api/v1/nodes/2147483648', undefined, undefined, 400, 'invalid_request'],
    ['auth key id far beyond int4', 'DELETE', '/api/v1/authkeys/99999999999999', undefined, undefined, 400, 'invalid_request'],
    ['API key id zero', 'DELETE', '/api/v1/apikeys/0', undefined, undefined, 400, 'invalid_request'],
    ['wrong method on an existing path', 'PATCH', '/api/v1/users', { name: 'eve' }, undefined, 405, 'method_not_allowed'],
  ];

  it.each(cases)('%s', async (_name, method, path, body, headers, status, code) => {
    const before = await snapshot(s);
    const res = await s.api(method, path, body, headers);
    expect(res.status).toBe(status);
    expect(res.type).toContain('application/problem+json');
    expect(res.body).toMatchObject({ status, code, title: expect.any(String), retryable: false });
    expect(await snapshot(s)).toEqual(before);
  });

  it('a NUL or an out-of-range id is a 400 naming the field', async () => {
    const nul = await s.api('POST', '/api/v1/users', { name: 'eve', displayName: 'E\u0000ve' });
    expect(nul.body.errors).toEqual([{ path: 'body.displayName', message: 'must not contain NUL characters (U+0000)' }]);
    const big = await s.api('GET', '/api/v1/nodes/2147483648');
    expect(big.body.errors).toEqual([{ path: 'params.id', message: 'must be at most 2147483647' }]);
    expect((await s.api('GET', '/api/v1/nodes/2147483647')).body.code).toBe('node_not_found');
  });

  it('a wrong method on an existing path is 405 with Allow', async () => {
    const res = await fetch(`${s.url}/api/v1/users/dave`, { method: 'PUT', headers: { authorization: `Bearer ${s.adminKey}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('DELETE, GET, HEAD');
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('a wrong method with a body of an empty content type is 405, not 415 (found by the REST fuzz, seed 24301)', async () => {
    const res = await fetch(`${s.url}/api/v1/nodes/1/rename`, { method: 'DELETE', headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': '' }, body: '{"name":"x"}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('a too-large request header gets problem+json 431, and the server keeps serving', async () => {
    const raw = await rawRequest(s.url, `GET /api/v1/users HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(raw).toMatch(/^HTTP\/1\.1 431 /);
    expect(raw).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 431, code: 'headers_too_large', retryable: false });
    const garbage = await rawRequest(s.url, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 [\s\S]*"code":"invalid_request"/);
    expect((await s.api('GET', '/api/v1/users')).status).toBe(200);
  });

  it('a machine token issued ten years ahead is refused in one line', async () => {
    const m = generateMachineKey();
    const key = await importJWK(machinePrivateJwk(m.privateKey), 'EdDSA');
    const at = Math.floor(Date.now() / 1000) + 10 * 365 * 86400;
    const token = await new SignJWT({ sub: m.publicKey, aud: MACHINE_TOKEN_AUDIENCE, pv: 1, iat: at, exp: at }).setProtectedHeader({ alg: 'EdDSA' }).sign(key);
    const before = await snapshot(s);
    const res = await s.api('POST', '/agent/v1/register', { nodeKey: generateNodeKey().publicKey, hostname: 'future' }, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('machine_unauthorized');
    expect(res.body.detail).toMatch(/issued \d+ s in the future/);
    expect(res.body.detail).not.toContain('\n');
    expect(await snapshot(s)).toEqual(before);
    expect(await s.state.ctx.prisma.pendingLogin.count()).toBe(0);
  });

  it('API key refusals say what is wrong in one line', async () => {
    const as = (key: string) => s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${key}` });
    const malformed = await as('not-a-key');
    expect(malformed.status).toBe(401);
    expect(malformed.body.detail).toMatch(/not shaped like an API key/);
    expect((await as('weft-api-000000000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).body.detail).toBe('the API key is not valid');
    const k = await s.api('POST', '/api/v1/apikeys', { scopes: ['read'] });
    await s.api('DELETE', `/api/v1/apikeys/${k.body.id}`);
    const revoked = await as(k.body.key);
    expect(revoked.body).toMatchObject({ code: 'unauthenticated', detail: `API key ${k.body.prefix} was revoked` });
    for (const r of [malformed, revoked]) expect(r.body.detail).not.toContain('\n');
  });

  it('validation errors name the field', async () => {
    const res = await s.api('POST', '/api/v1/users', { name: 42 });
    expect(res.body.errors[0].path).toBe('body.name');
    expect(res.body.detail).toContain('name');
  });
});

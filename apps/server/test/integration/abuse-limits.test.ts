/**
 * Anonymous callers are bounded: new interactive logins and failed key attempts per source
 * address (429 + Retry-After), a deployment-wide cap on waiting devices, and expired pending
 * logins reaped. Other clients (other loopback addresses: all of 127/8 reaches the server) are
 * still served.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMachineKey, generateNodeKey, signMachineToken } from '@weft/crypto';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

interface Res { status: number; headers: Record<string, string | string[] | undefined>; body: any }

/** An HTTP request from a chosen local (source) address. */
function from(localAddress: string, url: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Res> {
  const { hostname, port } = new URL(url);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method, localAddress, headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A fresh device registering (no auth key unless given) from `addr`. */
async function register(s: TestServer, addr: string, device = { machine: generateMachineKey(), node: generateNodeKey() }, authKey?: string, headers: Record<string, string> = {}): Promise<Res> {
  const token = await signMachineToken(device.machine.privateKey);
  return from(addr, s.url, 'POST', '/agent/v1/register', { ...headers, authorization: `Bearer ${token}` }, { nodeKey: device.node.publicKey, hostname: 'spray', ...(authKey ? { authKey } : {}) });
}

function expectRateLimited(r: Res) {
  expect(r.status).toBe(429);
  expect(r.headers['content-type']).toContain('application/problem+json');
  expect(r.body).toMatchObject({ status: 429, code: 'rate_limited', retryable: true });
  expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(r.body.detail).not.toContain('\n');
}

describe.each(BACKENDS)('abuse limits on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(backend, {
      maxPendingLogins: 8,
      limits: { registerBurst: 5, registerPerSecond: 0.001, authFailureBurst: 5, authFailurePerSecond: 0.001 },
    });
  });
  afterAll(async () => s?.close());
  const pending = () => s.state.ctx.prisma.pendingLogin.count();

  it('a register burst from one address gets 429 with Retry-After and creates no rows beyond the limit; another client is still served', async () => {
    const first = { machine: generateMachineKey(), node: generateNodeKey() };
    // The first on its own (concurrent requests arrive in any order), then the rest of the burst at once.
    const opening = await register(s, '127.0.0.1', first);
    expect(opening.body.status).toBe('pending');
    const results = await Promise.all(Array.from({ length: 29 }, () => register(s, '127.0.0.1')));
    expect(results.filter((r) => r.status === 200)).toHaveLength(4);
    for (const r of results.filter((x) => x.status !== 200)) expectRateLimited(r);
    expect(await pending()).toBe(5);
    // Polling an existing pending login spends nothing; a different address has its own budget.
    expect((await register(s, '127.0.0.1', first)).body.status).toBe('pending');
    // No trusted proxy is configured: X-Forwarded-For does not buy a fresh budget.
    expectRateLimited(await register(s, '127.0.0.1', undefined, undefined, { 'x-forwarded-for': '198.51.100.9' }));
    expect((await register(s, '127.0.0.2')).body.status).toBe('pending');
    expect(await pending()).toBe(6);
    expect((await s.api('GET', '/api/v1/users')).status).toBe(200);
  });

  it('outstanding pending logins are capped across all addresses', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => register(s, '127.0.0.3')));
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    const refused = results.filter((r) => r.status !== 200);
    for (const r of refused) expectRateLimited(r);
    expect(refused[0]!.body.detail).toMatch(/waiting for approval/);
    expect(await pending()).toBe(8);
  });

  it('failed API key guessing gets 429; a valid key spends nothing and other addresses are served', async () => {
    const good = { authorization: `Bearer ${s.adminKey}` };
    for (let i = 0; i < 20; i++) expect((await from('127.0.0.4', s.url, 'GET', '/api/v1/users', good)).status).toBe(200);
    const bad = (i: number) => ({ authorization: `Bearer weft-api-00000000000${i % 10}-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` });
    for (let i = 0; i < 5; i++) expect((await from('127.0.0.4', s.url, 'GET', '/api/v1/users', bad(i))).status).toBe(401);
    expectRateLimited(await from('127.0.0.4', s.url, 'GET', '/api/v1/users', bad(5)));
    expect((await from('127.0.0.5', s.url, 'GET', '/api/v1/users', good)).status).toBe(200);
  });

  it('failed auth key guessing on register gets 429 and writes nothing', async () => {
    const nodes = await s.state.ctx.prisma.node.count();
    const guess = 'weft-auth-000000000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    for (let i = 0; i < 5; i++) expect((await register(s, '127.0.0.6', undefined, guess)).body.code).toBe('auth_key_invalid');
    expectRateLimited(await register(s, '127.0.0.6', undefined, guess));
    expect(await s.state.ctx.prisma.node.count()).toBe(nodes);
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    const real = (await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key as string;
    expect((await register(s, '127.0.0.7', undefined, real)).body.status).toBe('registered');
  });
});

describe.each(BACKENDS)('expired pending logins on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    // Long enough that none expires while the three are still being made on a loaded machine.
    s = await startServer(backend, { loginTimeoutS: 4, loginReapGraceS: 0, loginReapIntervalMs: 200 });
  });
  afterAll(async () => s?.close());

  it('are reaped, and the reap is audited', async () => {
    for (let i = 0; i < 3; i++) expect((await register(s, '127.0.0.1')).body.status).toBe('pending');
    expect(await s.state.ctx.prisma.pendingLogin.count()).toBe(3);
    const deadline = Date.now() + 20_000;
    while ((await s.state.ctx.prisma.pendingLogin.count()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await s.state.ctx.prisma.pendingLogin.count()).toBe(0);
    expect(await s.state.ctx.prisma.auditEvent.count({ where: { action: 'login.reap-expired' } })).toBeGreaterThan(0);
  });
});

describe('behind a trusted proxy', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('pglite', { trustedProxies: ['127.0.0.1'], limits: { registerBurst: 2, registerPerSecond: 0.001 } });
  });
  afterAll(async () => s?.close());

  it("limits the client named by the trusted proxy's X-Forwarded-For, and ignores it from anyone else", async () => {
    const via = (client: string) => ({ 'x-forwarded-for': client });
    expect((await register(s, '127.0.0.1', undefined, undefined, via('198.51.100.1'))).status).toBe(200);
    expect((await register(s, '127.0.0.1', undefined, undefined, via('198.51.100.1'))).status).toBe(200);
    expectRateLimited(await register(s, '127.0.0.1', undefined, undefined, via('198.51.100.1')));
    expect((await register(s, '127.0.0.1', undefined, undefined, via('198.51.100.2'))).status).toBe(200);
    // 127.0.0.2 is not a trusted proxy: its header is ignored and it is limited as itself.
    expect((await register(s, '127.0.0.2', undefined, undefined, via('198.51.100.3'))).status).toBe(200);
    expect((await register(s, '127.0.0.2', undefined, undefined, via('198.51.100.4'))).status).toBe(200);
    expectRateLimited(await register(s, '127.0.0.2', undefined, undefined, via('198.51.100.5')));
  });
});

/**
 * Browser sign-in with a local account: the password set through the API (as `weft-server admin
 * set-password` does), the session cookie's flags, CSRF on state changes made with the cookie,
 * sign-in rate limits and their audit, sign-out, and a device approved on the browser page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeKeyFingerprint } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { Browser, hiddenField } from '../support/browser.js';
import { startServer, type TestServer } from '../support/server.js';
import { SESSION_IDLE_TIMEOUT_MS } from '../../src/tunables.js';

const PASSWORD = 'correct horse battery staple';

describe('web sign-in with a local account', () => {
  let s: TestServer;
  beforeAll(async () => {
    // Trusting loopback lets one test say "this came over TLS" with X-Forwarded-Proto, as a proxy would.
    s = await startServer('pglite', { trustedProxies: ['loopback'], limits: { signInFailureBurst: 3, signInFailurePerSecond: 1 / 3600 } });
    const set = await s.api('PUT', '/api/v1/users/root/password', { password: PASSWORD });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toEqual({ user: 'root', created: true });
  });
  afterAll(async () => s?.close());
  // Each browser its own source address (the server trusts loopback's X-Forwarded-For), so the sign-in limits of one test do not reach the next.
  let addresses = 0;
  const browser = () => new Browser(s.url, `198.51.100.${++addresses}`);

  const signIn = async (b: Browser, username = 'root', password = PASSWORD, next?: string) =>
    b.request('POST', '/auth/login', { form: { username, password, ...(next ? { next } : {}) } });

  it('stores the password only as a scrypt hash, and a short password is refused naming the field', async () => {
    const row = await s.state.ctx.prisma.localCredential.findFirstOrThrow();
    expect(row.passwordHash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
    expect(row.passwordHash).not.toContain(PASSWORD);
    const short = await s.api('PUT', '/api/v1/users/root/password', { password: 'short' });
    expect(short.status).toBe(400);
    expect(JSON.stringify(short.body)).toContain('password');
  });

  it('signs in with the right password: session cookie HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP', async () => {
    const b = browser();
    const res = await signIn(b);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/login');
    const set = b.setCookies.find((c) => c.startsWith('weft-session='))!;
    expect(set).toMatch(/^weft-session=[A-Za-z0-9_-]{43}; /);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Lax');
    expect(set).toContain('Path=/');
    expect(set).toMatch(/Max-Age=\d+/);
    expect(set).not.toContain('Secure');
    const session = await b.get('/auth/session');
    expect(session.status).toBe(200);
    expect(JSON.parse(session.body)).toMatchObject({ user: { name: 'root' }, role: 'admin', method: 'password' });
    // The database has the id's hash, never the id.
    const token = b.cookies.get('weft-session')!;
    const rows = await s.state.ctx.prisma.webSession.findMany();
    expect(rows.some((r) => r.tokenHash === token)).toBe(false);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.tokenHash))).toBe(true);
  });

  it('over TLS (X-Forwarded-Proto https from a trusted proxy) the cookie is Secure and __Host- prefixed', async () => {
    const b = browser();
    const res = await b.request('POST', '/auth/login', { form: { username: 'root', password: PASSWORD }, headers: { 'x-forwarded-proto': 'https', origin: `https://${new URL(s.url).host}` } });
    expect(res.status).toBe(303);
    const set = b.setCookies.find((c) => c.startsWith('__Host-weft-session='))!;
    expect(set).toContain('Secure');
    expect(set).toContain('HttpOnly');
    expect(set).toContain('Path=/');
    expect(set).not.toContain('Domain');
  });

  it('a wrong password is refused with a clear error, no session, and an audit event without the password', async () => {
    const b = browser();
    const res = await signIn(b, 'root', 'not the password at all');
    expect(res.status).toBe(401);
    expect(res.body).toContain('wrong user name or password');
    expect(b.cookies.size).toBe(0);
    const events = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'auth.sign-in-failed' } });
    expect(events.length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ actorType: 'anonymous', origin: 'ui', target: 'user:root' });
    expect(JSON.stringify(events, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('not the password at all');
  });

  it('failed sign-ins are rate limited per address and per account (from any address); while limited even the right password is refused', async () => {
    // The account's budget (3 here) is spent from three addresses, one failure each ...
    expect((await s.api('PUT', '/api/v1/users/limited/password', { password: PASSWORD })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await signIn(browser(), 'limited', `wrong password ${i}`)).status).toBe(401);
    // ... so a fourth address is refused for it, even with the right password, while other accounts still sign in from there.
    const b = browser();
    const limited = await signIn(b, 'limited', PASSWORD);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(limited.body).toContain('too many failed sign-ins');
    expect(b.cookies.size).toBe(0);
    // One address's budget: three failures for other names, then refused.
    const c = browser();
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await signIn(c, `nobody-${i}`, 'wrong password')).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it('a login form posted from another site is refused (login CSRF)', async () => {
    const b = browser();
    const res = await b.request('POST', '/auth/login', { form: { username: 'root', password: PASSWORD }, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } });
    expect(res.status).toBe(403);
    expect(res.body).toContain('another site');
    expect(b.cookies.size).toBe(0);
  });

  it('the session is a principal of /api/v1: reads with the cookie; writes need the CSRF token and the same origin', async () => {
    const b = browser();
    await signIn(b);
    const { csrfToken } = JSON.parse((await b.get('/auth/session')).body) as { csrfToken: string };
    expect((await b.get('/api/v1/users')).status).toBe(200);

    const without = await b.request('POST', '/api/v1/users', { json: { name: 'no-token' } });
    expect(without.status).toBe(403);
    expect(JSON.parse(without.body)).toMatchObject({ code: 'csrf_failed', retryable: false });
    const crossSite = await b.request('POST', '/api/v1/users', { json: { name: 'cross-site' }, headers: { 'x-csrf-token': csrfToken, 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    const otherOrigin = await b.request('POST', '/api/v1/users', { json: { name: 'other-origin' }, headers: { 'x-csrf-token': csrfToken, 'sec-fetch-site': '', origin: 'https://evil.example' } });
    expect(otherOrigin.status).toBe(403);
    const wrong = await b.request('POST', '/api/v1/users', { json: { name: 'wrong-token' }, headers: { 'x-csrf-token': csrfToken.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } });
    expect(wrong.status).toBe(403);
    const names = (await s.api('GET', '/api/v1/users')).body.items.map((u: { name: string }) => u.name);
    for (const n of ['no-token', 'cross-site', 'other-origin', 'wrong-token']) expect(names).not.toContain(n);

    const ok = await b.request('POST', '/api/v1/users', { json: { name: 'made-in-ui' }, headers: { 'x-csrf-token': csrfToken } });
    expect(ok.status, ok.body).toBe(201);
    const [event] = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'user.create', target: 'user:made-in-ui' } });
    expect(event).toMatchObject({ actorType: 'user', actorName: 'root', origin: 'ui', actor: 'user:root' });
  });

  it('a Bearer API key is unaffected by CSRF checks, with or without a cookie', async () => {
    const b = browser();
    await signIn(b);
    const res = await b.request('POST', '/api/v1/users', { json: { name: 'by-api-key' }, headers: { authorization: `Bearer ${s.adminKey}`, 'sec-fetch-site': 'cross-site' } });
    expect(res.status, res.body).toBe(201);
  });

  it('sign-out ends the session: the old cookie no longer works anywhere', async () => {
    const b = browser();
    await signIn(b);
    const cookie = `weft-session=${b.cookies.get('weft-session')}`;
    const { csrfToken } = JSON.parse((await b.get('/auth/session')).body) as { csrfToken: string };
    const noToken = await b.request('POST', '/auth/logout', { form: {} });
    expect(noToken.status).toBe(403);
    expect((await b.get('/auth/session')).status).toBe(200);
    const out = await b.request('POST', '/auth/logout', { form: { _csrf: csrfToken } });
    expect(out.status).toBe(303);
    expect(b.setCookies.at(-1)).toMatch(/^weft-session=; .*Max-Age=0/);
    for (const path of ['/auth/session', '/api/v1/users']) {
      const res = await fetch(s.url + path, { headers: { cookie } });
      expect(res.status, path).toBe(401);
    }
    const events = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'auth.sign-out' } });
    expect(events.at(-1)).toMatchObject({ actorType: 'user', actorName: 'root' });
  });

  it('a session idle past the idle timeout, or past its end, is refused and deleted', async () => {
    const idle = browser();
    await signIn(idle);
    const ended = browser();
    await signIn(ended);
    const [a, b] = await s.state.ctx.prisma.webSession.findMany({ orderBy: { id: 'desc' }, take: 2 });
    // Moved back in the database rather than waited for: the server reads these times on every request.
    await s.state.ctx.prisma.webSession.update({ where: { id: b!.id }, data: { lastSeenAt: new Date(Date.now() - SESSION_IDLE_TIMEOUT_MS - 1000) } });
    await s.state.ctx.prisma.webSession.update({ where: { id: a!.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    for (const br of [idle, ended]) {
      expect((await br.get('/auth/session')).status).toBe(401);
      expect((await br.get('/api/v1/users')).status).toBe(401);
    }
    expect(await s.state.ctx.prisma.webSession.count({ where: { id: { in: [a!.id, b!.id] } } })).toBe(0);
  });

  it("suspending a user ends their web sessions at once, and they cannot sign in until resumed", async () => {
    expect((await s.api('PUT', '/api/v1/users/temp-admin/password', { password: PASSWORD })).status).toBe(200);
    const b = browser();
    expect((await signIn(b, 'temp-admin')).status).toBe(303);
    expect((await b.get('/api/v1/users')).status).toBe(200);
    expect((await s.api('POST', '/api/v1/users/temp-admin/suspend')).status).toBe(200);
    expect((await b.get('/api/v1/users')).status).toBe(401);
    expect((await b.get('/auth/session')).status).toBe(401);
    const again = await signIn(browser(), 'temp-admin');
    expect(again.status).toBe(401);
    expect(again.body).toContain('suspended');
  });

  it('a device login approved in the browser: sign in, confirm hostname and key, and the waiting agent goes on as that user', async () => {
    const agent = new SimAgent(s.url, 'ada-laptop');
    agent.os = 'linux 6.1.0-18-amd64';
    const pending = await agent.register();
    if (pending.status !== 'pending') throw new Error('expected a pending login');
    const b = browser();
    // Not signed in: the page sends the person to sign in and back.
    const hops = await b.navigate(new URL(pending.loginUrl).pathname);
    expect(hops[0]!.status).toBe(302);
    expect(hops.at(-1)!.body).toContain('name="password"');
    const signedIn = await b.follow(await signIn(b, 'root', PASSWORD, hiddenField(hops.at(-1)!.body, 'next')));
    const page = signedIn.at(-1)!;
    expect(page.url).toContain(`/login/${pending.code}`);
    expect(page.body).toContain('ada-laptop');
    expect(page.body).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
    // The device's OS and the node key fingerprint `weft login` printed beside the URL.
    expect(page.body).toContain('<dt>Operating system</dt><dd>linux 6.1.0-18-amd64</dd>');
    expect(page.body).toContain(`<code data-testid="fingerprint">${nodeKeyFingerprint(agent.node.publicKey)}</code>`);
    const listed = (await s.api('GET', `/api/v1/logins/${pending.code}`)).body;
    expect(listed).toMatchObject({ os: 'linux 6.1.0-18-amd64', fingerprint: nodeKeyFingerprint(agent.node.publicKey) });
    // An agent too old to report its OS still gets a page, saying so.
    const old = new SimAgent(s.url, 'old-weft');
    const oldPending = await old.register();
    if (oldPending.status !== 'pending') throw new Error('expected a pending login');
    const oldPage = (await b.navigate(`/login/${oldPending.code}`)).at(-1)!;
    expect(oldPage.body).toContain('<dt>Operating system</dt><dd>not reported (an older weft)</dd>');
    expect(oldPage.body).toContain(nodeKeyFingerprint(old.node.publicKey));
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");

    // Confirming needs the page's CSRF token.
    const forged = await b.request('POST', `/login/${pending.code}/approve`, { form: {} });
    expect(forged.status).toBe(403);
    expect((await agent.register()).status).toBe('pending');

    const confirmedAt = Date.now();
    const approved = await b.request('POST', `/login/${pending.code}/approve`, { form: { _csrf: hiddenField(page.body, '_csrf') } });
    expect(approved.status, approved.body).toBe(200);
    expect(approved.body).toContain('is joining as root');
    // The agent polls (every second in the real one); its next poll finds it registered.
    const next = await agent.register();
    console.log(`browser approval -> agent registered in ${Date.now() - confirmedAt} ms`);
    expect(next.status).toBe('registered');
    expect(agent.self).toMatchObject({ user: 'root' });
    const [event] = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'node.approve' }, orderBy: { id: 'desc' }, take: 1 });
    expect(event).toMatchObject({ actorType: 'user', actorName: 'root', origin: 'ui' });
  });
});

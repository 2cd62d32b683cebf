/**
 * Sign-in with OIDC against a provider inside the test process (support/oidc-provider.ts): the
 * whole code flow over real HTTP with the redirects followed by hand, the id_token checks (wrong
 * issuer, bad signature, expired, wrong nonce), a replayed code, allowed domains, the groups
 * claim under a namespaced name, and a device approved by the signed-in person.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { Browser, hiddenField, type Hop } from '../support/browser.js';
import { TestOidcProvider } from '../support/oidc-provider.js';
import { startServer, type TestServer } from '../support/server.js';

const GROUPS_CLAIM = 'https://weft.example/groups';

describe('web sign-in with OIDC', () => {
  let idp: TestOidcProvider;
  let s: TestServer;
  beforeAll(async () => {
    idp = await TestOidcProvider.start();
    s = await startServer('pglite', {
      oidc: {
        issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret,
        redirectUrl: 'REPLACED', scopes: ['openid', 'email', 'profile'], groupsClaim: GROUPS_CLAIM,
        allowedDomains: ['example.com'], allowedUsers: [], allowedGroups: [], adminGroups: ['weft-admins'],
      },
    });
  });
  afterAll(async () => {
    await s?.close();
    await idp?.close();
  });

  beforeAll(() => {
    // The test server learns its port only once it listens: point the redirect URL at it.
    s.oidc!.settings.redirectUrl = `${s.url}/auth/oidc/callback`;
  });

  const user = (over: Record<string, unknown> = {}) => {
    idp.user = { sub: `sub-${Math.random().toString(36).slice(2)}`, email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', preferred_username: 'ada', [GROUPS_CLAIM]: ['eng', 'weft-admins'], ...over };
    return idp.user;
  };

  /** Starts at /auth/oidc/start and follows every hop to the end; returns the hops and the callback hop. */
  async function signIn(b: Browser, next = '/auth/login'): Promise<{ hops: Hop[]; callback: Hop }> {
    const hops = await b.navigate(`/auth/oidc/start?next=${encodeURIComponent(next)}`);
    const callback = hops.find((h) => h.url.includes('/auth/oidc/callback'))!;
    return { hops, callback };
  }

  async function expectRefused(b: Browser, callback: Hop, status: number, text: string | RegExp) {
    expect(callback.status, callback.body).toBe(status);
    expect(callback.body).toMatch(text);
    expect(b.cookies.has('weft-session')).toBe(false);
    expect((await b.get('/auth/session')).status).toBe(401);
  }

  it('signs in end to end: PKCE S256, state and nonce sent; user keyed by issuer + subject; groups stored; admin by group', async () => {
    const claims = user();
    const b = new Browser(s.url);
    const { hops, callback } = await signIn(b);
    const authorize = new URL(hops[0]!.headers.get('location')!);
    expect(authorize.origin).toBe(idp.issuer);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(callback.status, callback.body).toBe(303);
    const session = JSON.parse((await b.get('/auth/session')).body);
    expect(session).toMatchObject({ user: { name: 'ada' }, role: 'admin', method: 'oidc' });
    const identity = await s.state.ctx.prisma.userIdentity.findUniqueOrThrow({ where: { issuer_subject: { issuer: idp.issuer, subject: claims.sub! } }, include: { user: true } });
    expect(identity.groups).toEqual(['eng', 'weft-admins']);
    expect(identity.user).toMatchObject({ name: 'ada', email: 'ada@example.com', displayName: 'Ada Lovelace' });
    // An admin session may use the API.
    expect((await b.get('/api/v1/users')).status).toBe(200);
  });

  it('the same email with another subject is another user, never the first one (users are keyed by issuer + subject)', async () => {
    user({ [GROUPS_CLAIM]: ['eng'] });
    const b = new Browser(s.url);
    const { callback } = await signIn(b);
    expect(callback.status, callback.body).toBe(303);
    const session = JSON.parse((await b.get('/auth/session')).body);
    expect(session.user.name).toMatch(/^ada-\d+$/);
    // Not in an admin group: a member, who may not use the API.
    expect(session.role).toBe('member');
    const api = await b.get('/api/v1/users');
    expect(api.status).toBe(403);
    expect(JSON.parse(api.body).detail).toContain('signed in as a member');
  });

  it('an id_token from a wrong issuer is refused with a clear error and no session', async () => {
    user();
    idp.misbehave = { issuer: 'https://evil.example' };
    const b = new Browser(s.url);
    await expectRefused(b, (await signIn(b)).callback, 401, /issued by &#34;https:\/\/evil.example&#34;, not the configured issuer/);
  });

  it('an id_token with a bad signature is refused', async () => {
    user();
    idp.misbehave = { foreignKey: true };
    const b = new Browser(s.url);
    await expectRefused(b, (await signIn(b)).callback, 401, /signature does not verify/);
  });

  it('an expired id_token is refused', async () => {
    user();
    idp.misbehave = { expiresInS: -3600 };
    const b = new Browser(s.url);
    await expectRefused(b, (await signIn(b)).callback, 401, /expired/);
  });

  it('an id_token with a wrong nonce is refused', async () => {
    user();
    idp.misbehave = { nonce: 'from-another-sign-in' };
    const b = new Browser(s.url);
    await expectRefused(b, (await signIn(b)).callback, 401, /nonce/);
  });

  it('an id_token for another client (audience) is refused', async () => {
    user();
    idp.misbehave = { audience: 'someone-else' };
    const b = new Browser(s.url);
    await expectRefused(b, (await signIn(b)).callback, 401, /not meant for this client/);
  });

  it('a replayed code is refused: the same callback twice, and the used code under a fresh state', async () => {
    idp.misbehave = {};
    user();
    const b = new Browser(s.url);
    const { callback } = await signIn(b);
    expect(callback.status).toBe(303);
    const used = new URL(callback.url);

    // The same callback URL again (another browser that saw it): its state is spent.
    const thief = new Browser(s.url);
    await expectRefused(thief, await thief.get(callback.url), 401, /already completed or never started/);

    // The used code pasted into a fresh sign-in: the provider refuses a second exchange, and so do we.
    const c = new Browser(s.url);
    const start = await c.get('/auth/oidc/start');
    const fresh = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const replay = await c.get(`/auth/oidc/callback?code=${used.searchParams.get('code')}&state=${fresh}`);
    await expectRefused(c, replay, 401, /refused the authorization code \(invalid_grant\)/);
    expect(idp.refusals).toContain('invalid_grant');
  });

  it('a callback from another browser than the one that started the sign-in is refused', async () => {
    user();
    const b = new Browser(s.url);
    const start = await b.get('/auth/oidc/start');
    const atIdp = await b.get(start.headers.get('location')!);
    const other = new Browser(s.url);
    await expectRefused(other, await other.get(atIdp.headers.get('location')!), 401, /started in another browser/);
  });

  it('an email outside the allowed domains is refused, and the refusal is audited', async () => {
    user({ email: 'mallory@evil.test' });
    const b = new Browser(s.url);
    await expectRefused(b, (await signIn(b)).callback, 403, /email domain evil.test is not allowed/);
    const events = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'auth.sign-in-failed' }, orderBy: { id: 'desc' }, take: 1 });
    expect(events[0]).toMatchObject({ actorType: 'anonymous', origin: 'ui', target: 'user:mallory@evil.test' });
    expect(await s.state.ctx.prisma.user.findUnique({ where: { name: 'mallory' } })).toBeNull();
  });

  it('approves a device after signing in with OIDC; the waiting agent goes on as the signed-in user', async () => {
    user({ preferred_username: 'grace', email: 'grace@example.com', [GROUPS_CLAIM]: [] });
    const agent = new SimAgent(s.url, 'grace-laptop');
    const pending = await agent.register();
    if (pending.status !== 'pending') throw new Error('expected a pending login');
    const b = new Browser(s.url);
    // The page sends the person to sign in; the OIDC button comes back to it.
    const signInPage = (await b.navigate(`/login/${pending.code}`)).at(-1)!;
    const oidcLink = /href="(\/auth\/oidc\/start\?next=[^"]+)"/.exec(signInPage.body)![1]!.replace(/&amp;/g, '&');
    const page = (await b.navigate(oidcLink)).at(-1)!;
    expect(page.url).toContain(`/login/${pending.code}`);
    expect(page.body).toContain('grace-laptop');
    const approved = await b.request('POST', `/login/${pending.code}/approve`, { form: { _csrf: hiddenField(page.body, '_csrf') } });
    expect(approved.status, approved.body).toBe(200);
    expect((await agent.register()).status).toBe('registered');
    expect(agent.self).toMatchObject({ user: 'grace' });
  });
});

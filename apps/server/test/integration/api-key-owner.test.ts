/**
 * API keys have an owner: the signed-in user who made one (or the owner of the key that made it);
 * none from the admin socket. Suspending or offboarding the owner revokes their keys and deletes
 * their web sessions, in one audited operation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const PASSWORD = 'correct horse battery staple';

describe.each(BACKENDS)('API key owners on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(backend);
  });
  afterAll(async () => s?.close());

  let addresses = 0;
  /** A signed-in browser of `name` (a local admin account) and its CSRF token. */
  async function signedIn(name: string) {
    const b = new Browser(s.url, `198.51.100.${++addresses}`);
    const res = await b.request('POST', '/auth/login', { form: { username: name, password: PASSWORD } });
    expect(res.status, res.body).toBe(303);
    const { csrfToken } = JSON.parse((await b.get('/auth/session')).body) as { csrfToken: string };
    return { b, csrfToken };
  }

  /** `name` with two browser sessions, a key made in the browser and a key made with that key. */
  async function userWithKeys(name: string) {
    expect((await s.api('PUT', `/api/v1/users/${name}/password`, { password: PASSWORD })).status).toBe(200);
    const one = await signedIn(name);
    const two = await signedIn(name);
    const made = await one.b.request('POST', '/api/v1/apikeys', { json: { scopes: ['admin'], description: 'from the UI' }, headers: { 'x-csrf-token': one.csrfToken } });
    expect(made.status, made.body).toBe(201);
    const uiKey = JSON.parse(made.body) as { id: number; prefix: string; key: string; owner: string | null };
    const byKey = await s.api('POST', '/api/v1/apikeys', { scopes: ['read'] }, { authorization: `Bearer ${uiKey.key}` });
    expect(byKey.status, JSON.stringify(byKey.body)).toBe(201);
    return { sessions: [one, two], uiKey, keyKey: byKey.body as typeof uiKey };
  }

  it('a key made in the browser is its user\'s, a key made with that key too, a key made from the admin socket nobody\'s', async () => {
    const u = await userWithKeys('kai');
    expect(u.uiKey.owner).toBe('kai');
    expect(u.keyKey.owner).toBe('kai');
    const list = (await s.api('GET', '/api/v1/apikeys')).body.items as { prefix: string; owner: string | null }[];
    expect(list.find((k) => k.prefix === u.uiKey.prefix)?.owner).toBe('kai');
    expect(list.find((k) => k.prefix === u.keyKey.prefix)?.owner).toBe('kai');
    // The test harness's keys are made as the system (as the CLI's are, over the admin socket): no owner.
    const harness = list.filter((k) => k.owner === null);
    expect(harness.length).toBeGreaterThanOrEqual(2);
    const [event] = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'apikey.create', target: `apikey:${u.uiKey.prefix}` } });
    expect(event).toMatchObject({ actorType: 'user', actorName: 'kai', origin: 'ui', detail: { owner: 'kai' } });
  });

  it('suspending a user revokes the API keys they own and deletes their web sessions; one audit event names it all; ownerless keys keep working', async () => {
    const u = await userWithKeys('sue');
    const userId = (await s.api('GET', '/api/v1/users/sue')).body.id as number;
    expect(await s.state.ctx.prisma.webSession.count({ where: { userId } })).toBe(2);

    const r = await s.api('POST', '/api/v1/users/sue/suspend');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.apiKeys.map((k: { prefix: string }) => k.prefix)).toEqual([u.uiKey.prefix, u.keyKey.prefix]);
    expect(r.body.webSessions).toBe(2);
    // The rows are gone, not only refused on the next request.
    expect(await s.state.ctx.prisma.webSession.count({ where: { userId } })).toBe(0);
    for (const k of [u.uiKey, u.keyKey]) {
      const refused = await s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${k.key}` });
      expect(refused.status).toBe(401);
      expect(refused.body.detail).toContain('revoked');
    }
    for (const { b } of u.sessions) expect((await b.get('/api/v1/users')).status).toBe(401);
    const keys = (await s.api('GET', '/api/v1/apikeys')).body.items as { prefix: string; revoked: boolean }[];
    expect(keys.filter((k) => [u.uiKey.prefix, u.keyKey.prefix].includes(k.prefix)).every((k) => k.revoked)).toBe(true);
    expect((await s.api('GET', '/api/v1/users')).status).toBe(200);

    const events = (await s.api('GET', '/api/v1/audit?action=user.suspend&target=user:sue')).body.items;
    expect(events).toHaveLength(1);
    expect(events[0].groupId).toBe(r.body.groupId);
    expect(events[0].detail.apiKeys.map((k: { prefix: string }) => k.prefix)).toEqual([u.uiKey.prefix, u.keyKey.prefix]);
    expect(events[0].detail.webSessions).toBe(2);

    // Resume lets the user sign in again; the revoked keys stay revoked.
    expect((await s.api('POST', '/api/v1/users/sue/resume')).status).toBe(200);
    await signedIn('sue');
    expect((await s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${u.uiKey.key}` })).status).toBe(401);
  });

  it('offboarding a user revokes their API keys and auth keys and deletes their web sessions, in one audit event', async () => {
    const u = await userWithKeys('otto');
    const authKey = (await s.api('POST', '/api/v1/authkeys', { user: 'otto', reusable: true })).body;
    const r = await s.api('POST', '/api/v1/users/otto/offboard');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.apiKeys.map((k: { prefix: string }) => k.prefix)).toEqual([u.uiKey.prefix, u.keyKey.prefix]);
    expect(r.body.authKeys.map((k: { prefix: string }) => k.prefix)).toEqual([authKey.prefix]);
    expect(r.body.webSessions).toBe(2);
    expect(await s.state.ctx.prisma.webSession.count({ where: { userId: r.body.user.id } })).toBe(0);
    expect((await s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${u.keyKey.key}` })).status).toBe(401);
    const events = (await s.api('GET', '/api/v1/audit?action=user.offboard&target=user:otto')).body.items;
    expect(events).toHaveLength(1);
    expect(events[0].detail).toMatchObject({ webSessions: 2, authKeys: [{ prefix: authKey.prefix }], apiKeys: [{ prefix: u.uiKey.prefix }, { prefix: u.keyKey.prefix }] });
  });

  it('a key whose owner is suspended is refused even if its row was not revoked', async () => {
    const u = await userWithKeys('rae');
    // As if some other path had cleared the revocation: the owner's status still decides.
    await s.state.users.suspend({ type: 'system', origin: 'system' }, 'rae');
    await s.state.ctx.prisma.apiKey.update({ where: { id: u.uiKey.id }, data: { revokedAt: null } });
    const refused = await s.api('GET', '/api/v1/users', undefined, { authorization: `Bearer ${u.uiKey.key}` });
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toContain('rae, who is suspended');
  });
});

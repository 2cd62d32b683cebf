/**
 * The groups an OIDC sign-in carries (the configured groups claim) are policy groups
 * `group:<name>`: a rule naming one follows the user's latest sign-in, for real agents on both
 * backends; a sign-in with unchanged groups records no policy change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { Browser } from '../support/browser.js';
import { TestOidcProvider } from '../support/oidc-provider.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const GROUPS_CLAIM = 'groups';

describe.each(BACKENDS)('OIDC groups in policy on %s', (backend) => {
  let idp: TestOidcProvider;
  let s: TestServer;
  beforeAll(async () => {
    idp = await TestOidcProvider.start();
    s = await startServer(backend, {
      oidc: {
        issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret,
        redirectUrl: 'REPLACED', scopes: ['openid', 'email', 'profile'], groupsClaim: GROUPS_CLAIM,
        allowedDomains: [], allowedUsers: [], allowedGroups: [], adminGroups: [],
      },
    });
    s.oidc!.settings.redirectUrl = `${s.url}/auth/oidc/callback`;
  });
  afterAll(async () => {
    await s?.close();
    await idp?.close();
  });

  /** One full code-flow sign-in as the provider's current user; returns the Weft user name. */
  async function signIn(groups: string[]): Promise<string> {
    idp.user = { sub: 'sub-grace', email: 'grace@example.com', email_verified: true, name: 'Grace Hopper', preferred_username: 'grace', [GROUPS_CLAIM]: groups };
    const b = new Browser(s.url);
    const hops = await b.navigate('/auth/oidc/start?next=%2Fauth%2Flogin');
    const callback = hops.find((h) => h.url.includes('/auth/oidc/callback'))!;
    expect(callback.status, callback.body).toBe(303);
    return JSON.parse((await b.get('/auth/session')).body).user.name;
  }
  /**
   * The policy changes this replica's write path emitted, checked against the outbox on
   * Postgres (where other replicas follow it; the embedded database has no outbox to follow).
   */
  let emitted = 0;
  beforeAll(() => {
    const emit = s.state.ctx.emit;
    s.state.ctx.emit = (change) => {
      if (change.kind === 'policy-changed') emitted++;
      emit(change);
    };
  });
  let outboxBase = 0;
  beforeAll(async () => {
    if (backend === 'postgres') outboxBase = await recorded();
  });
  const recorded = () => s.state.ctx.prisma.outboxChange.count({ where: { payload: { path: ['kind'], equals: 'policy-changed' } } });
  const policyChanges = async () => {
    if (backend === 'postgres') expect(await recorded() - outboxBase, 'every policy change emitted was recorded in the outbox').toBe(emitted);
    return emitted;
  };

  it('a rule naming group:eng applies to a user whose latest sign-in carried eng, and stops when a sign-in drops it', async () => {
    const agents: SimAgent[] = [];
    const join = async (user: string, host: string) => {
      const key = (await s.api('POST', '/api/v1/authkeys', { user })).body.key;
      const agent = new SimAgent(s.url, host);
      await agent.register(key);
      await agent.connect();
      agents.push(agent);
      return agent;
    };
    try {
      const refused = await s.api('PUT', '/api/v1/policy', { text: JSON.stringify({ acls: [{ action: 'accept', src: ['group:eng'], dst: ['srv@:*'] }] }) }, { 'if-match': '"0"' });
      expect(refused.status, 'before anyone signed in with eng, group:eng is not defined').toBe(422);

      const before = await policyChanges();
      const name = await signIn(['eng', 'Platform Team']);
      expect(name).toBe('grace');
      expect(await policyChanges(), 'a first sign-in with groups records a policy change').toBe(before + 1);
      expect(await s.state.policy.directoryGroups()).toEqual(new Map([['group:Platform-Team', ['grace@']], ['group:eng', ['grace@']]]));

      expect((await s.api('POST', '/api/v1/users', { name: 'srv' })).status).toBe(201);
      expect((await s.api('POST', '/api/v1/users', { name: 'other' })).status).toBe(201);
      const set = await s.api('PUT', '/api/v1/policy', { text: JSON.stringify({ acls: [{ action: 'accept', src: ['group:eng'], dst: ['srv@:*'] }] }) }, { 'if-match': '"0"' });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      const [dev, other, srv] = [await join('grace', 'grace-laptop'), await join('other', 'other-laptop'), await join('srv', 'srv-host')];
      const [idDev, idOther] = [dev.self!.id, other.self!.id];
      await srv.waitFor(() => srv.peers.has(idDev) && !srv.peers.has(idOther), 10_000, 'the server sees the eng member only');
      await dev.waitFor(() => dev.peers.has(srv.self!.id), 10_000, 'the eng member sees the server');

      // The same groups again (in another order): nothing to recompute.
      const same = await policyChanges();
      await signIn(['Platform Team', 'eng']);
      expect(await policyChanges(), 'a sign-in with unchanged groups records no policy change').toBe(same);

      await signIn(['Platform Team']);
      expect(await policyChanges()).toBe(same + 1);
      await srv.waitFor(() => !srv.peers.has(idDev), 10_000, 'the server drops the user whose sign-in no longer carries eng');
      await dev.waitFor(() => !dev.peers.has(srv.self!.id), 10_000, 'the former member loses the server');
      expect((await s.state.policy.directoryGroups()).has('group:eng')).toBe(false);

      await signIn(['eng']);
      await srv.waitFor(() => srv.peers.has(idDev), 10_000, 'eng again at the next sign-in: seen again');
      const events = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'user.update', target: 'user:grace' }, orderBy: { id: 'asc' } });
      expect(events.map((e) => (e.after as { groups: string[] }).groups)).toEqual([['Platform Team'], ['eng']]);
    } finally {
      for (const agent of agents) agent.close();
    }
  });
});

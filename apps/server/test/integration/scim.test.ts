/**
 * SCIM 2.0 at /scim/v2 over real HTTP against a real server: the token's scope in both
 * directions, discovery, users and groups, list filters and paging, and the requests the common
 * provisioning clients send, each named after the client whose habit it is (Entra ID, Okta).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe.each(BACKENDS)('SCIM 2.0 on %s', (backend) => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startServer(backend);
    const made = await s.api('POST', '/api/v1/apikeys', { scopes: ['scim'], description: 'identity provider' });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    token = made.body.key;
  });
  afterAll(async () => s?.close());

  /** A SCIM request as a provisioning client sends it; `auth` replaces the SCIM token. */
  async function scim(method: string, path: string, body?: unknown, auth?: string | null, contentType = 'application/scim+json') {
    const headers: Record<string, string> = { accept: 'application/scim+json' };
    const bearer = auth === undefined ? token : auth;
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers['content-type'] = contentType;
    const res = await fetch(`${s.url}/scim/v2${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }
  const expectScimError = (r: { status: number; type: string | null; body: any }, status: number, scimType?: string) => {
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    expect(r.type).toMatch(/^application\/scim\+json/);
    expect(r.body.schemas).toEqual([ERROR_SCHEMA]);
    expect(r.body.status).toBe(String(status));
    if (scimType) expect(r.body.scimType).toBe(scimType);
    expect(typeof r.body.detail).toBe('string');
  };
  const newUser = async (userName: string, extra: Record<string, unknown> = {}) => {
    const r = await scim('POST', '/Users', { schemas: [USER], userName, active: true, ...extra });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as { id: string; userName: string; [k: string]: unknown };
  };
  const auditCount = () => s.state.ctx.prisma.auditEvent.count();

  describe('authorisation', () => {
    it('no token is 401 in the SCIM error schema with WWW-Authenticate', async () => {
      const r = await scim('GET', '/Users', undefined, null);
      expectScimError(r, 401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    });

    it('an admin API key cannot do SCIM (403), nor a read key', async () => {
      for (const key of [s.adminKey, s.readKey]) {
        const r = await scim('GET', '/Users', undefined, key);
        expectScimError(r, 403);
        expect(r.body.detail).toContain('only a SCIM token');
      }
      const post = await scim('POST', '/Users', { schemas: [USER], userName: 'by-admin-key' }, s.adminKey);
      expectScimError(post, 403);
      expect((await s.api('GET', '/api/v1/users/by-admin-key')).status).toBe(404);
    });

    it('a SCIM token can do SCIM only: every /api/v1 route it tries is 403', async () => {
      for (const [method, path, body] of [['GET', '/api/v1/users'], ['GET', '/api/v1/nodes'], ['POST', '/api/v1/users', { name: 'by-scim-token' }], ['GET', '/api/v1/apikeys'], ['POST', '/api/v1/apikeys', { scopes: ['admin'] }]] as const) {
        const r = await s.api(method, path, body, { authorization: `Bearer ${token}` });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.type).toMatch(/problem\+json/);
        expect(r.body.detail).toContain('/scim/v2');
      }
      expect((await s.api('GET', '/api/v1/users/by-scim-token')).status).toBe(404);
    });

    it('the scim scope cannot be combined with another, and a revoked SCIM token is refused', async () => {
      const mixed = await s.api('POST', '/api/v1/apikeys', { scopes: ['scim', 'admin'] });
      expect(mixed.status).toBe(400);
      expect(JSON.stringify(mixed.body)).toContain('scim scope cannot be combined');
      const other = (await s.api('POST', '/api/v1/apikeys', { scopes: ['scim'] })).body;
      expect((await scim('GET', '/Users', undefined, other.key)).status).toBe(200);
      expect((await s.api('DELETE', `/api/v1/apikeys/${other.id}`)).status).toBe(200);
      expectScimError(await scim('GET', '/Users', undefined, other.key), 401);
    });
  });

  it('discovery: ServiceProviderConfig, Schemas and ResourceTypes', async () => {
    const spc = await scim('GET', '/ServiceProviderConfig');
    expect(spc.status).toBe(200);
    expect(spc.type).toMatch(/^application\/scim\+json/);
    expect(spc.body).toMatchObject({ patch: { supported: true }, filter: { supported: true }, bulk: { supported: false }, sort: { supported: false } });
    const schemas = await scim('GET', '/Schemas');
    expect(schemas.body.Resources.map((r: { id: string }) => r.id)).toEqual(expect.arrayContaining([USER, GROUP]));
    expect((await scim('GET', `/Schemas/${USER}`)).body.attributes.map((a: { name: string }) => a.name)).toContain('userName');
    const types = await scim('GET', '/ResourceTypes');
    expect(types.body.Resources.map((r: { endpoint: string }) => r.endpoint)).toEqual(['/Users', '/Groups']);
    expect((await scim('GET', '/ResourceTypes/Group')).body.schema).toBe(GROUP);
    expectScimError(await scim('GET', '/Nope'), 404);
    // Not in the REST API's OpenAPI document, whose 4xx are problem+json.
    const openapi = (await (await fetch(`${s.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths).filter((p) => p.startsWith('/scim'))).toEqual([]);
    expect(Object.keys(openapi.paths)).toContain('/api/v1/users');
  });

  describe('connection tests', () => {
    it('Okta and Entra ID fetch a random user that does not exist: 404 in the SCIM error schema', async () => {
      expectScimError(await scim('GET', `/Users/${randomUUID()}`), 404);
      expectScimError(await scim('GET', '/Users/999999'), 404);
      expectScimError(await scim('GET', `/Groups/${randomUUID()}`), 404);
    });

    it('Entra ID filters on a random userName: an empty list', async () => {
      const r = await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${randomUUID()}"`)}`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, Resources: [] });
    });
  });

  describe('users', () => {
    it('create (Okta body): 201 with Location, the user exists in Weft, audited with origin scim', async () => {
      const r = await scim('POST', '/Users', {
        schemas: [USER],
        userName: 'Ada.Lovelace@example.com',
        name: { givenName: 'Ada', familyName: 'Lovelace' },
        emails: [{ primary: true, value: 'ada@example.com', type: 'work' }],
        displayName: 'Ada Lovelace',
        locale: 'en-US',
        externalId: '00u1ada',
        groups: [],
        active: true,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.headers.get('location')).toBe(`http://127.0.0.1/scim/v2/Users/${r.body.id}`);
      expect(r.body).toMatchObject({ schemas: [USER], userName: 'ada.lovelace@example.com', active: true, externalId: '00u1ada', name: { givenName: 'Ada', familyName: 'Lovelace' }, locale: 'en-US', meta: { resourceType: 'User' } });
      const weft = await s.api('GET', '/api/v1/users/ada.lovelace@example.com');
      expect(weft.body).toMatchObject({ id: Number(r.body.id), displayName: 'Ada Lovelace', email: 'ada@example.com', status: 'active' });
      expect((await scim('GET', `/Users/${r.body.id}`)).body).toEqual(r.body);
      const [e] = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'user.create', target: 'user:ada.lovelace@example.com' } });
      expect(e).toMatchObject({ origin: 'scim', actorType: 'scim-token' });
      expect(e!.actor).toMatch(/^scim-token:weft-api-/);
    });

    it('a duplicate userName, in another case, is 409 uniqueness and creates nothing', async () => {
      await newUser('dup.user');
      const before = await s.state.ctx.prisma.user.count();
      const r = await scim('POST', '/Users', { schemas: [USER], userName: 'DUP.User' });
      expectScimError(r, 409, 'uniqueness');
      expect(await s.state.ctx.prisma.user.count()).toBe(before);
    });

    it('list filters: userName (any case), externalId, displayName, and "and"; ops and attribute names in any case', async () => {
      const a = await newUser('filter.a', { externalId: 'ext-a', displayName: 'Filter Person' });
      const b = await newUser('filter.b', { externalId: 'ext-b', displayName: 'Filter Person' });
      const list = async (filter: string) => {
        const r = await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        return r.body.Resources.map((u: { id: string }) => u.id);
      };
      expect(await list('userName eq "FILTER.A"')).toEqual([a.id]);
      expect(await list('UserName EQ "filter.b"')).toEqual([b.id]);
      expect(await list('externalId eq "ext-b"')).toEqual([b.id]);
      expect(await list('externalId eq "EXT-B"')).toEqual([]);
      expect(await list('displayName eq "filter person"')).toEqual([a.id, b.id]);
      expect(await list('displayName eq "Filter Person" and externalId eq "ext-a"')).toEqual([a.id]);
      expect(await list(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "filter.a"`)).toEqual([a.id]);
    });

    it('bad filters are 400 invalidFilter naming what is wrong', async () => {
      const cases: [string, string][] = [
        ['userName eq', 'expected a value'],
        ['userName eq "unterminated', 'not closed'],
        ['title eq "x"', 'not on "title"'],
        ['userName eq "a" or userName eq "b"', '"or" is not served'],
        ['userName co "a"', '"co" is not served'],
        ['userName eq "a" junk', 'unexpected'],
        ['(userName eq "a"', 'expected ")"'],
      ];
      for (const [filter, says] of cases) {
        const r = await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`);
        expectScimError(r, 400, 'invalidFilter');
        expect(r.body.detail, filter).toContain(says);
      }
      expectScimError(await scim('GET', '/Users?count=ten'), 400, 'invalidValue');
    });

    it('paging by startIndex and count is stable: pages join to the whole list in id order', async () => {
      for (let i = 0; i < 5; i++) await newUser(`page.${i}`);
      const all = await scim('GET', '/Users?count=1000');
      const ids = all.body.Resources.map((u: { id: string }) => Number(u.id));
      expect(ids).toEqual([...ids].sort((x: number, y: number) => x - y));
      expect(all.body.totalResults).toBe(ids.length);
      const paged: number[] = [];
      for (let start = 1; start <= ids.length; start += 2) {
        const p = await scim('GET', `/Users?startIndex=${start}&count=2`);
        expect(p.body).toMatchObject({ startIndex: start, totalResults: ids.length });
        expect(p.body.itemsPerPage).toBe(p.body.Resources.length);
        paged.push(...p.body.Resources.map((u: { id: string }) => Number(u.id)));
      }
      expect(paged).toEqual(ids);
      const counted = await scim('GET', '/Users?count=0');
      expect(counted.body).toMatchObject({ totalResults: ids.length, itemsPerPage: 0, Resources: [] });
      expect((await scim('GET', '/Users?startIndex=0&count=1')).body.Resources[0].id).toBe(String(ids[0]));
      const projected = await scim('GET', '/Groups?excludedAttributes=members');
      expect(projected.status).toBe(200);
    });

    it('Entra ID: "Replace" active "False" suspends the user (devices kept, history kept), "True" resumes', async () => {
      const u = await newUser('entra.active');
      const off = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
      expect(off.status, JSON.stringify(off.body)).toBe(200);
      expect(off.body.active).toBe(false);
      expect((await s.api('GET', '/api/v1/users/entra.active')).body.status).toBe('suspended');
      const on = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] });
      expect(on.body.active).toBe(true);
      expect((await s.api('GET', '/api/v1/users/entra.active')).body.status).toBe('active');
      const events = await s.state.ctx.prisma.auditEvent.findMany({ where: { target: 'user:entra.active', action: { in: ['user.suspend', 'user.resume'] } }, orderBy: { id: 'asc' } });
      expect(events.map((e) => [e.action, e.origin])).toEqual([['user.suspend', 'scim'], ['user.resume', 'scim']]);
    });

    it('Okta: replace with no path and an object value { active: false } suspends', async () => {
      const u = await newUser('okta.active');
      const r = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect((await s.api('GET', '/api/v1/users/okta.active')).body.status).toBe('suspended');
    });

    it('Entra ID: dotted keys in a value object (name.givenName) and filtered paths (emails[type eq "work"].value)', async () => {
      const u = await newUser('entra.attrs');
      const r = await scim('PATCH', `/Users/${u.id}`, {
        schemas: [PATCH],
        Operations: [
          { op: 'Add', value: { 'name.givenName': 'Grace', 'name.familyName': 'Hopper', displayName: 'Grace Hopper', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department': 'Navy' } },
          { op: 'Add', path: 'emails[type eq "work"].value', value: 'grace@example.com' },
          { op: 'Replace', path: 'externalId', value: 'entra-oid-1' },
        ],
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ name: { givenName: 'Grace', familyName: 'Hopper' }, displayName: 'Grace Hopper', externalId: 'entra-oid-1', emails: [{ type: 'work', value: 'grace@example.com' }] });
      expect(r.body['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User']).toEqual({ department: 'Navy' });
      expect(r.body.schemas).toContain('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User');
      expect((await s.api('GET', '/api/v1/users/entra.attrs')).body).toMatchObject({ displayName: 'Grace Hopper', email: 'grace@example.com' });
      // The work email changed in place, not added twice; then removed by a filtered path.
      const again = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'emails[type eq "work"].value', value: 'hopper@example.com' }] });
      expect(again.body.emails).toEqual([{ type: 'work', value: 'hopper@example.com' }]);
      const removed = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'emails[type eq "work"]' }, { op: 'Remove', path: 'name.familyName' }] });
      expect(removed.body.emails).toEqual([]);
      expect(removed.body.name).toEqual({ givenName: 'Grace' });
      expect((await s.api('GET', '/api/v1/users/entra.attrs')).body.email).toBeNull();
      const [update] = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'user.update', target: 'user:entra.attrs' }, orderBy: { id: 'asc' }, take: 1 });
      expect(update).toMatchObject({ origin: 'scim', before: { displayName: null }, after: { displayName: 'Grace Hopper' } });
    });

    it('PUT replaces the user; a PUT that changes userName is 400 mutability and changes nothing', async () => {
      const u = await newUser('put.user', { displayName: 'Before' });
      const r = await scim('PUT', `/Users/${u.id}`, { schemas: [USER], userName: 'PUT.user', displayName: 'After', active: 'False', title: 'Engineer' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ userName: 'put.user', displayName: 'After', active: false, title: 'Engineer' });
      const events = await auditCount();
      const renamed = await scim('PUT', `/Users/${u.id}`, { schemas: [USER], userName: 'someone.else', displayName: 'Changed' });
      expectScimError(renamed, 400, 'mutability');
      expect(await auditCount()).toBe(events);
      expect((await scim('GET', `/Users/${u.id}`)).body.displayName).toBe('After');
      // A PUT without "active" leaves the user suspended: only active true resumes.
      const noActive = await scim('PUT', `/Users/${u.id}`, { schemas: [USER], userName: 'put.user', displayName: 'Again' });
      expect(noActive.body).toMatchObject({ displayName: 'Again', active: false });
      expect(noActive.body.title).toBeUndefined();
    });

    it('DELETE offboards: 204, then 404; Weft keeps the user as offboarded with the event from scim', async () => {
      const u = await newUser('gone.user');
      const key = (await s.api('POST', '/api/v1/authkeys', { user: 'gone.user', reusable: true })).body;
      const group = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Leavers', members: [{ value: u.id }] })).body;
      expect(group.members).toHaveLength(1);
      const r = await fetch(`${s.url}/scim/v2/Users/${u.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(204);
      expect(await r.text()).toBe('');
      expectScimError(await scim('GET', `/Users/${u.id}`), 404);
      expectScimError(await scim('DELETE', `/Users/${u.id}`), 404);
      expect((await s.api('GET', '/api/v1/users/gone.user')).body.status).toBe('offboarded');
      const [e] = await s.state.ctx.prisma.auditEvent.findMany({ where: { action: 'user.offboard', target: 'user:gone.user' } });
      expect(e).toMatchObject({ origin: 'scim', actorType: 'scim-token', detail: { authKeys: [{ prefix: key.prefix }] } });
      expect((await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "gone.user"')}`)).body.totalResults).toBe(0);
      // Gone from the groups SCIM shows, too.
      expect((await scim('GET', `/Groups/${group.id}`)).body.members).toEqual([]);
    });

    it('bad input is 400 naming what is wrong (invalidSyntax / invalidValue / invalidPath) and changes nothing', async () => {
      const u = await newUser('bad.input', { displayName: 'Unchanged' });
      const events = await auditCount();
      const cases: [unknown, string, string][] = [
        ['{"schemas": [', 'invalidSyntax', 'not valid JSON'],
        [{ schemas: [PATCH], Operations: [{ op: 'Frobnicate', path: 'active', value: true }] }, 'invalidSyntax', 'Frobnicate'],
        [{ schemas: [PATCH], Operations: [] }, 'invalidSyntax', 'Operations'],
        [{ schemas: [PATCH], Operations: [{ op: 'Replace', path: 'displayName', value: 'Changed' }, { op: 'Replace', path: 'active', value: 'maybe' }] }, 'invalidValue', '"active" must be true or false'],
        [{ schemas: [PATCH], Operations: [{ op: 'Replace', path: 'emails[type eq "work"', value: 'x' }] }, 'invalidPath', 'emails[type eq'],
        [{ schemas: [PATCH], Operations: [{ op: 'Replace', path: 'emails[type eq "work"].value', value: 'not-an-address' }] }, 'invalidValue', 'not an email address'],
        [{ schemas: [PATCH], Operations: [{ op: 'Add', value: 'just a string' }] }, 'invalidValue', 'object value'],
      ];
      for (const [body, scimType, says] of cases) {
        const r = await scim('PATCH', `/Users/${u.id}`, body);
        expectScimError(r, 400, scimType);
        expect(r.body.detail, JSON.stringify(body)).toContain(says);
      }
      const badName = await scim('POST', '/Users', { schemas: [USER], userName: 'has space' });
      expectScimError(badName, 400, 'invalidValue');
      expect(badName.body.detail).toContain('userName');
      expect(await auditCount()).toBe(events);
      expect((await scim('GET', `/Users/${u.id}`)).body).toMatchObject({ displayName: 'Unchanged', active: true });
    });
  });

  describe('groups', () => {
    it('create, Entra ID member add and "Remove" with a value array, Okta members[value eq "..."] removal, rename, delete', async () => {
      const [a, b, c] = [await newUser('grp.a'), await newUser('grp.b'), await newUser('grp.c')];
      const made = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Engineering', externalId: 'g-1', members: [{ value: a.id }] });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      const id = made.body.id as string;
      expect(made.body.members).toEqual([{ value: a.id, display: 'grp.a', $ref: `http://127.0.0.1/scim/v2/Users/${a.id}` }]);
      const members = async () => (await scim('GET', `/Groups/${id}`)).body.members.map((m: { value: string }) => m.value);

      // Entra ID: add with a value array, op capitalised.
      expect((await scim('PATCH', `/Groups/${id}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: b.id }, { value: c.id }] }] })).status).toBe(200);
      expect(await members()).toEqual([a.id, b.id, c.id]);
      expect((await scim('GET', `/Users/${b.id}`)).body.groups).toEqual([{ value: id, display: 'Engineering', $ref: `http://127.0.0.1/scim/v2/Groups/${id}` }]);
      // Entra ID: "Remove" of members with a value array.
      expect((await scim('PATCH', `/Groups/${id}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'members', value: [{ value: b.id }] }] })).status).toBe(200);
      expect(await members()).toEqual([a.id, c.id]);
      // Okta: a filtered path.
      expect((await scim('PATCH', `/Groups/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${a.id}"]` }] })).status).toBe(200);
      expect(await members()).toEqual([c.id]);
      // Okta: replace with no path renames and sets the members.
      const renamed = await scim('PATCH', `/Groups/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id, displayName: 'Platform Eng', members: [{ value: a.id }] } }] });
      expect(renamed.body).toMatchObject({ displayName: 'Platform Eng', members: [{ value: a.id }] });
      expect((await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "platform eng"')}`)).body.Resources.map((g: { id: string }) => g.id)).toEqual([id]);
      const excluded = await scim('GET', `/Groups/${id}?excludedAttributes=members`);
      expect(excluded.body.members).toBeUndefined();
      expect(excluded.body.displayName).toBe('Platform Eng');

      // PUT replaces the group: name, externalId and the whole member list.
      const put = await scim('PUT', `/Groups/${id}`, { schemas: [GROUP], displayName: 'Platform Eng', externalId: 'g-2', members: [{ value: b.id }, { value: c.id }] });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      expect(put.body).toMatchObject({ externalId: 'g-2', members: [{ value: b.id }, { value: c.id }] });
      expect((await scim('GET', `/Groups?filter=${encodeURIComponent('externalId eq "g-2"')}`)).body.Resources.map((g: { id: string }) => g.id)).toEqual([id]);

      const events = (await s.state.ctx.prisma.auditEvent.findMany({ where: { action: { startsWith: 'group.' }, origin: 'scim' }, orderBy: { id: 'asc' } })).filter((e) => (e.detail as { id?: number }).id === Number(id));
      expect(events.map((e) => e.action)).toEqual(['group.create', 'group.update', 'group.update', 'group.update', 'group.update', 'group.update']);
      expect(events[2]!.detail).toMatchObject({ removed: ['grp.b'] });

      const del = await fetch(`${s.url}/scim/v2/Groups/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      expect(del.status).toBe(204);
      expectScimError(await scim('GET', `/Groups/${id}`), 404);
    });

    it('a duplicate displayName (any case) is 409 uniqueness; an unknown member is 400 invalidValue; neither changes anything', async () => {
      const u = await newUser('grp.only');
      const g = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Ops' })).body;
      const events = await auditCount();
      expectScimError(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'OPS' }), 409, 'uniqueness');
      const bad = await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: u.id }, { value: '999999' }] }] });
      expectScimError(bad, 400, 'invalidValue');
      expect(bad.body.detail).toContain('999999');
      const notId = await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: 'not-an-id' }] }] });
      expectScimError(notId, 400, 'invalidValue');
      expect(await auditCount()).toBe(events);
      expect((await scim('GET', `/Groups/${g.id}`)).body.members).toEqual([]);
    });
  });

  it('group membership feeds the access policy: group:<displayName> in a rule follows SCIM adds and removals; a deleted group is empty', async () => {
    const [a, b, srv] = [await newUser('pol.a'), await newUser('pol.b'), await newUser('pol.srv')];
    const agents: SimAgent[] = [];
    const join = async (user: string) => {
      const key = (await s.api('POST', '/api/v1/authkeys', { user })).body.key;
      const agent = new SimAgent(s.url, `${user.replace('.', '-')}-host`);
      await agent.register(key);
      await agent.connect();
      agents.push(agent);
      return agent;
    };
    try {
      const [devA, devB, devSrv] = [await join('pol.a'), await join('pol.b'), await join('pol.srv')];
      const g = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Policy Eng', members: [{ value: a.id }] })).body;
      const strict = await s.api('PUT', '/api/v1/policy', { text: JSON.stringify({ acls: [{ action: 'accept', src: ['group:No-Such'], dst: ['pol.srv@:*'] }] }) }, { 'if-match': '"0"' });
      expect(strict.status, 'a policy naming a group nobody defines is still refused').toBe(422);
      const set = await s.api('PUT', '/api/v1/policy', { text: JSON.stringify({ acls: [{ action: 'accept', src: ['group:Policy-Eng'], dst: ['pol.srv@:*'] }] }) }, { 'if-match': '"0"' });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      const [idA, idB] = [devA.self!.id, devB.self!.id];
      await devSrv.waitFor(() => devSrv.peers.has(idA) && !devSrv.peers.has(idB), 10_000, 'server sees the group member only');

      await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: b.id }] }] });
      await devSrv.waitFor(() => devSrv.peers.has(idB), 10_000, 'server sees the added member');
      await devB.waitFor(() => devB.peers.has(devSrv.self!.id), 10_000, 'the added member sees the server');

      await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'members', value: [{ value: a.id }] }] });
      await devSrv.waitFor(() => !devSrv.peers.has(idA) && devSrv.peers.has(idB), 10_000, 'server drops the removed member');

      // Deleting the group the policy names leaves the policy in force with an empty group: fail closed.
      expect((await fetch(`${s.url}/scim/v2/Groups/${g.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
      await devSrv.waitFor(() => !devSrv.peers.has(idB), 10_000, 'server drops the members of the deleted group');
      expect(srv.userName).toBe('pol.srv');
    } finally {
      for (const agent of agents) agent.close();
    }
  });
});

/**
 * SCIM 2.0 (RFC 7643 / 7644) at `/scim/v2`: Users and Groups (create, get, list with `filter`,
 * `startIndex` / `count` paging, PUT, PATCH, DELETE) and the discovery endpoints
 * (`ServiceProviderConfig`, `Schemas`, `ResourceTypes`). Authorised by a SCIM token only (an API
 * key whose one scope is `scim`; `weft-server scim token create`): an admin API key is refused
 * here, and a SCIM token is refused everywhere else. Errors use SCIM's error schema, not
 * problem+json. State changes go through `state.scim` (state/scim.ts), audited with origin `scim`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseBusy } from '../db-busy.js';
import { ApiError, Errors } from '../errors.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { Actor, State } from '../state/index.js';
import type { ScimGroupRow, ScimUserRow } from '../state/scim.js';
import { invalidSyntax, invalidValue, notFound, ScimError, scimErrorBody, type ScimType } from './errors.js';
import { listConstraints } from './filter.js';
import { applyPatch, patchOperations, type Doc } from './patch.js';
import {
  ENTERPRISE_USER_SCHEMA, GROUP_PATCH_SCHEMA, GROUP_SCHEMA, groupFields, LIST_SCHEMA, USER_PATCH_SCHEMA, USER_SCHEMA, userFields,
} from './resources.js';
import { discovery } from './discovery.js';
import { SCIM_BODY_LIMIT_BYTES, SCIM_DEFAULT_PAGE, SCIM_MAX_PAGE } from '../tunables.js';

export const SCIM_PREFIX = '/scim/v2';
export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

const actors = new WeakMap<FastifyRequest, Actor>();

export async function scimRoutes(app: FastifyInstance, state: State, limits: AbuseLimits): Promise<void> {
  await app.register(
    async (scim) => {
      // Not in /api/v1/openapi.json: SCIM describes itself (/ServiceProviderConfig, /Schemas) and
      // answers in its own error schema, not the problem+json the OpenAPI document promises.
      scim.addHook('onRoute', (route) => {
        route.schema = { ...(route.schema ?? {}), hide: true } as typeof route.schema;
      });
      scim.removeAllContentTypeParsers();
      scim.addContentTypeParser(['application/json', 'application/scim+json'], { parseAs: 'string', bodyLimit: SCIM_BODY_LIMIT_BYTES }, (_req, body, done) => {
        if (body === '') return done(null, undefined);
        try {
          done(null, JSON.parse(body as string));
        } catch (err) {
          done(invalidSyntax(`the body is not valid JSON: ${(err as Error).message}`), undefined);
        }
      });
      scim.setErrorHandler((err: FastifyError, req, reply) => sendError(reply, req, err));
      scim.setNotFoundHandler((req, reply) => send(reply, 404, scimErrorBody(404, `no SCIM endpoint ${req.method} ${req.url.split('?')[0]}`)));
      scim.addHook('onRequest', async (req) => {
        actors.set(req, await authenticate(req, state, limits));
      });

      const base = () => `${state.ctx.serverUrl.replace(/\/$/, '')}${SCIM_PREFIX}`;
      const actorOf = (req: FastifyRequest) => actors.get(req)!;

      // ---- discovery ----
      const disco = discovery(base);
      scim.get('/ServiceProviderConfig', async (_req, reply) => send(reply, 200, disco.serviceProviderConfig));
      scim.get('/ResourceTypes', async (_req, reply) => send(reply, 200, listOf(disco.resourceTypes)));
      scim.get<{ Params: { id: string } }>('/ResourceTypes/:id', async (req, reply) => {
        const r = disco.resourceTypes.find((t) => t.id === req.params.id);
        if (!r) throw notFound(`no resource type "${req.params.id}" (there are User and Group)`);
        return send(reply, 200, r);
      });
      scim.get('/Schemas', async (_req, reply) => send(reply, 200, listOf(disco.schemas)));
      scim.get<{ Params: { id: string } }>('/Schemas/:id', async (req, reply) => {
        const s = disco.schemas.find((x) => x.id === req.params.id);
        if (!s) throw notFound(`no schema "${req.params.id}"`);
        return send(reply, 200, s);
      });

      // ---- users ----
      scim.get<{ Querystring: Record<string, string> }>('/Users', async (req, reply) => {
        const q = listQuery(req.query, ['userName', 'externalId', 'displayName', 'id'], 'Users');
        const page = await state.scim.listUsers(q.where, q.startIndex, q.count);
        return send(reply, 200, listOf(page.rows.map((u) => project(userResource(u, base()), req.query)), page.total, q.startIndex));
      });
      scim.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/Users/:id', async (req, reply) =>
        send(reply, 200, project(userResource(await state.scim.getUser(userId(req.params.id)), base()), req.query)),
      );
      scim.post('/Users', async (req, reply) => {
        const u = userResource(await state.scim.createUser(actorOf(req), userFields(req.body)), base());
        return send(reply.header('location', (u.meta as Doc).location as string), 201, u);
      });
      scim.put<{ Params: { id: string } }>('/Users/:id', async (req, reply) => {
        const id = userId(req.params.id);
        return send(reply, 200, userResource(await state.scim.replaceUser(actorOf(req), id, userFields(req.body)), base()));
      });
      scim.patch<{ Params: { id: string } }>('/Users/:id', async (req, reply) => {
        const id = userId(req.params.id);
        const ops = patchOperations(req.body);
        const current = patchable(userResource(await state.scim.getUser(id), base()));
        const next = userFields(applyPatch(current, ops, USER_PATCH_SCHEMA));
        return send(reply, 200, userResource(await state.scim.replaceUser(actorOf(req), id, next), base()));
      });
      scim.delete<{ Params: { id: string } }>('/Users/:id', async (req, reply) => {
        await state.scim.deleteUser(actorOf(req), userId(req.params.id));
        return reply.code(204).send();
      });

      // ---- groups ----
      scim.get<{ Querystring: Record<string, string> }>('/Groups', async (req, reply) => {
        const q = listQuery(req.query, ['displayName', 'externalId', 'id'], 'Groups');
        const page = await state.scim.listGroups(q.where, q.startIndex, q.count);
        return send(reply, 200, listOf(page.rows.map((g) => project(groupResource(g, base()), req.query)), page.total, q.startIndex));
      });
      scim.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/Groups/:id', async (req, reply) =>
        send(reply, 200, project(groupResource(await state.scim.getGroup(groupId(req.params.id)), base()), req.query)),
      );
      scim.post('/Groups', async (req, reply) => {
        const g = groupResource(await state.scim.createGroup(actorOf(req), groupFields(req.body)), base());
        return send(reply.header('location', (g.meta as Doc).location as string), 201, g);
      });
      scim.put<{ Params: { id: string } }>('/Groups/:id', async (req, reply) => {
        const id = groupId(req.params.id);
        return send(reply, 200, groupResource(await state.scim.replaceGroup(actorOf(req), id, groupFields(req.body)), base()));
      });
      scim.patch<{ Params: { id: string } }>('/Groups/:id', async (req, reply) => {
        const id = groupId(req.params.id);
        const ops = patchOperations(req.body);
        const current = patchable(groupResource(await state.scim.getGroup(id), base()));
        const next = groupFields(applyPatch(current, ops, GROUP_PATCH_SCHEMA));
        return send(reply, 200, groupResource(await state.scim.replaceGroup(actorOf(req), id, next), base()));
      });
      scim.delete<{ Params: { id: string } }>('/Groups/:id', async (req, reply) => {
        await state.scim.deleteGroup(actorOf(req), groupId(req.params.id));
        return reply.code(204).send();
      });
    },
    { prefix: SCIM_PREFIX },
  );
}

/** The caller, if it presents a SCIM token; every other credential is refused (401 / 403). */
async function authenticate(req: FastifyRequest, state: State, limits: AbuseLimits): Promise<Actor> {
  const key = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!key) throw new ScimError(401, 'send a SCIM token as "Authorization: Bearer <token>"; create one with: weft-server scim token create');
  limits.checkCredentials(req.ip);
  const found = await state.apiKeys.authenticate(key);
  if ('refused' in found) {
    if (found.unknown) limits.credentialFailed(req.ip);
    throw new ScimError(401, found.refused);
  }
  if (!found.scopes.includes('scim')) {
    throw new ScimError(403, `API key ${found.prefix} has the scopes ${found.scopes.join(', ')}; /scim/v2 takes only a SCIM token (scope scim): weft-server scim token create`);
  }
  return { type: 'scim-token', id: String(found.id), name: found.prefix, origin: 'scim', ip: req.ip };
}

function send(reply: FastifyReply, status: number, body: unknown) {
  return reply.code(status).type(SCIM_CONTENT_TYPE).send(JSON.stringify(body));
}

function sendError(reply: FastifyReply, req: FastifyRequest, err: FastifyError | Error) {
  let status = 500;
  let detail = 'internal error';
  let scimType: ScimType | undefined;
  if (err instanceof ScimError) {
    ({ status, scimType } = err);
    detail = err.message;
  } else if (err instanceof ApiError) {
    status = err.def.status;
    detail = err.detail ?? err.def.title;
    if (err.def === Errors.userExists) scimType = 'uniqueness';
    if (err.headers) void reply.headers(err.headers);
  } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    status = 413;
    detail = `the body is larger than ${SCIM_BODY_LIMIT_BYTES} bytes`;
  } else if ((err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    status = 415;
    detail = 'send the body as application/scim+json or application/json';
  } else if ((err as FastifyError).code?.startsWith('FST_ERR_CTP_')) {
    status = 400;
    scimType = 'invalidSyntax';
    detail = err.message;
  } else if (isDatabaseBusy(err)) {
    status = 503;
    detail = 'the database is busy; the change was not made, try again';
    req.log.warn({ err }, 'database busy on /scim/v2; the write was rolled back');
  } else {
    req.log.error({ err }, 'unhandled error on /scim/v2');
  }
  if (status === 401) void reply.header('www-authenticate', 'Bearer realm="weft-scim"');
  return send(reply, status, scimErrorBody(status, detail, scimType));
}

/** A SCIM id in a path: Weft's row id in decimal. Anything else names nothing (404, as for an id that does not exist). */
function rowId(text: string, what: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) throw notFound(`no ${what} with id ${JSON.stringify(text)}`);
  return Number(text);
}
const userId = (t: string) => rowId(t, 'user');
const groupId = (t: string) => rowId(t, 'group');

function listQuery(query: Record<string, string>, allowed: string[], resource: string) {
  const int = (name: string, fallback: number) => {
    const raw = query[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^-?\d{1,10}$/.test(raw)) throw invalidValue(`"${name}" must be an integer, not ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  // RFC 7644 3.4.2.4: a startIndex below 1 is 1; a negative count is 0; the server may cap count.
  const startIndex = Math.max(1, int('startIndex', 1));
  const count = Math.min(SCIM_MAX_PAGE, Math.max(0, int('count', SCIM_DEFAULT_PAGE)));
  if (query.sortBy !== undefined) throw new ScimError(400, 'sorting is not supported (ServiceProviderConfig sort.supported is false); results are in id order', 'invalidValue');
  const where = query.filter === undefined || query.filter === '' ? [] : listConstraints(query.filter, allowed, resource);
  return { startIndex, count, where };
}

function listOf(resources: unknown[], total = resources.length, startIndex = 1) {
  return { schemas: [LIST_SCHEMA], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** `attributes` / `excludedAttributes` (RFC 7644 3.9), on top-level attributes; id, schemas and meta always stay. */
function project(resource: Doc, query: Record<string, string>): Doc {
  const names = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim().replace(/^urn:ietf:params:scim:schemas:core:2\.0:(User|Group):/i, '').split('.')[0]!.toLowerCase()).filter(Boolean) : []);
  const keep = names(query.attributes);
  const drop = names(query.excludedAttributes);
  if (!keep.length && !drop.length) return resource;
  const always = new Set(['id', 'schemas', 'meta']);
  return Object.fromEntries(Object.entries(resource).filter(([k]) => always.has(k) || (keep.length ? keep.includes(k.toLowerCase()) : !drop.includes(k.toLowerCase()))));
}

/** A resource as the document PATCH works on: without what the server owns. */
function patchable(resource: Doc): Doc {
  const { schemas: _s, id: _i, meta: _m, groups: _g, ...rest } = resource;
  return rest;
}

export function userResource(u: ScimUserRow, base: string): Doc {
  const data = (u.scimData ?? {}) as Doc;
  const hasEnterprise = Object.keys(data).some((k) => k.toLowerCase() === ENTERPRISE_USER_SCHEMA.toLowerCase());
  const emails = Object.keys(data).some((k) => k.toLowerCase() === 'emails') ? {} : u.email ? { emails: [{ value: u.email, primary: true }] } : {};
  return {
    schemas: hasEnterprise ? [USER_SCHEMA, ENTERPRISE_USER_SCHEMA] : [USER_SCHEMA],
    id: String(u.id),
    ...(u.scimExternalId !== null ? { externalId: u.scimExternalId } : {}),
    userName: u.name,
    ...(u.displayName !== null ? { displayName: u.displayName } : {}),
    active: u.suspendedAt === null,
    ...emails,
    ...data,
    groups: u.scimGroups.map((m) => ({ value: String(m.group.id), display: m.group.displayName, $ref: `${base}/Groups/${m.group.id}` })),
    meta: { resourceType: 'User', created: u.createdAt.toISOString(), lastModified: u.createdAt.toISOString(), location: `${base}/Users/${u.id}` },
  };
}

export function groupResource(g: ScimGroupRow, base: string): Doc {
  return {
    schemas: [GROUP_SCHEMA],
    id: String(g.id),
    ...(g.externalId !== null ? { externalId: g.externalId } : {}),
    displayName: g.displayName,
    members: g.members.map((m) => ({ value: String(m.user.id), display: m.user.name, $ref: `${base}/Users/${m.user.id}` })),
    meta: { resourceType: 'Group', created: g.createdAt.toISOString(), lastModified: g.updatedAt.toISOString(), location: `${base}/Groups/${g.id}` },
  };
}

/** `/api/v1`: users, nodes, auth keys, API keys, pending logins, audit, policy. Every route declares its schemas. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  ApiKey, ApprovePendingLogin, AuditPage, AuditQuery, AuthKey, CodeParam, CreateApiKey, CreateAuthKey, CreatedApiKey, CreatedAuthKey, CreateNode,
  CreateUser, IdParam, List, Node, NodeExpiryChange, NodePage, NodeQuery, PasswordSet, PendingLogin, Problem, PROTOCOL_VERSION, RenameNode, ServerInfo, SetNodeTags, SetPassword, TailnetSettings, TailnetSettingsPatch, User, UserName, UserOperation,
  UserRefParam,
} from '@weft/protocol';
import { z } from 'zod';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';
import { SERVER_VERSION } from '../version.js';
import { authenticate } from './auth.js';
import { policyRoutes } from './policy-routes.js';

const errors = { '4xx': Problem, '5xx': Problem } as const;

export function apiRoutes(app: FastifyInstance, state: State, limits: AbuseLimits): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = (req: FastifyRequest) => authenticate(req, state, limits, 'admin');
  const read = (req: FastifyRequest) => authenticate(req, state, limits, 'read');
  const tag = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

  // This server: lets the CLI print `weft up --server URL` with the real URL.
  r.get('/api/v1/server', { schema: { ...tag('server'), summary: 'Server URL and versions', response: { 200: ServerInfo, ...errors } } }, async (req) => {
    await read(req);
    return { serverUrl: state.ctx.serverUrl, version: SERVER_VERSION, protocolVersion: PROTOCOL_VERSION };
  });

  // Tailnet settings
  r.get('/api/v1/settings', { schema: { ...tag('settings'), summary: 'Tailnet settings (node key expiry, device approval)', response: { 200: TailnetSettings, ...errors } } }, async (req) => {
    await read(req);
    return state.settings.get();
  });
  r.patch('/api/v1/settings', {
    schema: { ...tag('settings'), summary: 'Change tailnet settings; absent fields are unchanged', body: TailnetSettingsPatch, response: { 200: TailnetSettings, ...errors } },
  }, async (req) => {
    const p = await admin(req);
    return state.settings.update(p.actor, req.body);
  });

  // Users
  r.get('/api/v1/users', { schema: { ...tag('users'), summary: 'List users', response: { 200: List(User), ...errors } } }, async (req) => {
    await read(req);
    return { items: await state.users.list() };
  });
  r.post('/api/v1/users', { schema: { ...tag('users'), summary: 'Create a user', body: CreateUser, response: { 201: User, ...errors } } }, async (req, reply) => {
    const p = await admin(req);
    return reply.code(201).send(await state.users.create(p.actor, req.body));
  });
  r.get('/api/v1/users/:user', { schema: { ...tag('users'), summary: 'Get a user by id or name', params: UserRefParam, response: { 200: User, ...errors } } }, async (req) => {
    await read(req);
    return state.users.get(req.params.user);
  });
  r.delete('/api/v1/users/:user', {
    schema: { ...tag('users'), summary: 'Offboard a user, then remove the row (history stays in the audit log)', params: UserRefParam, response: { 200: User, ...errors } },
  }, async (req) => {
    const p = await admin(req);
    return (await state.users.delete(p.actor, req.params.user)).user;
  });
  r.put('/api/v1/users/:user/password', {
    schema: {
      ...tag('users'), summary: "Set a local account's password for the web sign-in (creates the user if needed; the user becomes an admin)",
      params: z.strictObject({ user: UserName }), body: SetPassword, response: { 200: PasswordSet, ...errors },
    },
  }, async (req) => {
    const p = await admin(req);
    return state.localAccounts.setPassword(p.actor, req.params.user, req.body.password);
  });
  const lifecycle = {
    suspend: 'Suspend a user: every device cut off and refused until resumed; auth keys revoked',
    resume: "Resume a suspended user: their devices reconnect and peers see them again",
    offboard: 'Offboard a user (final): devices deleted, auth keys revoked, the user kept as offboarded',
  } as const;
  for (const [op, summary] of Object.entries(lifecycle) as [keyof typeof lifecycle, string][]) {
    r.post(`/api/v1/users/:user/${op}`, { schema: { ...tag('users'), summary, params: UserRefParam, response: { 200: UserOperation, ...errors } } }, async (req) => {
      const p = await admin(req);
      return state.users[op](p.actor, req.params.user);
    });
  }

  // Nodes
  r.get('/api/v1/nodes', {
    schema: { ...tag('nodes'), summary: 'List nodes: search, filter, sort; one page with `limit` and `offset`, else all', querystring: NodeQuery, response: { 200: NodePage, ...errors } },
  }, async (req) => {
    await read(req);
    return state.nodes.page(req.query);
  });
  r.post('/api/v1/nodes', {
    schema: { ...tag('nodes'), summary: 'Add a node-less peer (phone, router) by its public key', body: CreateNode, response: { 201: Node, ...errors } },
  }, async (req, reply) => {
    const p = await admin(req);
    return reply.code(201).send(await state.nodes.createExternal(p.actor, req.body));
  });
  r.get('/api/v1/nodes/:id', { schema: { ...tag('nodes'), summary: 'Get a node', params: IdParam, response: { 200: Node, ...errors } } }, async (req) => {
    await read(req);
    return state.nodes.get(req.params.id);
  });
  r.delete('/api/v1/nodes/:id', { schema: { ...tag('nodes'), summary: 'Delete a node; every peer drops it at once', params: IdParam, response: { 200: Node, ...errors } } }, async (req) => {
    const p = await admin(req);
    return state.nodes.delete(p.actor, req.params.id);
  });
  r.post('/api/v1/nodes/:id/expire', { schema: { ...tag('nodes'), summary: "Expire a node's key now", params: IdParam, response: { 200: Node, ...errors } } }, async (req) => {
    const p = await admin(req);
    return state.nodes.expire(p.actor, req.params.id);
  });
  r.post('/api/v1/nodes/:id/expiry', {
    schema: { ...tag('nodes'), summary: "Disable, re-enable or extend a node's key expiry", params: IdParam, body: NodeExpiryChange, response: { 200: Node, ...errors } },
  }, async (req) => {
    const p = await admin(req);
    return state.nodes.setExpiry(p.actor, req.params.id, req.body);
  });
  r.post('/api/v1/nodes/:id/approve', {
    schema: { ...tag('nodes'), summary: 'Approve a device waiting for an admin (when the tailnet requires approval of new devices)', params: IdParam, response: { 200: Node, ...errors } },
  }, async (req) => {
    const p = await admin(req);
    return state.nodes.approve(p.actor, req.params.id);
  });
  r.post('/api/v1/nodes/:id/rename', { schema: { ...tag('nodes'), summary: 'Rename a node', params: IdParam, body: RenameNode, response: { 200: Node, ...errors } } }, async (req) => {
    const p = await admin(req);
    return state.nodes.rename(p.actor, req.params.id, req.body.name);
  });
  r.put('/api/v1/nodes/:id/tags', {
    schema: {
      ...tag('nodes'),
      summary: "Replace a node's tags; each must be defined in the policy's tagOwners, and a signed-in user must be one of its owners (an admin API key may apply any defined tag)",
      params: IdParam, body: SetNodeTags, response: { 200: Node, ...errors },
    },
  }, async (req) => {
    const p = await admin(req);
    return state.nodes.setTags(p.actor, req.params.id, req.body.tags);
  });

  // Pending interactive logins
  r.get('/api/v1/logins', { schema: { ...tag('logins'), summary: 'List devices waiting for approval', response: { 200: List(PendingLogin), ...errors } } }, async (req) => {
    await read(req);
    return { items: await state.logins.list() };
  });
  r.get('/api/v1/logins/:code', { schema: { ...tag('logins'), summary: 'Get a pending login', params: CodeParam, response: { 200: PendingLogin, ...errors } } }, async (req) => {
    await read(req);
    return state.logins.get(req.params.code);
  });
  r.post('/api/v1/logins/:code/approve', {
    schema: { ...tag('logins'), summary: 'Approve a waiting device as a node of a user', params: CodeParam, body: ApprovePendingLogin, response: { 200: Node, ...errors } },
  }, async (req) => {
    const p = await admin(req);
    const { nodeId } = await state.logins.approve(p.actor, req.params.code, req.body.user, { byAdmin: true });
    return state.nodes.get(nodeId);
  });

  // Auth keys
  r.get('/api/v1/authkeys', { schema: { ...tag('authkeys'), summary: 'List auth keys (never the secrets)', response: { 200: List(AuthKey), ...errors } } }, async (req) => {
    await read(req);
    return { items: await state.authKeys.list() };
  });
  r.post('/api/v1/authkeys', { schema: { ...tag('authkeys'), summary: 'Create an auth key; the key is shown only in this reply', body: CreateAuthKey, response: { 201: CreatedAuthKey, ...errors } } }, async (req, reply) => {
    const p = await admin(req);
    return reply.code(201).send(await state.authKeys.create(p.actor, req.body));
  });
  r.delete('/api/v1/authkeys/:id', { schema: { ...tag('authkeys'), summary: 'Revoke an auth key', params: IdParam, response: { 200: AuthKey, ...errors } } }, async (req) => {
    const p = await admin(req);
    return state.authKeys.revoke(p.actor, req.params.id);
  });

  // Audit log
  r.get('/api/v1/audit', {
    schema: { ...tag('audit'), summary: 'Audit events, oldest first; page with `after` = the previous `next`', querystring: AuditQuery, response: { 200: AuditPage, ...errors } },
  }, async (req) => {
    await read(req);
    return state.audit.list(req.query);
  });

  // API keys
  r.get('/api/v1/apikeys', { schema: { ...tag('apikeys'), summary: 'List API keys (never the secrets)', response: { 200: List(ApiKey), ...errors } } }, async (req) => {
    await admin(req);
    return { items: await state.apiKeys.list() };
  });
  r.post('/api/v1/apikeys', { schema: { ...tag('apikeys'), summary: 'Create an API key; the key is shown only in this reply', body: CreateApiKey, response: { 201: CreatedApiKey, ...errors } } }, async (req, reply) => {
    const p = await admin(req);
    return reply.code(201).send(await state.apiKeys.create(p.actor, req.body));
  });
  r.delete('/api/v1/apikeys/:id', { schema: { ...tag('apikeys'), summary: 'Revoke an API key', params: IdParam, response: { 200: ApiKey, ...errors } } }, async (req) => {
    const p = await admin(req);
    return state.apiKeys.revoke(p.actor, req.params.id);
  });

  policyRoutes(app, state, limits);
}

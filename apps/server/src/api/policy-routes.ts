/**
 * `/api/v1/policy`: the access policy in force (ETag = its version), writes with If-Match (428
 * without, 412 when stale), check, history, versions, rollback and explain. Reads (the GETs, and
 * check and explain, which write nothing) need the read scope; PUT and rollback admin. Routes
 * that carry a policy text authenticate before the body is read, so only a key holder can make
 * the server take a body that large.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  ActivePolicy, ExplainRequest, IfMatchHeaders, Explanation, PolicyCheck, PolicyHistoryPage, PolicyHistoryQuery, PolicyText, PolicyVersion, PolicyVersionParam, PolicyWrite,
  Problem, RollbackPolicy,
} from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';
import { etag } from '../state/policy.js';
import { POLICY_BODY_LIMIT_BYTES } from '../tunables.js';
import { authenticate, type Principal } from './auth.js';

const errors = { '4xx': Problem, '5xx': Problem } as const;

/** The version an If-Match header names: `"3"` (or a bare 3). */
export function ifMatchVersion(header: string | string[] | undefined): number {
  const value = Array.isArray(header) ? header.join(', ') : header;
  if (value === undefined || value.trim() === '') {
    throw new ApiError(Errors.preconditionRequired, 'send If-Match with the version you edited, as GET /api/v1/policy gave it in ETag (If-Match: "3"); weft-server policy set does this for you');
  }
  const m = /^\s*(?:"(\d{1,10})"|(\d{1,10}))\s*$/.exec(value);
  const v = m ? Number(m[1] ?? m[2]) : NaN;
  if (!Number.isSafeInteger(v) || v > 2 ** 31 - 1) {
    const why = value.trim() === '*' ? 'If-Match: * would overwrite whatever is in force; name the version you edited' : `If-Match ${JSON.stringify(value)} is not a policy version such as "3"`;
    throw new ApiError(Errors.invalidRequest, why, { errors: [{ path: 'headers.if-match', message: why }] });
  }
  return v;
}

export function policyRoutes(app: FastifyInstance, state: State, limits: AbuseLimits): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const read = (req: FastifyRequest) => authenticate(req, state, limits, 'read');
  const tag = { tags: ['policy'], security: [{ bearer: [] }] };
  // Authenticated in onRequest (before the body is read); the handler takes the principal from here.
  const principals = new WeakMap<FastifyRequest, Principal>();
  const first = (need: 'admin' | 'read') => ({
    onRequest: async (req: FastifyRequest) => {
      principals.set(req, await authenticate(req, state, limits, need));
    },
  });
  const principal = (req: FastifyRequest) => principals.get(req)!;

  r.get('/api/v1/policy', {
    schema: { ...tag, summary: 'The policy in force; ETag is its version (0 with none stored: every node reaches every node)', response: { 200: ActivePolicy, ...errors } },
  }, async (req, reply) => {
    await read(req);
    const p = await state.policy.current();
    return reply.header('etag', etag(p.version)).send(p);
  });

  r.put('/api/v1/policy', {
    ...first('admin'),
    bodyLimit: POLICY_BODY_LIMIT_BYTES,
    schema: { ...tag, summary: 'Replace the policy (If-Match: the version edited); judged against the current nodes, its tests included, before anything is written', headers: IfMatchHeaders, body: PolicyText, response: { 200: PolicyWrite, ...errors } },
  }, async (req, reply) => {
    const ifMatch = ifMatchVersion(req.headers['if-match']);
    const w = await state.policy.set(req.body.text, ifMatch, principal(req).actor);
    return reply.header('etag', etag(w.version)).send(w);
  });

  // Check and explain change nothing: reads, though POSTs (they carry a body).
  r.post('/api/v1/policy/check', {
    ...first('read'),
    bodyLimit: POLICY_BODY_LIMIT_BYTES,
    schema: { ...tag, summary: 'Judge a policy against the current users and nodes without storing it; every problem with its line and column', body: PolicyText, response: { 200: PolicyCheck, ...errors } },
  }, async (req) => state.policy.check(req.body.text));

  r.get('/api/v1/policy/history', {
    schema: { ...tag, summary: 'Policy versions, newest first, with author, time and diff; page with `before` = the previous `next`', querystring: PolicyHistoryQuery, response: { 200: PolicyHistoryPage, ...errors } },
  }, async (req) => {
    await read(req);
    return state.policy.history(req.query);
  });

  r.get('/api/v1/policy/versions/:version', {
    schema: { ...tag, summary: 'One stored policy version with its text', params: PolicyVersionParam, response: { 200: PolicyVersion, ...errors } },
  }, async (req) => {
    await read(req);
    return state.policy.version(req.params.version);
  });

  r.post('/api/v1/policy/rollback', {
    ...first('admin'),
    schema: { ...tag, summary: "Make a new version with an older version's text (If-Match: the version in force); judged again first", headers: IfMatchHeaders, body: RollbackPolicy, response: { 200: PolicyWrite, ...errors } },
  }, async (req, reply) => {
    const ifMatch = ifMatchVersion(req.headers['if-match']);
    const w = await state.policy.rollback(req.body.version, ifMatch, principal(req).actor);
    return reply.header('etag', etag(w.version)).send(w);
  });

  r.post('/api/v1/policy/explain', {
    schema: { ...tag, summary: 'May SRC reach DST (port, proto), by the policy in force, and which rule (line) allows it', body: ExplainRequest, response: { 200: Explanation, ...errors } },
  }, async (req) => {
    await read(req);
    return state.policy.explain(req.body);
  });
}

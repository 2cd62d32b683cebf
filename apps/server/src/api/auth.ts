/**
 * Who is calling `/api/v1`. Requests arriving on the admin unix socket (owner-only permissions in
 * the data directory) act as the local administrator; others present an API key as
 * `Authorization: Bearer <key>`, or (browsers, the web UI) a session cookie without an
 * Authorization header. A session acts as its user (actor `user`) with the user's role: `admin` is
 * the admin scope, `member` has none; a state-changing request with a session also needs the
 * CSRF checks (web/csrf.ts). GETs (and the POSTs that only read: policy check and explain) need `read` or `admin`; everything else needs `admin`.
 * A source address that keeps presenting keys that are not valid is answered 429 for a while
 * (rate-limit.ts); a valid key spends nothing.
 */
import type { FastifyRequest } from 'fastify';
import type { ApiScope } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import type { AbuseLimits } from '../rate-limit.js';
import { userActor, type Actor, type State } from '../state/index.js';
import { assertCsrf, CSRF_HEADER, SAFE_METHODS } from '../web/csrf.js';
import { sessionTokenOf } from '../web/session.js';

/** Set on requests that came in through the admin unix socket. */
export const LOCAL_SOCKET = Symbol('weft.localSocket');

export interface Principal { actor: Actor; scopes: ApiScope[] }

export async function authenticate(req: FastifyRequest, state: State, limits: AbuseLimits, need: ApiScope): Promise<Principal> {
  let principal: Principal;
  if ((req.raw as unknown as Record<symbol, boolean>)[LOCAL_SOCKET]) {
    principal = { actor: { type: 'local-socket', name: 'local-socket', origin: 'cli' }, scopes: ['admin'] };
  } else if (req.headers.authorization === undefined && sessionTokenOf(req) !== undefined) {
    const token = sessionTokenOf(req)!;
    const session = await state.sessions.authenticate(token);
    if (!session) throw new ApiError(Errors.unauthenticated, 'the session has ended (signed out, expired or idle too long); sign in again at /auth/login');
    if (!SAFE_METHODS.has(req.method)) assertCsrf(req, state.ctx.serverUrl, token, req.headers[CSRF_HEADER]);
    principal = { actor: userActor(session, req.ip), scopes: session.role === 'admin' ? ['admin'] : [] };
  } else {
    const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!key) throw new ApiError(Errors.unauthenticated, 'send an API key as "Authorization: Bearer <key>"; create one with: weft-server apikeys create --scopes admin');
    limits.checkCredentials(req.ip);
    const found = await state.apiKeys.authenticate(key);
    if ('refused' in found) {
      if (found.unknown) limits.credentialFailed(req.ip);
      throw new ApiError(Errors.unauthenticated, found.refused);
    }
    principal = { actor: { type: 'apikey', id: String(found.id), name: found.prefix, origin: 'api', ip: req.ip }, scopes: found.scopes };
  }
  const ok = principal.scopes.includes('admin') || (need === 'read' && principal.scopes.includes('read'));
  if (!ok && principal.actor.type === 'user') throw new ApiError(Errors.forbidden, `this needs an admin; ${principal.actor.name} signed in as a member`);
  if (!ok && principal.scopes.includes('scim')) throw new ApiError(Errors.forbidden, `this needs the "${need}" scope; a SCIM token (scope scim) works only at /scim/v2`);
  if (!ok) throw new ApiError(Errors.forbidden, `this needs the "${need}" scope; the key has: ${principal.scopes.join(', ')}`);
  return principal;
}

/**
 * CSRF protection for every state-changing request made with a session cookie (requests with a
 * Bearer API key carry no ambient credential and are not affected). Two checks, both must pass:
 *
 * 1. Same origin: `Sec-Fetch-Site`, when the browser sends it, must be `same-origin`; else an
 *    `Origin`, when sent, must be this server's (its configured URL or the request's own
 *    scheme://host). A browser sends at least one of them on every POST.
 * 2. A synchronizer token tied to the session: SHA-256 of the session id under a fixed label. Only
 *    someone who holds the session id can compute it, the cookie is HttpOnly, and another site
 *    cannot read our pages or `GET /auth/session` to learn it. It is sent as the `X-CSRF-Token`
 *    header (scripts) or the `_csrf` form field (the server's own HTML forms).
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { constantTimeEqual } from '@weft/crypto';
import { ApiError, Errors } from '../errors.js';

export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf';
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`weft-csrf\0${sessionToken}`).digest('base64url');
}

/** Throws 403 `csrf_failed` unless the request comes from a page of this server. */
export function assertSameOrigin(req: FastifyRequest, serverUrl: string): void {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin') {
    throw new ApiError(Errors.csrfFailed, `the request came from another site (Sec-Fetch-Site: ${site}); state changes with a session cookie must come from this server's own pages`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== new URL(serverUrl).origin && origin !== `${req.protocol}://${req.host}`) {
    throw new ApiError(Errors.csrfFailed, `the request came from another origin (${origin.slice(0, 200)}); state changes with a session cookie must come from this server's own pages`);
  }
}

/** Both checks for a state-changing request with the session `sessionToken`; `presented` is the header or form value. */
export function assertCsrf(req: FastifyRequest, serverUrl: string, sessionToken: string, presented: unknown): void {
  assertSameOrigin(req, serverUrl);
  if (typeof presented !== 'string' || !constantTimeEqual(presented, csrfTokenFor(sessionToken))) {
    throw new ApiError(Errors.csrfFailed, `a state-changing request with a session cookie needs the session's CSRF token in the ${CSRF_HEADER} header (GET /auth/session gives it)`);
  }
}

/**
 * Browser sign-in: `/auth/login` (local account), `/auth/oidc/start` and `/auth/oidc/callback`
 * (OIDC), `/auth/logout`, and `GET /auth/session` (who is signed in, and the CSRF token scripts
 * send back). Form posts get HTML pages; JSON posts (the web UI) get JSON and problem+json.
 * Every refused sign-in is audited (`auth.sign-in-failed`, never with the password) and leaves no
 * session.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { constantTimeEqual, hashSecret, PASSWORD_MAX_LENGTH } from '@weft/crypto';
import { Problem, WebSession } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { SessionUser, State } from '../state/index.js';
import { OIDC_LOGIN_TIMEOUT_MS } from '../tunables.js';
import { cookie, OIDC_BINDING_COOKIE, readCookie, sessionCookieName } from './cookies.js';
import { assertCsrf, assertSameOrigin, CSRF_FIELD, CSRF_HEADER, csrfTokenFor } from './csrf.js';
import { randomToken, type OidcClient } from './oidc.js';
import { esc, sendPage, signInPage, signOutForm } from './pages.js';
import { sessionOf } from './session.js';

/** Where to go after signing in: a path on this server only (no scheme, no `//host`), else the sign-in page. */
export function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) && next.length <= 512 ? next : '/auth/login';
}

const SignIn = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
  next: z.string().max(512).optional(),
});

const wantsJson = (req: FastifyRequest) => String(req.headers['content-type'] ?? '').startsWith('application/json');

export function sessionBody(s: { token: string; user: SessionUser }) {
  return {
    user: { id: s.user.userId, name: s.user.userName },
    role: s.user.role,
    method: s.user.method,
    csrfToken: csrfTokenFor(s.token),
    expiresAt: s.user.expiresAt.toISOString(),
    idleExpiresAt: s.user.idleExpiresAt.toISOString(),
  };
}

/** An ApiError as an HTML page (browser routes); anything else is rethrown for the problem handler. */
export function errorPage(reply: FastifyReply, err: unknown, title: string, again?: string): FastifyReply {
  if (!(err instanceof ApiError)) throw err;
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return sendPage(reply, err.def.status, title, `<p class="error" role="alert">${esc(err.detail ?? err.def.title)}</p><p>(${esc(err.def.code)})</p>${again ? `<p><a href="${esc(again)}">Sign in again</a></p>` : ''}`);
}

export function signInRoutes(app: FastifyInstance, state: State, limits: AbuseLimits, oidc: OidcClient | null): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const hide = { hide: true } as object;

  const startSession = async (req: FastifyRequest, reply: FastifyReply, user: { id: number; name: string }, method: 'password' | 'oidc') => {
    const { token, expiresAt } = await state.sessions.create(user, method, req.ip);
    reply.header('set-cookie', cookie(req, sessionCookieName(req), token, (expiresAt.getTime() - Date.now()) / 1000));
    return token;
  };

  r.get('/auth/login', { schema: { ...hide, querystring: z.object({ next: z.string().max(512).optional() }) } as object }, async (req, reply) => {
    const next = localPath((req.query as { next?: string }).next);
    const s = await sessionOf(req, state);
    if (s && next !== '/auth/login') return reply.redirect(next, 302);
    if (s) return sendPage(reply, 200, 'Signed in', `<p>Signed in as ${esc(s.user.userName)} (${s.user.role}).</p>${signOutForm(csrfTokenFor(s.token))}`);
    return sendPage(reply, 200, 'Sign in to Weft', signInPage({ next, oidc: oidc !== null }));
  });

  r.post('/auth/login', { schema: { ...hide, body: SignIn } as object }, async (req, reply) => {
    const body = req.body as z.infer<typeof SignIn>;
    const json = wantsJson(req);
    const next = localPath(body.next);
    try {
      // No session yet, so no token to check: a login form posted from another site (login CSRF) is refused by origin.
      assertSameOrigin(req, state.ctx.serverUrl);
      limits.checkSignIn(req.ip, body.username);
      const found = await state.localAccounts.verify(body.username, body.password);
      if ('refused' in found) {
        limits.signInFailed(req.ip, body.username);
        await state.sessions.recordFailure(req.ip, 'password', body.username, found.reason);
        throw new ApiError(Errors.signInFailed, found.refused);
      }
      const token = await startSession(req, reply, found, 'password');
      if (json) return sessionBody({ token, user: (await state.sessions.authenticate(token))! });
      return reply.redirect(next, 303);
    } catch (err) {
      if (json || !(err instanceof ApiError)) throw err;
      if (err.headers) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
      return sendPage(reply, err.def.status, 'Sign in to Weft', signInPage({ next, oidc: oidc !== null, error: err.detail ?? err.def.title, username: body.username }));
    }
  });

  // nullish: a script's or the UI's POST without a body (Fastify hands the schema null) must sign out too.
  r.post('/auth/logout', { schema: { ...hide, body: z.object({ _csrf: z.string().max(100).optional() }).nullish() } as object }, async (req, reply) => {
    const s = await sessionOf(req, state);
    if (s) {
      const presented = req.headers[CSRF_HEADER] ?? (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
      try {
        assertCsrf(req, state.ctx.serverUrl, s.token, presented);
      } catch (err) {
        if (wantsJson(req) || req.headers[CSRF_HEADER] !== undefined) throw err;
        return errorPage(reply, err, 'Not signed out');
      }
      await state.sessions.end(s.user, req.ip);
    }
    reply.header('set-cookie', cookie(req, sessionCookieName(req), '', 0));
    if (wantsJson(req) || req.headers[CSRF_HEADER] !== undefined) return { signedOut: true };
    return reply.redirect('/auth/login', 303);
  });

  r.get('/auth/session', { schema: { ...hide, response: { 200: WebSession, '4xx': Problem } } as object }, async (req) => {
    const s = await sessionOf(req, state);
    if (!s) throw new ApiError(Errors.unauthenticated, 'not signed in; sign in at /auth/login');
    return sessionBody(s);
  });

  r.get('/auth/oidc/start', { schema: { ...hide, querystring: z.object({ next: z.string().max(512).optional() }) } as object }, async (req, reply) => {
    try {
      if (!oidc) throw new ApiError(Errors.oidcNotConfigured, 'this server has no identity provider configured (oidcIssuer); sign in with a local account');
      limits.admitOidcStart(req.ip);
      const stateParam = randomToken();
      const binding = randomToken();
      const nonce = randomToken();
      const codeVerifier = randomToken();
      const location = await oidc.authorizationUrl({ state: stateParam, nonce, codeVerifier });
      await state.identities.beginOidc({
        stateHash: hashSecret(stateParam), browserHash: hashSecret(binding), nonce, codeVerifier,
        next: localPath((req.query as { next?: string }).next), expiresAt: new Date(Date.now() + OIDC_LOGIN_TIMEOUT_MS),
      });
      reply.header('set-cookie', cookie(req, OIDC_BINDING_COOKIE, binding, OIDC_LOGIN_TIMEOUT_MS / 1000));
      return reply.redirect(location, 302);
    } catch (err) {
      return errorPage(reply, err, 'Sign-in unavailable');
    }
  });

  const Callback = z.object({
    code: z.string().max(4096).optional(),
    state: z.string().max(512).optional(),
    error: z.string().max(256).optional(),
    error_description: z.string().max(1024).optional(),
  });
  r.get('/auth/oidc/callback', { schema: { ...hide, querystring: Callback } as object }, async (req, reply) => {
    const q = req.query as z.infer<typeof Callback>;
    let claimedName: string | null = null;
    try {
      if (!oidc) throw new ApiError(Errors.oidcNotConfigured, 'this server has no identity provider configured');
      if (q.error) throw new ApiError(Errors.oidcFailed, `the identity provider refused the sign-in: ${q.error}${q.error_description ? ` (${q.error_description})` : ''}`);
      if (!q.code || !q.state) throw new ApiError(Errors.invalidRequest, 'the callback needs code and state parameters');
      const pending = await state.identities.consumeOidc(hashSecret(q.state));
      if (!pending) throw new ApiError(Errors.oidcFailed, 'this sign-in was already completed or never started here (a replayed or forged callback); sign in again');
      const binding = readCookie(req, OIDC_BINDING_COOKIE);
      if (!binding || !constantTimeEqual(hashSecret(binding), pending.browserHash)) throw new ApiError(Errors.oidcFailed, 'this sign-in was started in another browser; sign in again from this one');
      if (pending.expiresAt.getTime() <= Date.now()) throw new ApiError(Errors.oidcFailed, 'this sign-in took too long; sign in again');
      const claims = await oidc.signIn(q.code, pending.codeVerifier, pending.nonce);
      // Verified claims: the audit of a refusal from here on can say who was refused.
      claimedName = typeof claims.email === 'string' ? claims.email : typeof claims.sub === 'string' ? claims.sub : null;
      const identity = oidc.identity(claims);
      const user = await state.identities.signIn(identity);
      await startSession(req, reply, user, 'oidc');
      reply.header('set-cookie', [String(reply.getHeader('set-cookie')), cookie(req, OIDC_BINDING_COOKIE, '', 0)]);
      return reply.redirect(pending.next, 303);
    } catch (err) {
      if (err instanceof ApiError) await state.sessions.recordFailure(req.ip, 'oidc', claimedName, err.detail ?? err.def.title);
      return errorPage(reply, err, 'Sign-in failed', '/auth/login');
    }
  });
}

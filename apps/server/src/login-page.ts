/**
 * `GET /login/:code`, the page `weft login` sends a person to: sign in first (OIDC or a local
 * account, web/sign-in-routes.ts), then confirm the device by what it reported (hostname, OS, and
 * the node key fingerprint `weft login` printed beside the URL) with a CSRF-protected POST. The device becomes a node of the signed-in user;
 * its agent, polling every second, goes on at its next poll. Admins can still approve from the
 * CLI with an API key or the admin socket (`weft-server nodes approve CODE`).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { keyFingerprint, nodeKeyFingerprint, parseMachinePublicKey, parseNodePublicKey } from '@weft/crypto';
import { ApiError, Errors } from './errors.js';
import { userActor, type State } from './state/index.js';
import { assertCsrf, CSRF_FIELD, CSRF_HEADER, csrfTokenFor } from './web/csrf.js';
import { approvalPage, esc, sendPage } from './web/pages.js';
import { sessionOf } from './web/session.js';
import { errorPage } from './web/sign-in-routes.js';

const Params = z.strictObject({ code: z.string().min(1).max(16) });

export function loginPage(app: FastifyInstance, state: State): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const signIn = (code: string) => `/auth/login?next=${encodeURIComponent(`/login/${code}`)}`;

  r.get('/login/:code', { schema: { hide: true, params: Params } as object }, async (req, reply) => {
    const code = (req.params as { code: string }).code;
    const s = await sessionOf(req, state);
    if (!s) return reply.redirect(signIn(code), 302);
    try {
      const login = await state.logins.forApproval(code);
      if (login.approved) return sendPage(reply, 200, 'Device approved', `<p>${esc(login.hostname)} (${esc(login.code)}) is already approved.</p>`);
      return sendPage(reply, 200, 'Approve a device', approvalPage({
        code: login.code, hostname: login.hostname, os: login.os, fingerprint: nodeKeyFingerprint(parseNodePublicKey(login.nodeKey)),
        machineKey: keyFingerprint(parseMachinePublicKey(login.machineKey)),
        expiresAt: login.expiresAt, user: s.user.userName, csrf: csrfTokenFor(s.token),
      }));
    } catch (err) {
      return errorPage(reply, err, 'No such device');
    }
  });

  r.post('/login/:code/approve', { schema: { hide: true, params: Params, body: z.object({ [CSRF_FIELD]: z.string().max(100).optional() }).optional() } as object }, async (req, reply) => {
    const code = (req.params as { code: string }).code;
    try {
      const s = await sessionOf(req, state);
      if (!s) throw new ApiError(Errors.unauthenticated, 'sign in first; the session has ended or was never started');
      assertCsrf(req, state.ctx.serverUrl, s.token, req.headers[CSRF_HEADER] ?? (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD]);
      const { nodeId } = await state.logins.approve(userActor(s.user, req.ip), code, s.user.userName, { byAdmin: s.user.role === 'admin' });
      const n = await state.nodes.get(nodeId);
      if (n.approvalPending) {
        return sendPage(reply, 200, 'Waiting for an admin', `<p>${esc(n.name)} (${esc(n.ipv4)}) is yours now, and waits for an admin to approve it: this network requires it for new devices. It joins the moment they do. You can close this page.</p>`);
      }
      return sendPage(reply, 200, 'Device approved', `<p>${esc(n.name)} (${esc(n.ipv4)}) is joining as ${esc(n.user)}. You can close this page.</p>`);
    } catch (err) {
      return errorPage(reply, err, 'Not approved', signIn(code));
    }
  });
}

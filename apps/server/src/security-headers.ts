/**
 * Headers on every response: `nosniff` everywhere (an API body is never run as a script or page),
 * and for HTML no framing (clickjacking an approval page), no referrer (login URLs carry codes)
 * and a CSP unless the page brought its own.
 */
import type { FastifyInstance } from 'fastify';

/** For HTML that sets no CSP of its own: nothing loads, nothing frames it. */
const DEFAULT_HTML_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', DEFAULT_HTML_CSP);
      reply.header('x-frame-options', 'DENY');
      // A page may choose a stricter-than-nothing policy of its own (web/pages.ts: same-origin).
      if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer');
    }
    return payload;
  });
}

/**
 * The cookies of the web sign-in: the session cookie and the short-lived OIDC browser binding.
 *
 * - HttpOnly: no script reads them (the CSRF token is what scripts get, web/csrf.ts).
 * - SameSite=Lax, not Strict: the OIDC callback is a top-level navigation from the identity
 *   provider's site, and so is the redirect chain that ends on the approval page after it; Strict
 *   would send neither cookie there and sign-in would never complete. Lax still withholds them from
 *   cross-site POSTs, subrequests and frames, and nothing here changes state on a GET.
 * - Secure when the request came over TLS (directly, or per X-Forwarded-Proto from a trusted
 *   proxy: Fastify's `request.protocol`); then the session cookie also takes the `__Host-` prefix
 *   (Secure, Path=/, no Domain: no sibling subdomain can set or shadow it). Over plain HTTP (a
 *   first start on a LAN) Secure would make browsers drop the cookie, so it is left off there.
 * - Path=/, no Domain: only this host gets them.
 */
import type { FastifyRequest } from 'fastify';

export const OIDC_BINDING_COOKIE = 'weft-oidc';

export const isTls = (req: FastifyRequest) => req.protocol === 'https';

/** The session cookie's name for this request: `__Host-weft-session` over TLS, `weft-session` over plain HTTP. */
export const sessionCookieName = (req: FastifyRequest) => (isTls(req) ? '__Host-weft-session' : 'weft-session');

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A Set-Cookie value; `maxAgeS` 0 deletes the cookie. Values here are base64url, so nothing needs quoting. */
export function cookie(req: FastifyRequest, name: string, value: string, maxAgeS: number): string {
  return [`${name}=${value}`, 'Path=/', `Max-Age=${Math.max(0, Math.floor(maxAgeS))}`, 'HttpOnly', 'SameSite=Lax', ...(isTls(req) ? ['Secure'] : [])].join('; ');
}

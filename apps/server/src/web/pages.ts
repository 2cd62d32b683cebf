/**
 * The server's own HTML pages (sign-in, device approval, outcomes). No script at all: plain forms
 * posting to this origin, each carrying the session's CSRF token in a hidden field.
 */
import type { FastifyReply } from 'fastify';

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Nothing loads but inline style; forms may post only here; never framed. Referrer `same-origin`
 * (not `no-referrer`): URLs with login codes still never leave this origin, and our own form posts
 * keep a real `Origin` header, which the CSRF check reads (no-referrer makes it "null").
 */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE = `body{font:16px system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font:inherit;background:#2546d8;color:#fff;border:0;border-radius:4px;text-decoration:none;cursor:pointer}
.secondary{background:#e4e6eb;color:#1a1a1a}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
code{font-size:1.2rem;letter-spacing:.08em}.error{color:#a3120f}hr{margin:2rem 0;border:0;border-top:1px solid #ddd}`;

export function sendPage(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', CSP)
    .header('referrer-policy', 'same-origin')
    .header('cache-control', 'no-store')
    .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Weft</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body><h1>${esc(title)}</h1>${body}</body></html>`);
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`;

export function signInPage(p: { next: string; oidc: boolean; error?: string; username?: string }): string {
  const oidc = p.oidc
    ? `<p><a class="button" href="/auth/oidc/start?next=${encodeURIComponent(p.next)}">Sign in with your identity provider</a></p><hr><p>Or with a local account:</p>`
    : '';
  return `${p.error ? `<p class="error" role="alert">${esc(p.error)}</p>` : ''}${oidc}
<form method="post" action="/auth/login">${hidden('next', p.next)}
<label for="username">User name</label><input id="username" name="username" required autocomplete="username" value="${esc(p.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">
<button type="submit">Sign in</button></form>`;
}

export function signOutForm(csrf: string): string {
  return `<form method="post" action="/auth/logout">${hidden('_csrf', csrf)}<button class="secondary" type="submit">Sign out</button></form>`;
}

/**
 * The device confirmation page. `fingerprint`: the node key's short one, which `weft login` prints
 * beside the URL; `os`: null when the agent is too old to report it.
 */
export function approvalPage(p: { code: string; hostname: string; os: string | null; fingerprint: string; machineKey: string; expiresAt: Date; user: string; csrf: string }): string {
  return `<p>A device is asking to join this network as yours. Approve it only if you just ran <code>weft login</code> (or <code>weft up</code>) on it and it shows the code <code>${esc(p.code)}</code> and the key fingerprint below.</p>
<dl><dt>Hostname</dt><dd>${esc(p.hostname)}</dd><dt>Operating system</dt><dd>${p.os === null ? 'not reported (an older weft)' : esc(p.os)}</dd>
<dt>Key fingerprint</dt><dd><code data-testid="fingerprint">${esc(p.fingerprint)}</code></dd>
<dt>Machine key</dt><dd><code style="font-size:.9rem;letter-spacing:0">${esc(p.machineKey)}</code></dd>
<dt>Code</dt><dd>${esc(p.code)}</dd><dt>Owner</dt><dd>${esc(p.user)} (you)</dd><dt>Waits until</dt><dd>${esc(p.expiresAt.toISOString())}</dd></dl>
<form method="post" action="/login/${encodeURIComponent(p.code)}/approve">${hidden('_csrf', p.csrf)}<button type="submit">Approve this device</button></form>
<hr><p>Signed in as ${esc(p.user)}.</p>${signOutForm(p.csrf)}`;
}

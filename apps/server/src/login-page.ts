/**
 * `GET /login/:code`: the minimal approval page for an interactive login. An administrator enters
 * an admin API key and the user the device belongs to. The web UI issue replaces this with a
 * signed-in session.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function loginPage(app: FastifyInstance): void {
  app.withTypeProvider<ZodTypeProvider>().get('/login/:code', {
    schema: { hide: true, params: z.strictObject({ code: z.string().max(16) }) } as object,
  }, async (req, reply) => {
    const code = esc((req.params as { code: string }).code.toUpperCase());
    // The page shows a login code: never cached, never framed (security-headers.ts adds the rest).
    reply.type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
      .header('cache-control', 'no-store');
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Approve device ${code} · Weft</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button{margin-top:1rem;padding:.6rem 1.2rem;font:inherit;background:#2546d8;color:#fff;border:0;border-radius:4px}
code{font-size:1.4rem;letter-spacing:.1em}#msg{margin-top:1rem}</style></head>
<body><h1>Approve a device</h1><p>A device is waiting to join with code <code>${code}</code>.</p>
<form id="f"><label for="user">Device owner (user name)</label><input id="user" name="user" required autocomplete="username">
<label for="key">Admin API key</label><input id="key" name="key" type="password" required autocomplete="off">
<button type="submit">Approve</button></form><p id="msg" role="status"></p>
<script>
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const msg = document.getElementById('msg');
  const res = await fetch('/api/v1/logins/${code}/approve', { method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + document.getElementById('key').value },
    body: JSON.stringify({ user: document.getElementById('user').value }) });
  const body = await res.json();
  msg.textContent = res.ok ? 'Approved: ' + body.name + ' (' + body.ipv4 + ') is joining.' : 'Not approved: ' + (body.detail || body.title);
});
</script></body></html>`;
  });
}

/**
 * The admin UI (apps/web, built by scripts/build.mjs into apps/web/dist), served at `/`: its
 * index.html at each of the UI's client routes (`UI_PATHS`, shared with the UI's router, so a
 * path the UI does not know stays a 404 and no UI route can shadow /api, /agent, /login, the
 * health checks or /metrics: Fastify refuses a duplicate route at start-up) and its hashed files
 * under /assets/. The build is read into memory once (a few hundred KiB): no file system access
 * per request, no path from a request ever reaches the file system.
 *
 * The UI has no inline script or style, so its CSP is strict: scripts, styles and API calls from
 * this origin only, nothing framed, no base or form targets.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UI_PATHS } from '@weft/protocol/ui-paths';
import { Errors, problemBody } from './errors.js';

/** The same relative path from apps/server/src (tsx) and apps/server/dist (the bundle). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

export const UI_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Hashed names change with their content: cached for a year. index.html is revalidated. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(body: Buffer, name: string): Asset {
  return { body, type: TYPES[extname(name)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** Registers the UI's routes; without a build in `dir` it registers none and says how to build. */
export function webUi(app: FastifyInstance, dir: string, log: FastifyBaseLogger): boolean {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) {
    log.warn({ dir }, 'admin UI not built (no index.html): run npm run build; / is not served');
    return false;
  }
  const index = asset(readFileSync(indexFile), 'index.html');
  const assets = new Map<string, Asset>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir)) {
    for (const e of readdirSync(assetDir, { withFileTypes: true })) if (e.isFile()) assets.set(e.name, asset(readFileSync(join(assetDir, e.name)), e.name));
  }

  const send = (req: FastifyRequest, reply: FastifyReply, a: Asset, cache: string, html: boolean) => {
    reply.header('cache-control', cache).header('etag', a.etag).type(a.type);
    if (html) reply.header('content-security-policy', UI_CSP);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.send(a.body);
  };
  for (const path of UI_PATHS) {
    app.get(path, { schema: { hide: true } as object }, async (req, reply) => send(req, reply, index, REVALIDATE, true));
  }
  app.get('/assets/:file', { schema: { hide: true } as object }, async (req, reply) => {
    const a = assets.get((req.params as { file: string }).file);
    // Not the not-found handler: it would call a GET on this pattern a wrong method (405).
    if (!a) return reply.code(404).type('application/problem+json').send(problemBody(Errors.notFound, `no file ${req.url.split('?')[0]}`));
    return send(req, reply, a, IMMUTABLE, false);
  });
  return true;
}

/**
 * Where the metrics are served: `GET /metrics` on the main port behind a bearer token
 * (`metricsToken`), and/or a separate plain listener (`metricsListen`) meant for a private
 * address. Without a token the main port has no `/metrics` at all (404 like any unknown path).
 */
import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ApiError, Errors } from './errors.js';
import { tokenChecker, type ServerMetrics } from './metrics.js';

export function metricsRoute(app: FastifyInstance, metrics: ServerMetrics, token: string): void {
  const allowed = tokenChecker(token);
  app.get('/metrics', { schema: { hide: true } as object }, async (req, reply) => {
    if (!allowed(req.headers.authorization)) {
      throw new ApiError(Errors.unauthenticated, 'metrics need the configured metrics token as a bearer token', { headers: { 'www-authenticate': 'Bearer' } });
    }
    return reply.type(metrics.contentType).send(await metrics.exposition());
  });
}

/** A listener that answers `GET /metrics` (and `/`) with the exposition and anything else 404. */
export function listenMetrics(metrics: ServerMetrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || (path !== '/metrics' && path !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      return;
    }
    metrics.exposition().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Every error leaves as RFC 7807 problem+json with a stable code; nothing leaks a stack. */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isDatabaseBusy } from './db-busy.js';
import { ApiError, Errors, problemBody, type ErrorDef, type ProblemField } from './errors.js';

const BY_FASTIFY_CODE: Record<string, ErrorDef> = {
  FST_ERR_CTP_INVALID_JSON_BODY: Errors.malformedJson,
  FST_ERR_CTP_EMPTY_JSON_BODY: Errors.malformedJson,
  FST_ERR_CTP_BODY_TOO_LARGE: Errors.bodyTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: Errors.unsupportedMediaType,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: Errors.invalidRequest,
};

export function installProblemHandler(app: FastifyInstance): void {
  const routes = routeTable(app);

  /** What a request that matches no route gets: 405 with Allow when the path exists, else 404. */
  const unrouted = (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    const allowed = routes.methodsFor(path);
    if (allowed.length > 0) {
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .type('application/problem+json')
        .send(problemBody(Errors.methodNotAllowed, `${req.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`));
    }
    return reply.code(404).type('application/problem+json').send(problemBody(Errors.notFound, `no route ${req.method} ${path}`));
  };

  app.setErrorHandler((err: FastifyError, req, reply) => {
    // A body the not-found handler could not parse (a wrong method with a bad content type): the
    // method or the path is what is wrong, so it answers as an unmatched request does.
    if (req.is404) return unrouted(req, reply);
    let def: ErrorDef;
    let detail: string | undefined;
    let fields: ProblemField[] | undefined;
    if (err instanceof ApiError) {
      def = err.def;
      detail = err.detail;
      fields = err.errors;
      if (err.cause) req.log.debug({ err: err.cause }, 'api error cause');
      if (err.headers) void reply.headers(err.headers);
    } else if (hasZodFastifySchemaValidationErrors(err)) {
      def = Errors.invalidRequest;
      const where = err.validationContext ?? 'body';
      fields = err.validation.map((v) => ({
        path: [where, ...String(v.instancePath ?? '').split('/').filter(Boolean)].join('.'),
        message: String(v.message ?? 'invalid'),
      }));
      detail = `invalid ${where}: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`;
    } else if (err.code && BY_FASTIFY_CODE[err.code]) {
      def = BY_FASTIFY_CODE[err.code]!;
      detail = err.message;
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      def = { ...Errors.invalidRequest, status: err.statusCode };
      detail = err.message;
    } else if (isDatabaseBusy(err)) {
      def = Errors.databaseBusy;
      req.log.warn({ err }, 'database busy: lock wait or session timed out; the write was rolled back');
    } else {
      def = Errors.internal;
      req.log.error({ err }, 'unhandled error');
    }
    return reply.code(def.status).type('application/problem+json').send(problemBody(def, detail, fields));
  });

  app.setNotFoundHandler(unrouted);
}

/** Every registered route, so a wrong method on an existing path is told which methods exist. */
function routeTable(app: FastifyInstance) {
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const source = route.url
      .split('/')
      .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    const pattern = new RegExp(`^${source}$`);
    let entry = routes.find((r) => r.pattern.source === pattern.source);
    if (!entry) routes.push((entry = { pattern, methods: new Set() }));
    for (const m of methods) entry.methods.add(m.toUpperCase());
  });
  return {
    methodsFor(path: string): string[] {
      const out = new Set<string>();
      for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m);
      return [...out].sort();
    },
  };
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (a header block over the limit,
 * a request that never finishes arriving, bytes that are not HTTP), answered as problem+json
 * instead of Node's or Fastify's own bodies. Passed as Fastify's `clientErrorHandler`.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const def =
    err.code === 'HPE_HEADER_OVERFLOW' ? Errors.headersTooLarge : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? Errors.requestTimeout : Errors.invalidRequest;
  const detail =
    def === Errors.headersTooLarge ? 'the request headers exceed the server limit' : def === Errors.requestTimeout ? 'the request did not arrive in time' : 'the request is not valid HTTP';
  const body = JSON.stringify(problemBody(def, detail));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${def.status} ${STATUS_CODES[def.status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
/**
 * Errors Fastify's router raises before any route or error handler runs: a URL with a broken
 * %-escape, or a path segment longer than the router takes. Pass as the `frameworkErrors` option.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    const detail = err.code === 'FST_ERR_BAD_URL' ? 'the path has an invalid %-escape' : `a path segment is longer than ${MAX_PARAM_LENGTH} characters`;
    void reply.code(400).type('application/problem+json').send(problemBody(Errors.invalidRequest, detail));
    return;
  }
  req.log.error({ err }, 'unhandled router error');
  void reply.code(500).type('application/problem+json').send(problemBody(Errors.internal));
}

/** Fastify's default; longer path segments are refused by `frameworkErrors`. */
export const MAX_PARAM_LENGTH = 100;

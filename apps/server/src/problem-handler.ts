/** Every error leaves as RFC 7807 problem+json with a stable code; nothing leaks a stack. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ApiError, Errors, problemBody, type ErrorDef } from './errors.js';

const BY_FASTIFY_CODE: Record<string, ErrorDef> = {
  FST_ERR_CTP_INVALID_JSON_BODY: Errors.malformedJson,
  FST_ERR_CTP_EMPTY_JSON_BODY: Errors.malformedJson,
  FST_ERR_CTP_BODY_TOO_LARGE: Errors.bodyTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: Errors.unsupportedMediaType,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: Errors.invalidRequest,
};

export function installProblemHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    let def: ErrorDef;
    let detail: string | undefined;
    let fields: { path: string; message: string }[] | undefined;
    if (err instanceof ApiError) {
      def = err.def;
      detail = err.detail;
      fields = err.errors;
      if (err.cause) req.log.debug({ err: err.cause }, 'api error cause');
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
    } else {
      def = Errors.internal;
      req.log.error({ err }, 'unhandled error');
    }
    return reply.code(def.status).type('application/problem+json').send(problemBody(def, detail, fields));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type('application/problem+json').send(problemBody(Errors.notFound, `no route ${req.method} ${req.url.split('?')[0]}`));
  });
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

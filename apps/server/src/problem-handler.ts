/** Every error leaves as RFC 7807 problem+json with a stable code; nothing leaks a stack. */
import type { FastifyError, FastifyInstance } from 'fastify';
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

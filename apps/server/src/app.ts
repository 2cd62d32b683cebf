/**
 * `buildApp` assembles the control server: state (the one write path), the mapper, the change
 * hub, REST API, agent channel and health checks. It never listens; `main.ts` does.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Database } from '@weft/db';
import { MAX_AGENT_MESSAGE_BYTES, PROTOCOL_VERSION } from '@weft/protocol';
import { logoutRoute } from './agent/logout-route.js';
import { registerRoute } from './agent/register-route.js';
import { socketRoute } from './agent/socket-route.js';
import { apiRoutes } from './api/routes.js';
import { ChangeHub } from './hub.js';
import { loginPage } from './login-page.js';
import { Mapper } from './mapper/mapper.js';
import { frameworkErrors, installProblemHandler, MAX_PARAM_LENGTH } from './problem-handler.js';
import { State } from './state/index.js';

export interface AppOptions {
  db: Database;
  /** Base URL for links handed to people (login pages). */
  serverUrl: string;
  /** A pino logger; absent = silent. */
  logger?: FastifyBaseLogger;
  loginTimeoutS?: number;
  /** Seconds an ephemeral node may stay offline before it is deleted. */
  ephemeralTimeoutS?: number;
  /** How long online/endpoint patches are coalesced before going out. */
  patchIntervalMs?: number;
}

export interface App {
  app: FastifyInstance;
  state: State;
  mapper: Mapper;
  hub: ChangeHub;
}

export const BODY_LIMIT_BYTES = 64 * 1024;

export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandler(app);

  const hub = new ChangeHub(opts.db.bus, app.log);
  const state = await State.open({ prisma: opts.db.prisma, emit: hub.emit, serverUrl: opts.serverUrl.replace(/\/$/, ''), loginTimeoutS: opts.loginTimeoutS ?? 600 });
  const mapper = new Mapper({ loadRows: (ids) => state.nodes.rows(ids), log: app.log, patchIntervalMs: opts.patchIntervalMs });
  await mapper.init();
  hub.connect(mapper);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Weft control API', version: `1 (agent protocol ${PROTOCOL_VERSION})`, description: 'Users, nodes, auth keys and API keys of a Weft deployment.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(websocket, {
    options: { maxPayload: MAX_AGENT_MESSAGE_BYTES },
    // At shutdown agents get 1001 Going Away (reconnect with backoff), not a bare close.
    preClose: function (this: FastifyInstance, done: () => void) {
      hub.close();
      mapper.closeAll(1001, 'server shutting down');
      for (const client of this.websocketServer.clients) client.close(1001, 'server shutting down');
      this.websocketServer.close();
      done();
    },
  });

  app.get('/healthz', { schema: { hide: true } as object }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } as object }, async (_req, reply) => {
    try {
      await state.ping();
      return { status: 'ready', connectedNodes: mapper.connectedCount };
    } catch (err) {
      app.log.warn({ err }, 'database not reachable');
      return reply.code(503).send({ status: 'database unreachable' });
    }
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } as object }, async () => app.swagger());

  await app.register(async (scope) => {
    registerRoute(scope, state);
    logoutRoute(scope, state);
    socketRoute(scope, state, mapper, hub);
    apiRoutes(scope, state);
    loginPage(scope);
  });

  const ephemeralTimeoutS = opts.ephemeralTimeoutS ?? 60;
  const reaper = setInterval(() => {
    state.nodes.reapEphemeral(ephemeralTimeoutS).catch((err: unknown) => app.log.warn({ err }, 'ephemeral node sweep failed'));
  }, Math.max(500, (ephemeralTimeoutS * 1000) / 4));
  reaper.unref();

  app.addHook('onClose', async () => clearInterval(reaper));
  return { app, state, mapper, hub };
}

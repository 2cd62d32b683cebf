/**
 * `buildApp` assembles the control server: state (the one write path), the mapper, the change
 * hub, REST API, agent channel and health checks. It never listens; `main.ts` does.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Database } from '@weft/db';
import { MAX_AGENT_MESSAGE_BYTES, PROTOCOL_VERSION } from '@weft/protocol';
import { logoutRoute } from './agent/logout-route.js';
import { registerRoute } from './agent/register-route.js';
import { socketRoute } from './agent/socket-route.js';
import { Regions, type RegionOptions } from './regions.js';
import { apiRoutes } from './api/routes.js';
import { statusRoute } from './api/status-route.js';
import { backupRoute } from './api/backup-route.js';
import { ChangeHub } from './hub.js';
import type { FollowerTimings } from './outbox-follower.js';
import type { StunCounters } from '@weft/relay';
import { loginPage } from './login-page.js';
import { Mapper } from './mapper/mapper.js';
import { ServerMetrics } from './metrics.js';
import { metricsRoute } from './metrics-endpoint.js';
import { clientErrorHandler, frameworkErrors, installProblemHandler, MAX_PARAM_LENGTH } from './problem-handler.js';
import { AbuseLimits, type AbuseLimitOptions } from './rate-limit.js';
import { installSecurityHeaders } from './security-headers.js';
import { State } from './state/index.js';
import { DEFAULT_WEB_DIR, webUi } from './web-ui.js';
import { LOGIN_REAP_GRACE_S, LOGIN_REAP_INTERVAL_MS, MAX_PENDING_LOGINS, REPLICA_DEAD_AFTER_MS, REPLICA_HEARTBEAT_MS } from './tunables.js';

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
  /** Most unexpired pending logins at once; absent = MAX_PENDING_LOGINS. */
  maxPendingLogins?: number;
  /** Per-address limits; absent = the tunables' defaults. */
  limits?: AbuseLimitOptions;
  /** Addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed; absent = none. */
  trustedProxies?: string[];
  /** Expired pending logins: how often they are swept, and how long after expiry; absent = tunables. */
  loginReapIntervalMs?: number;
  loginReapGraceS?: number;
  /** Change-outbox timings (Postgres); absent = the tunables. */
  outbox?: FollowerTimings;
  /**
   * Prometheus metrics: present = collected (App.metrics); with `token`, also served at `/metrics`
   * on this app's port to that bearer token; with `stun`, its counters as `weft_stun_*`. Absent =
   * nothing measured, no `/metrics`.
   */
  metrics?: { token?: string; stun?: { readonly counters: StunCounters } };
  /** Relay/STUN regions for netmaps (regions.ts); absent = netmaps list none. */
  regions?: RegionOptions;
  /** The admin UI's build (web-ui.ts); absent = apps/web/dist, null = no UI. */
  webDir?: string | null;
}

export interface App {
  app: FastifyInstance;
  state: State;
  mapper: Mapper;
  hub: ChangeHub;
  /** Null when metrics are off. */
  metrics: ServerMetrics | null;
}

export const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Fastify logs two lines per request at info, which buries everything else at the default level:
 * here the same two lines (same fields: bench/lib/join-phases.ts reads them) at debug. A failed
 * request keeps Fastify's error line.
 */
class RequestLogAtDebug extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply, {});
    reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }

  /** A scanner's 404s are requests like any other. */
  override routeNotFound(request: FastifyRequest): void {
    request.log.debug({ method: request.method, url: request.url }, 'route not found');
  }
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: BODY_LIMIT_BYTES,
    logController: new RequestLogAtDebug(),
    clientErrorHandler,
    ...(opts.trustedProxies?.length ? { trustProxy: opts.trustedProxies } : {}),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandler(app);
  installSecurityHeaders(app);

  const metrics = opts.metrics ? new ServerMetrics() : null;
  if (metrics) metrics.instrumentHttp(app);
  if (metrics && opts.metrics?.stun) metrics.stun(opts.metrics.stun.counters);
  const hub = new ChangeHub(opts.db.bus, opts.db.outbox, app.log, opts.outbox, metrics ? (s) => metrics.busReceived(s) : undefined);
  const state = await State.open({
    prisma: metrics ? metrics.instrumentPrisma(opts.db.prisma) : opts.db.prisma,
    record: hub.record,
    emit: hub.emit,
    serverUrl: opts.serverUrl.replace(/\/$/, ''),
    loginTimeoutS: opts.loginTimeoutS ?? 600,
    maxPendingLogins: opts.maxPendingLogins ?? MAX_PENDING_LOGINS,
    replica: { id: hub.origin, log: app.log },
  });
  // Before the mapper loads the nodes, so a crashed predecessor's "online" never reaches a netmap.
  await state.presence.start({ sole: opts.db.backend === 'pglite', deadAfterMs: REPLICA_DEAD_AFTER_MS });
  const limits = new AbuseLimits(opts.limits);
  // Before the mapper loads: every change up to here is in what it loads, later ones are read.
  await hub.start();
  const mapper = new Mapper({ loadRows: (ids) => state.nodes.rows(ids), log: app.log, patchIntervalMs: opts.patchIntervalMs, metrics: metrics?.mapper });
  await mapper.init();
  hub.connect(mapper);
  metrics?.attach({ nodeStates: () => mapper.nodeStates(), sessions: () => mapper.connectedCount, rateLimitRefusals: () => limits.refusals });

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
      // Fleet facts (how many nodes are connected) are for API keys: GET /api/v1/status.
      return { status: 'ready' };
    } catch (err) {
      app.log.warn({ err }, 'database not reachable');
      return reply.code(503).send({ status: 'database unreachable' });
    }
  });
  if (metrics && opts.metrics?.token) metricsRoute(app, metrics, opts.metrics.token);
  app.get('/api/v1/openapi.json', { schema: { hide: true } as object }, async () => app.swagger());

  await app.register(async (scope) => {
    registerRoute(scope, state, limits);
    logoutRoute(scope, state);
    socketRoute(scope, state, mapper, hub, opts.regions ? new Regions(opts.regions) : undefined);
    apiRoutes(scope, state, limits);
    statusRoute(scope, state, limits, mapper);
    backupRoute(scope, state, limits, opts.db);
    loginPage(scope);
    if (opts.webDir !== null) webUi(scope, opts.webDir ?? DEFAULT_WEB_DIR, app.log);
  });

  const ephemeralTimeoutS = opts.ephemeralTimeoutS ?? 60;
  const reaper = setInterval(() => {
    state.nodes.reapEphemeral(ephemeralTimeoutS).catch((err: unknown) => app.log.warn({ err }, 'ephemeral node sweep failed'));
  }, Math.max(500, (ephemeralTimeoutS * 1000) / 4));
  reaper.unref();

  let beating: Promise<void> | null = null;
  const heartbeat = setInterval(() => {
    beating ??= state.presence
      .beat()
      .then(() => state.presence.sweep(REPLICA_DEAD_AFTER_MS))
      .then(
        () => undefined,
        (err: unknown) => app.log.warn({ err }, 'replica heartbeat or sweep failed'),
      )
      .finally(() => (beating = null));
  }, REPLICA_HEARTBEAT_MS);
  heartbeat.unref();

  const loginReaper = setInterval(() => {
    state.logins.reapExpired(opts.loginReapGraceS ?? LOGIN_REAP_GRACE_S).catch((err: unknown) => app.log.warn({ err }, 'expired login sweep failed'));
  }, opts.loginReapIntervalMs ?? LOGIN_REAP_INTERVAL_MS);
  loginReaper.unref();

  app.addHook('onClose', async () => {
    clearInterval(reaper);
    clearInterval(heartbeat);
    clearInterval(loginReaper);
    await beating;
    await state.presence.stop();
  });
  return { app, state, mapper, hub, metrics };
}

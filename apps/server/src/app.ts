/**
 * `buildApp` assembles the control server: state (the one write path), the mapper, the change
 * hub, REST API, agent channel and health checks. It never listens; `main.ts` does.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Database } from '@weft/db';
import { MACHINE_TOKEN_CLOCK_SKEW_S, MAX_AGENT_MESSAGE_BYTES, PROTOCOL_VERSION } from '@weft/protocol';
import { logoutRoute } from './agent/logout-route.js';
import { relayRoute } from './agent/relay-route.js';
import { relayMeshRoute } from './agent/relay-mesh.js';
import { relayRegionRoute } from './agent/relay-region.js';
import { registerRoute } from './agent/register-route.js';
import { socketRoute } from './agent/socket-route.js';
import { linksRoutes } from './api/links-routes.js';
import { LinkStore } from './links.js';
import { serverDoctor } from './doctor.js';
import { authenticate } from './api/auth.js';
import { Regions, type RegionOptions } from './regions.js';
import { apiRoutes } from './api/routes.js';
import { scimRoutes } from './scim/routes.js';
import { statusRoute } from './api/status-route.js';
import { relaySecretRoute } from './api/relay-secret-route.js';
import { backupRoute } from './api/backup-route.js';
import { ChangeHub } from './hub.js';
import type { FollowerTimings } from './outbox-follower.js';
import { MAX_FRAME_BYTES, RelayServer, responderKey, type RelayServerOptions, type StunCounters } from '@weft/relay';
import { loginPage } from './login-page.js';
import { OidcClient, type OidcSettings } from './web/oidc.js';
import { signInRoutes } from './web/sign-in-routes.js';
import { Mapper } from './mapper/mapper.js';
import { ServerMetrics } from './metrics.js';
import { metricsRoute } from './metrics-endpoint.js';
import { clientErrorHandler, frameworkErrors, installProblemHandler, MAX_PARAM_LENGTH } from './problem-handler.js';
import { AbuseLimits, type AbuseLimitOptions } from './rate-limit.js';
import { installSecurityHeaders } from './security-headers.js';
import { State } from './state/index.js';
import { DEFAULT_WEB_DIR, webUi } from './web-ui.js';
import { WgMapping } from './wg-mapping.js';
import type { SessionTimings } from './state/index.js';
import {
  WG_MAPPING_WRITE_INTERVAL_MS, LOGIN_REAP_GRACE_S, LOGIN_REAP_INTERVAL_MS, MAX_PENDING_LOGINS, REPLICA_DEAD_AFTER_MS, REPLICA_HEARTBEAT_MS, SOLE_RESTART_GRACE_MS, SESSION_IDLE_TIMEOUT_MS, SESSION_MAX_AGE_MS,
  SESSION_REAP_INTERVAL_MS, SESSION_TOUCH_INTERVAL_MS, NODE_EXPIRY_SWEEP_INTERVAL_MS,
  LINK_FLUSH_MS, LINK_REFRESH_MS, LINK_WRITE_INTERVAL_MS,
} from './tunables.js';

export interface AppOptions {
  db: Database;
  /** Base URL for links handed to people (login pages). */
  serverUrl: string;
  /** A pino logger; absent = silent. */
  logger?: FastifyBaseLogger;
  loginTimeoutS?: number;
  /** Seconds an ephemeral node may stay offline before it is deleted. */
  ephemeralTimeoutS?: number;
  /**
   * How long a restart may take before the nodes whose agents have not come back go offline
   * (SOLE_RESTART_GRACE_MS): on the embedded database, how long a predecessor's sessions are kept;
   * on either, how long after this server stops gracefully its sessions are kept.
   */
  restartGraceMs?: number;
  /** How long online/endpoint patches are coalesced before going out. */
  patchIntervalMs?: number;
  /** Mapper: most deltas sent per event-loop turn (tests); absent = DELTA_SEND_SLICE. */
  deltaSendSlice?: number;
  /** Mapper: most full netmaps being written at once (absent = NETMAPS_IN_FLIGHT; tests make it 1). */
  netmapsInFlight?: number;
  /** Link-report row writes (links.ts); absent = the tunables (tests shorten them). */
  linkWriteIntervalMs?: number;
  linkFlushMs?: number;
  /** Most unexpired pending logins at once; absent = MAX_PENDING_LOGINS. */
  maxPendingLogins?: number;
  /** Per-address limits; absent = the tunables' defaults. */
  limits?: AbuseLimitOptions;
  /** Addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed; absent = none. */
  trustedProxies?: string[];
  /** Expired pending logins: how often they are swept, and how long after expiry; absent = tunables. */
  loginReapIntervalMs?: number;
  loginReapGraceS?: number;
  /** How often nodes past their key expiry are cut off; absent = NODE_EXPIRY_SWEEP_INTERVAL_MS. */
  expirySweepIntervalMs?: number;
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
  /** The active access policy's text for the mapper (tests pass their own); absent = `activePolicy`. */
  loadPolicy?: () => Promise<string | null>;
  /**
   * The WireGuard responder (wg-mapping.ts): `endpoint` ("ip:port") is the UDP port that hands
   * initiations to `App.wgMapping` (the STUN port; serve.ts wires it), sent to every node in its
   * netmap with the deployment's responder public key. Absent = no responder.
   */
  wgResponder?: { endpoint: string };
  /**
   * Serve HTTPS and WSS with this certificate chain and key (PEM); absent = plain HTTP. Swap the
   * pair later with `app.server.setSecureContext` (tls.ts reloads it); `notAfter` is the
   * `weft_tls_certificate_not_after_seconds` gauge until `metrics.tlsCertificate` is told otherwise.
   */
  https?: { cert: Buffer; key: Buffer; notAfter?: Date };
  /**
   * The embedded packet relay at `GET /api/v1/relay`: absent = on with @weft/relay's defaults
   * (knobs here for tests and benchmarks), false = off (no route: 404).
   */
  relay?: false | Pick<RelayServerOptions, 'maxQueueBytes' | 'maxPacketBytes' | 'pingIntervalMs'>;
  /** Sign-in with an OIDC provider; absent = local accounts only. */
  oidc?: OidcSettings;
  /** Web session timings; absent = the tunables (tests shorten them). */
  sessions?: Partial<SessionTimings>;
  /** The admin UI's build (web-ui.ts); absent = apps/web/dist, null = no UI. */
  webDir?: string | null;
}

/** Form posts of the server's own HTML pages (sign-in, approval), for the web routes only. */
const FORM_BODY_LIMIT_BYTES = 16 * 1024;

export interface App {
  app: FastifyInstance;
  state: State;
  mapper: Mapper;
  hub: ChangeHub;
  /** Null when metrics are off. */
  metrics: ServerMetrics | null;
  /** The served certificate's not-after (serve.ts updates it on a reload), for the doctor; null = plain HTTP. */
  tls: { notAfter: Date | null };
  /** Null without `wgResponder`: feed it the initiations that arrive on the responder's UDP port. */
  wgMapping: WgMapping | null;
  /** Null when the relay is off. */
  relay: RelayServer | null;
  /** The relay mesh's shared secret (for RelayMeshDialer); null when the relay is off. */
  relayMeshSecret: Buffer | null;
  /** Null when no identity provider is configured. */
  oidc: OidcClient | null;
  /** Every route the app registered (method and full path, HEAD included), in order: what the scope tests walk. */
  routes: ReadonlyArray<{ method: string; url: string }>;
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

/** The access policy in force, as the mapper reads it: the stored policy's active version, or null (everyone sees everyone). */
async function activePolicy(state: State): Promise<string | null> {
  return (await state.policy.active())?.text ?? null;
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    // The https server is an http.Server to everything Fastify and ws do with it; typed as plain HTTP here.
    ...(opts.https ? ({ https: { cert: opts.https.cert, key: opts.https.key } } as object) : {}),
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
  if (metrics) metrics.statements(opts.db.statementCount);
  if (metrics && opts.metrics?.stun) metrics.stun(opts.metrics.stun.counters);
  if (metrics && opts.https?.notAfter) metrics.tlsCertificate(opts.https.notAfter);
  const hub = new ChangeHub(opts.db.bus, opts.db.outbox, app.log, opts.outbox, metrics ? (s) => metrics.busReceived(s) : undefined);
  const state = await State.open({
    prisma: metrics ? metrics.instrumentPrisma(opts.db.prisma) : opts.db.prisma,
    record: hub.record,
    emit: hub.emit,
    serverUrl: opts.serverUrl.replace(/\/$/, ''),
    loginTimeoutS: opts.loginTimeoutS ?? 600,
    maxPendingLogins: opts.maxPendingLogins ?? MAX_PENDING_LOGINS,
    replica: { id: hub.origin, log: app.log },
    web: {
      sessions: {
        maxAgeMs: opts.sessions?.maxAgeMs ?? SESSION_MAX_AGE_MS,
        idleTimeoutMs: opts.sessions?.idleTimeoutMs ?? SESSION_IDLE_TIMEOUT_MS,
        touchIntervalMs: opts.sessions?.touchIntervalMs ?? SESSION_TOUCH_INTERVAL_MS,
      },
      adminGroups: opts.oidc?.adminGroups ?? [],
    },
  });
  // Before the mapper loads the nodes, so a crashed predecessor's "online" never reaches a netmap.
  await state.presence.start({ sole: opts.db.backend === 'pglite', deadAfterMs: REPLICA_DEAD_AFTER_MS, graceMs: opts.restartGraceMs ?? SOLE_RESTART_GRACE_MS });
  const limits = new AbuseLimits(opts.limits);
  // Before the mapper loads: every change up to here is in what it loads, later ones are read.
  await hub.start();
  const wgKey = opts.wgResponder ? responderKey(await state.wgResponderPrivateKey()) : null;
  const responders = wgKey && opts.wgResponder ? [{ publicKey: `nodekey:${Buffer.from(wgKey.publicKey).toString('hex')}`, endpoint: opts.wgResponder.endpoint }] : undefined;
  const mapper = new Mapper({
    loadRows: (ids) => state.nodes.rows(ids), loadPolicy: opts.loadPolicy ?? (() => activePolicy(state)), loadDirectoryGroups: () => state.policy.directoryGroups(), log: app.log,
    patchIntervalMs: opts.patchIntervalMs, ...(opts.deltaSendSlice ? { deltaSendSlice: opts.deltaSendSlice } : {}), ...(opts.netmapsInFlight ? { netmapsInFlight: opts.netmapsInFlight } : {}), metrics: metrics?.mapper, ...(responders ? { responders } : {}),
  });
  await mapper.init();
  hub.connect(mapper);
  const wgMapping = wgKey
    ? new WgMapping({ key: wgKey, mapper, write: (id, endpoint) => state.nodes.setReflexive(id, endpoint), intervalMs: WG_MAPPING_WRITE_INTERVAL_MS, log: app.log, maxClockSkewMs: MACHINE_TOKEN_CLOCK_SKEW_S * 1000 })
    : null;
  if (metrics && wgMapping) metrics.wgResponder(wgMapping.counters);
  metrics?.attach({ nodeStates: () => mapper.nodeStates(), sessions: () => mapper.connectedCount, rateLimitRefusals: () => limits.refusals });
  const relay = opts.relay === false ? null : new RelayServer({ ...opts.relay, mayRelay: (src, dst) => mapper.mayRelay(src, dst) });
  if (metrics && relay) metrics.relay(relay);
  const relayMeshSecret = relay ? await state.relayMeshSecret() : null;
  const links = new LinkStore({
    write: (rows) => state.links.upsert(rows),
    onError: (err) => app.log.warn({ err }, 'failed to store link reports'),
    writeIntervalMs: opts.linkWriteIntervalMs ?? LINK_WRITE_INTERVAL_MS, refreshMs: LINK_REFRESH_MS, flushMs: opts.linkFlushMs ?? LINK_FLUSH_MS,
  });
  if (metrics) metrics.links(links);

  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Weft control API', version: `1 (agent protocol ${PROTOCOL_VERSION})`, description: 'Users, nodes, auth keys and API keys of a Weft deployment.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(websocket, {
    // One WebSocket server for both routes: it admits relay frames; the agent channel checks its
    // own smaller limit per message (agent-message.ts).
    options: { maxPayload: Math.max(MAX_AGENT_MESSAGE_BYTES, MAX_FRAME_BYTES) },
    // At shutdown agents get 1001 Going Away (reconnect with backoff), not a bare close.
    preClose: function (this: FastifyInstance, done: () => void) {
      hub.close();
      mapper.closeAll(1001, 'server shutting down');
      relay?.close(1001, 'server shutting down');
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
  const tlsState = { notAfter: opts.https?.notAfter ?? null };
  app.get('/api/v1/doctor', { schema: { tags: ['server'], summary: 'The replica checks itself (weft-server doctor): database, migrations, bus, STUN, relay, TLS, clock' } }, async (req) => {
    await authenticate(req, state, limits, 'admin');
    return serverDoctor({
      prisma: opts.db.prisma, backend: opts.db.backend,
      bus: hub.follower && opts.db.outbox ? {
        position: () => hub.follower!.position,
        head: () => opts.db.outbox!.head(),
        oldestAfter: async (position) => {
          const page = await opts.db.outbox!.after(position, 1);
          return { head: page.head, ageMs: page.rows[0] ? page.now - page.rows[0].createdAt : null };
        },
      } : null,
      stunPort: opts.regions?.embeddedStunPort ?? null, relay, tlsNotAfter: () => tlsState.notAfter,
      listener: () => {
        const addr = app.server.address();
        return addr && typeof addr === 'object' ? { host: addr.address, port: addr.port, tls: Boolean(opts.https) } : null;
      },
    });
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } as object }, async () => app.swagger());

  await app.register(async (scope) => {
    registerRoute(scope, state, limits);
    logoutRoute(scope, state);
    socketRoute(scope, state, mapper, hub, links, opts.regions ? new Regions(opts.regions) : undefined);
    if (relay) relayRoute(scope, state, mapper, relay);
    if (relay && relayMeshSecret) relayMeshRoute(scope, relay, relayMeshSecret, app.log);
    if (relay && relayMeshSecret) relayRegionRoute(scope, { state, mapper, relay, secret: relayMeshSecret, selfReplica: hub.origin, log: app.log });
    apiRoutes(scope, state, limits);
    linksRoutes(scope, state, limits, links);
    statusRoute(scope, state, limits, mapper);
    backupRoute(scope, state, limits, opts.db);
    relaySecretRoute(scope, state, limits);
  });
  await scimRoutes(app, state, limits);
  const oidc = opts.oidc ? new OidcClient(opts.oidc) : null;
  await app.register(async (web) => {
    web.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT_BYTES }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    signInRoutes(web, state, limits, oidc);
    loginPage(web, state);
    if (opts.webDir !== null) webUi(web, opts.webDir ?? DEFAULT_WEB_DIR, app.log);
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

  let sweepingExpiry: Promise<void> | null = null;
  const expirySweeper = setInterval(() => {
    sweepingExpiry ??= state.nodes
      .sweepExpired()
      .then(
        () => undefined,
        (err: unknown) => app.log.warn({ err }, 'node key expiry sweep failed'),
      )
      .finally(() => (sweepingExpiry = null));
  }, opts.expirySweepIntervalMs ?? NODE_EXPIRY_SWEEP_INTERVAL_MS);
  expirySweeper.unref();

  const sessionReaper = setInterval(() => {
    state.sessions.reapExpired().catch((err: unknown) => app.log.warn({ err }, 'expired session sweep failed'));
  }, SESSION_REAP_INTERVAL_MS);
  sessionReaper.unref();

  app.addHook('onClose', async () => {
    clearInterval(sessionReaper);
    clearInterval(expirySweeper);
    await sweepingExpiry;
    clearInterval(reaper);
    clearInterval(heartbeat);
    clearInterval(loginReaper);
    await beating;
    await wgMapping?.close();
    await links.close();
    state.nat.stop();
    await state.presence.stop({ keepSessionsMs: opts.restartGraceMs ?? SOLE_RESTART_GRACE_MS });
  });
  return { app, state, mapper, hub, metrics, wgMapping, relay, relayMeshSecret, oidc, tls: tlsState, routes };
}

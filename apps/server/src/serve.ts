/** `weft-server serve`: read config, open storage, listen, shut down cleanly on SIGTERM/SIGINT. */
import { openDatabase, prepareDataDir } from '@weft/db';
import { RELAY_HTTP_PATH, relayOverStunPort, StunServer, type StunLog } from '@weft/relay';
import { buildApp } from './app.js';
import { RelayMeshDialer } from './agent/relay-mesh.js';
import { shellWord, startHint } from './cli/hints.js';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError, loadConfig, oidcSettings } from './config.js';
import type { FollowerTimings } from './outbox-follower.js';
import { adminSocketPath, listenAdminSocket } from './local-socket.js';
import { listenMetrics } from './metrics-endpoint.js';
import { createLogger } from './log.js';
import type { Server as TlsServer } from 'node:tls';
import { loadTlsPair, TlsReloader } from './tls.js';
import { LISTEN_BACKLOG } from './tunables.js';

export async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  // First, before the data dir and the database: a STUN port that is taken stops start-up at once.
  const stun = await startStun(config.stunListen, log);
  // Owner-only or refused, before anything is created in it: it holds the admin socket (and the embedded database).
  prepareDataDir(config.dataDir);
  const [host, port] = splitHostPort(config.listen);
  const scheme = config.tlsCert ? 'https' : 'http';
  const serverUrl = config.serverUrl ?? `${scheme}://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
  // Checked by loadConfig already; read again here, right before it is served.
  const tls = config.tlsCert && config.tlsKey ? loadTlsPair(config.tlsCert, config.tlsKey) : undefined;

  const db = await openDatabase(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: config.dataDir }, log);
  const metricsOn = config.metricsListen !== undefined || config.metricsToken !== undefined;
  const responderEndpoint = stun ? await wgResponderEndpoint(serverUrl, stun, log) : undefined;
  const { app, state, metrics, mapper, wgMapping, relay, relayMeshSecret, tls: tlsState } = await buildApp({ db, serverUrl, logger: log, loginTimeoutS: config.loginTimeout, ephemeralTimeoutS: config.ephemeralTimeout,
    maxPendingLogins: config.maxPendingLogins, trustedProxies: config.trustedProxies, outbox: outboxTimings(process.env),
    regions: { embeddedStunPort: stun ? stun.address().port : null, extra: config.regions },
    ...(config.relay === 'off' ? { relay: false as const } : {}),
    ...(metricsOn ? { metrics: { token: config.metricsToken, stun } } : {}),
    ...(responderEndpoint ? { wgResponder: { endpoint: responderEndpoint } } : {}),
    ...(tls ? { https: tls } : {}),
    oidc: oidcSettings(config, serverUrl),
  });
  if (stun && wgMapping) stun.wireGuard = (msg, from) => wgMapping.receive(msg, from);
  // The relay over UDP shares the STUN port: a node whose UDP works relays without TCP under its tunnel.
  if (stun && relay) relayOverStunPort(relay, stun);
  const reloader = tls && config.tlsCert && config.tlsKey
    ? new TlsReloader({
        certPath: config.tlsCert, keyPath: config.tlsKey, initial: tls, log, pollMs: testTlsPollMs(process.env),
        apply: (pair) => {
          (app.server as unknown as TlsServer).setSecureContext({ cert: pair.cert, key: pair.key });
          metrics?.tlsCertificate(pair.notAfter);
          tlsState.notAfter = pair.notAfter;
        },
      })
    : null;
  await app.listen({ host, port, backlog: LISTEN_BACKLOG });
  // Replicas behind one address: link to every peer replica's relay (after listen: they link to ours too).
  const mesh = relay && relayMeshSecret && config.relayMeshUrl && config.relayMeshPeers.length
    ? new RelayMeshDialer({ relay, secret: relayMeshSecret, selfUrl: config.relayMeshUrl, peers: config.relayMeshPeers, log })
    : null;
  const admin = await listenAdminSocket(app, config.dataDir);
  const metricsServer = metrics && config.metricsListen ? await listenMetrics(metrics, ...splitHostPort(config.metricsListen)) : null;

  const where = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const [users, nodes, localAccount] = await Promise.all([state.ctx.prisma.user.count(), state.ctx.prisma.node.count(), state.localAccounts.any()]);
  process.stderr.write(
    `\nWeft control server listening on ${where} (${db.backend === 'pglite' ? `embedded database in ${config.dataDir}` : 'Postgres'})\n` +
      `Agents and browsers use ${serverUrl}\n` +
      (tls ? `TLS certificate: ${tls.subject}, valid until ${tls.notAfter.toISOString()} (reloaded when ${config.tlsCert} or ${config.tlsKey} changes)\n` : '') +
      `STUN (udp): ${stun ? stun.toString() : 'off'}\n` +
      (mesh ? `Relay mesh: ${config.relayMeshUrl} linking to ${config.relayMeshPeers.join(', ')}\n` : '') +
      (responderEndpoint ? `WireGuard responder (udp, same port): nodes send to ${responderEndpoint}\n` : '') +
      `Relay: ${config.relay === 'off' ? 'off' : `${serverUrl.replace(/^http/, 'ws')}${RELAY_HTTP_PATH}${stun ? `, and udp on the STUN port ${stun.address().port}` : ''}`}\n` +
      `Admin socket: ${adminSocketPath(config.dataDir)}\n` +
      (config.metricsListen ? `Metrics: http://${config.metricsListen}/metrics\n` : '') +
      (config.metricsToken ? `Metrics: ${where}/metrics (bearer metrics token)\n` : '') +
      `Web sign-in: ${serverUrl}/auth/login (${config.oidcIssuer ? `OIDC ${config.oidcIssuer}, and local accounts` : 'local accounts'})\n` +
      '\n' +
      startHint(users, nodes, shellWord(config.dataDir), localAccount),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    admin.close();
    mesh?.close();
    reloader?.close();
    metricsServer?.close();
    await stun?.close();
    await app.close();
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** The embedded STUN service, or undefined when `stunListen` is `off`. A bind failure is a ConfigError naming the key. */
async function startStun(listen: string, log: StunLog): Promise<StunServer | undefined> {
  if (listen === 'off') return undefined;
  try {
    return await StunServer.listen({ listen, log });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new ConfigError(
      `cannot listen for STUN on udp ${listen}: ${why}.\n  Set "stun-listen" (config stunListen, WEFT_STUN_LISTEN, --stun-listen) to another HOST:PORT, or to off.`,
    );
  }
}

/**
 * Where nodes send initiations to the responder key: the STUN port at the address agents reach
 * the server at (the server URL's host, resolved if it is a name; else the STUN address if it is
 * not a wildcard). None found = no responder, said once.
 */
async function wgResponderEndpoint(serverUrl: string, stun: StunServer, log: StunLog): Promise<string | undefined> {
  const bound = stun.address();
  const urlHost = new URL(serverUrl).hostname.replace(/^\[|\]$/g, '');
  let host: string | undefined = isIP(urlHost) ? urlHost : undefined;
  if (!host) {
    try {
      host = (await lookup(urlHost)).address;
    } catch (err) {
      log.warn({ err, host: urlHost }, 'cannot resolve the server URL host');
    }
  }
  if (!host && bound.host !== '0.0.0.0' && bound.host !== '::') host = bound.host;
  if (!host || host === '0.0.0.0' || host === '::') {
    log.warn({ serverUrl }, 'no address for the WireGuard responder (set --server-url to an address nodes reach): nodes will not learn their reflexive endpoints');
    return undefined;
  }
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)?.[1] ?? host;
  return v4.includes(':') ? `[${v4}]:${bound.port}` : `${v4}:${bound.port}`;
}

/**
 * Tests only: `WEFT_TEST_OUTBOX` = JSON FollowerTimings (short catch-up and retention, hints
 * ignored), so multi-process tests can exercise the outbox's repair paths in seconds.
 */
const TestOutbox = z.strictObject({
  catchUpIntervalMs: z.number().int().positive().optional(),
  retentionMs: z.number().int().positive().optional(),
  pruneIntervalMs: z.number().int().positive().optional(),
  ignoreHints: z.boolean().optional(),
});

function outboxTimings(env: NodeJS.ProcessEnv): FollowerTimings | undefined {
  const raw = env.WEFT_TEST_OUTBOX;
  if (!raw) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`WEFT_TEST_OUTBOX must be JSON: ${(err as Error).message}`);
  }
  const parsed = TestOutbox.safeParse(json);
  if (!parsed.success) throw new ConfigError(`WEFT_TEST_OUTBOX: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** Tests only: `WEFT_TEST_TLS_POLL_MS` polls the certificate files faster than TLS_RELOAD_POLL_MS. */
function testTlsPollMs(env: NodeJS.ProcessEnv): number | undefined {
  const n = Number(env.WEFT_TEST_TLS_POLL_MS);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

function splitHostPort(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(listen.slice(i + 1))];
}

/** `weft-server serve`: read config, open storage, listen, shut down cleanly on SIGTERM/SIGINT. */
import { mkdirSync } from 'node:fs';
import { openDatabase } from '@weft/db';
import { buildApp } from './app.js';
import { shellWord, startHint } from './cli/hints.js';
import { loadConfig } from './config.js';
import { adminSocketPath, listenAdminSocket } from './local-socket.js';
import { listenMetrics } from './metrics-endpoint.js';
import { createLogger } from './log.js';

export async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const [host, port] = splitHostPort(config.listen);
  const serverUrl = config.serverUrl ?? `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;

  const db = await openDatabase(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: config.dataDir }, log);
  const metricsOn = config.metricsListen !== undefined || config.metricsToken !== undefined;
  const { app, state, metrics } = await buildApp({ db, serverUrl, logger: log, loginTimeoutS: config.loginTimeout, ephemeralTimeoutS: config.ephemeralTimeout,
    maxPendingLogins: config.maxPendingLogins, trustedProxies: config.trustedProxies,
    ...(metricsOn ? { metrics: { token: config.metricsToken } } : {}),
  });
  await app.listen({ host, port });
  const admin = await listenAdminSocket(app, config.dataDir);
  const metricsServer = metrics && config.metricsListen ? await listenMetrics(metrics, ...splitHostPort(config.metricsListen)) : null;

  const where = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const [users, nodes] = await Promise.all([state.ctx.prisma.user.count(), state.ctx.prisma.node.count()]);
  process.stderr.write(
    `\nWeft control server listening on ${where} (${db.backend === 'pglite' ? `embedded database in ${config.dataDir}` : 'Postgres'})\n` +
      `Agents and browsers use ${serverUrl}\n` +
      `Admin socket: ${adminSocketPath(config.dataDir)}\n` +
      (config.metricsListen ? `Metrics: http://${config.metricsListen}/metrics\n` : '') +
      (config.metricsToken ? `Metrics: ${where}/metrics (bearer metrics token)\n` : '') +
      '\n' +
      startHint(users, nodes, shellWord(config.dataDir)),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    admin.close();
    metricsServer?.close();
    await app.close();
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function splitHostPort(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(listen.slice(i + 1))];
}

/** `weft-server serve`: read config, open storage, listen, shut down cleanly on SIGTERM/SIGINT. */
import pino from 'pino';
import { openDatabase, prepareDataDir } from '@weft/db';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { adminSocketPath, listenAdminSocket } from './local-socket.js';

export async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  const log = pino({ level: config.logLevel, redact: ['req.headers.authorization', '*.authKey', '*.key'] });
  // Owner-only or refused, before anything is created in it: it holds the admin socket (and the embedded database).
  prepareDataDir(config.dataDir);
  const [host, port] = splitHostPort(config.listen);
  const serverUrl = config.serverUrl ?? `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;

  const db = await openDatabase(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: config.dataDir }, log);
  const { app } = await buildApp({ db, serverUrl, logger: log, loginTimeoutS: config.loginTimeout, ephemeralTimeoutS: config.ephemeralTimeout });
  await app.listen({ host, port });
  const admin = await listenAdminSocket(app, config.dataDir);

  const where = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  process.stderr.write(
    `\nWeft control server listening on ${where} (${db.backend === 'pglite' ? `embedded database in ${config.dataDir}` : 'Postgres'})\n` +
      `Agents and browsers use ${serverUrl}\n` +
      `Admin socket: ${adminSocketPath(config.dataDir)}\n\n` +
      `Add the first user and an auth key:\n` +
      `  weft-server users create alice --data-dir ${config.dataDir}\n` +
      `  weft-server authkeys create --user alice --data-dir ${config.dataDir}\n\n`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    admin.close();
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

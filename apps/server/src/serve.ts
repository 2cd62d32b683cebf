/** `weft-server serve`: read config, open storage, listen, shut down cleanly on SIGTERM/SIGINT. */
import { mkdirSync } from 'node:fs';
import { openDatabase } from '@weft/db';
import { buildApp } from './app.js';
import { shellWord, startHint } from './cli/hints.js';
import { z } from 'zod';
import { ConfigError, loadConfig } from './config.js';
import type { FollowerTimings } from './outbox-follower.js';
import { adminSocketPath, listenAdminSocket } from './local-socket.js';
import { createLogger } from './log.js';

export async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const [host, port] = splitHostPort(config.listen);
  const serverUrl = config.serverUrl ?? `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;

  const db = await openDatabase(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: config.dataDir }, log);
  const { app, state } = await buildApp({ db, serverUrl, logger: log, loginTimeoutS: config.loginTimeout, ephemeralTimeoutS: config.ephemeralTimeout,
    maxPendingLogins: config.maxPendingLogins, trustedProxies: config.trustedProxies, outbox: outboxTimings(process.env),
  });
  await app.listen({ host, port });
  const admin = await listenAdminSocket(app, config.dataDir);

  const where = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const [users, nodes] = await Promise.all([state.ctx.prisma.user.count(), state.ctx.prisma.node.count()]);
  process.stderr.write(
    `\nWeft control server listening on ${where} (${db.backend === 'pglite' ? `embedded database in ${config.dataDir}` : 'Postgres'})\n` +
      `Agents and browsers use ${serverUrl}\n` +
      `Admin socket: ${adminSocketPath(config.dataDir)}\n\n` +
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
    await app.close();
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
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

function splitHostPort(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(listen.slice(i + 1))];
}

/** `weft daemon`: root check, state, device, local API, signals. */
import { openDevice } from '@weft/wg';
import { Agent } from '../../agent.js';
import { forcedRelay } from '../../path-choice.js';
import { relayTransport } from '../../relay-path.js';
import { DEFAULT_MTU, STALE_HANDSHAKE_ENV, staleHandshakeS } from '../../tunables.js';
import { createLocalApi, listenLocal } from '../../local-api.js';
import { createLogger } from '../../log.js';
import { DEFAULT_INTERFACE, DEFAULT_LISTEN_PORT, DEFAULT_STATE_DIR, resolveSocket } from '../../paths.js';
import { StateStore } from '../../state-store.js';
import { warmUp } from '../../warm-up.js';
import type { Parsed } from '../args.js';
import { CliError, ExitCode } from '../exit-codes.js';

export async function daemon(args: Parsed): Promise<number> {
  if (process.getuid?.() !== 0) {
    throw new CliError('weft daemon needs root to create and program the WireGuard interface', ExitCode.NotRoot,
      'Run it as root: sudo weft daemon (or through the systemd unit)');
  }
  // A bad WEFT_RELAY_TRANSPORT is refused here, before anything starts, not when the relay first connects.
  try {
    relayTransport(process.env);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.Usage, 'Unset it (relay over the WebSocket) or set WEFT_RELAY_TRANSPORT=udp');
  }
  const log = createLogger(args.logFormat ?? (process.stderr.isTTY ? 'text' : 'json'));
  const stateDir = args.stateDir ?? DEFAULT_STATE_DIR;
  const socket = resolveSocket(args);
  let staleAfterS: number;
  try {
    staleAfterS = staleHandshakeS(process.env[STALE_HANDSHAKE_ENV]);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.Usage, `Unset ${STALE_HANDSHAKE_ENV} for the default (180 s)`);
  }
  const agent = new Agent({
    store: new StateStore(stateDir),
    openDevice,
    interfaceName: args.interfaceName ?? DEFAULT_INTERFACE,
    backend: args.backend ?? 'auto',
    listenPort: args.listenPort ?? DEFAULT_LISTEN_PORT,
    mtu: args.mtu ?? DEFAULT_MTU,
    // --mtu pins the interface MTU; without it the MTU follows the paths in use (it starts at DEFAULT_MTU).
    adaptiveMtu: args.mtu === undefined,
    log,
    forceRelay: forcedRelay(process.env.WEFT_RELAY_PEERS),
    staleHandshakeS: staleAfterS,
  });
  // A bug in one handler must not take the data plane down with the process; log it loudly.
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { error: (err as Error)?.stack ?? String(err) }));
  // Before the socket exists: a CLI started as soon as the daemon is ready must not share the CPU with it.
  await warmUp().catch((err: Error) => log('debug', 'warm-up failed', { error: err.message }));
  const api = createLocalApi(agent, log);
  try {
    await listenLocal(api, socket);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.Generic);
  }
  log('info', 'weft daemon listening', { socket, stateDir, pid: process.pid });
  await agent.start();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log('info', 'shutting down', { signal });
      api.close();
      api.closeAllConnections();
      const force = setTimeout(() => resolve(ExitCode.Generic), 10_000);
      force.unref();
      void agent.shutdown().finally(() => {
        clearTimeout(force);
        resolve(ExitCode.Ok);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

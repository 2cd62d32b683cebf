/**
 * `weft-relay`: a standalone relay region. The STUN service from @weft/relay, on one UDP port
 * served by `--workers` processes (SO_REUSEPORT: the kernel spreads peers over them; each process
 * is one event loop, so this is how the STUN service uses more than one core); with `--server`,
 * also the packet relay (region-relay.ts: WebSocket on `--listen`, UDP on the STUN port), in one
 * process, linked to that control server.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { StunServer } from '@weft/relay';
import { RegionRelay } from './region-relay.js';
import { parseArgs, USAGE, UsageError } from './args.js';
import { RELAY_VERSION } from './version.js';

/** Set in the processes the first one forks: the port they join. */
const WORKER_ENV = 'WEFT_RELAY_WORKER_OF';

const argv = process.argv.slice(2);
if (argv.some((a) => a === '--help' || a === '-h' || a === 'help')) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
if (argv.some((a) => a === '--version' || a === '-V' || a === 'version')) {
  process.stdout.write(`weft-relay ${RELAY_VERSION}\n`);
  process.exit(0);
}

const log = {
  warn: (obj: object, msg: string) => process.stderr.write(JSON.stringify({ level: 'warn', msg, ...obj }) + '\n'),
  info: (obj: object, msg: string) => process.stderr.write(JSON.stringify({ level: 'info', msg, ...obj }) + '\n'),
  debug: () => {},
};

try {
  const args = parseArgs(argv, process.env);
  const worker = process.env[WORKER_ENV];
  let stun: StunServer | undefined;
  try {
    if (args.stunListen !== 'off') stun = await StunServer.listen({ listen: args.stunListen, log, reusePort: args.workers > 1 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new UsageError(`cannot listen for STUN on udp ${args.stunListen}: ${why}; pass --stun-listen HOST:PORT (or WEFT_STUN_LISTEN)${args.workers > 1 ? ', or --workers 1' : ''}`);
  }
  const where = stun?.toString() ?? 'off';
  let region: RegionRelay | undefined;
  if (args.relay) {
    try {
      region = await RegionRelay.start({ listen: args.relay.listen, serverUrls: args.relay.serverUrls, secret: args.relay.secret, replicaId: args.relay.name, stun, log });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
      await stun?.close();
      throw new UsageError(`cannot listen for the relay on tcp ${args.relay.listen}: ${why}; pass --listen HOST:PORT (or WEFT_RELAY_LISTEN)`);
    }
  }
  const children: ChildProcess[] = [];
  let stopping = false;
  if (worker) {
    // A worker lives as long as the process that forked it.
    process.on('disconnect', () => void stun?.close().then(() => process.exit(0)));
    process.send?.('ready');
  } else {
    // The others join the port this one bound (its real number when --stun-listen said port 0).
    for (let i = 1; i < args.workers; i++) {
      const child = fork(process.argv[1]!, [...argv.filter((a, j) => !(a.startsWith('--stun-listen') || argv[j - 1] === '--stun-listen')), '--stun-listen', where], {
        env: { ...process.env, [WORKER_ENV]: where },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('exit', (code, signal) => {
        if (!stopping) process.stderr.write(`weft-relay: worker ${child.pid} exited (${code ?? signal}); the others keep serving\n`);
      });
      children.push(child);
    }
    // Announce the port once every process serves it.
    const ready = await Promise.all(children.map((c) => new Promise<boolean>((r) => {
      c.once('message', () => r(true));
      c.once('exit', () => r(false));
    })));
    if (ready.includes(false)) {
      for (const c of children) c.kill('SIGTERM');
      throw new Error(`${ready.filter((x) => !x).length} of ${args.workers - 1} worker processes failed to start (their errors are above)`);
    }
    process.stderr.write(`weft-relay ${RELAY_VERSION}: STUN (udp) on ${where}${args.workers > 1 ? ` (${args.workers} processes)` : ''}${stun ? `, ${stun.io === 'native' ? 'batched I/O (recvmmsg/sendmmsg)' : 'node:dgram'}` : ''}\n`);
    if (region) {
      const a = region.address();
      process.stderr.write(`weft-relay: relay (http) on ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}${stun ? `, relay over udp on the STUN port` : ''}, control server ${args.relay!.serverUrls.join(', ')}\n`);
    }
  }
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const exited = children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise<void>((r) => c.once('exit', () => r())) : Promise.resolve()));
    for (const c of children) c.kill('SIGTERM');
    await region?.close();
    await stun?.close();
    await Promise.all(exited);
    process.stderr.write(`weft-relay${worker ? ` worker ${process.pid}` : ''}: ${signal}, stopped (${JSON.stringify({ ...stun?.counters, ...(region ? { relay: region.relay.counters } : {}) })})\n`);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`weft-relay: ${err.message}\n\nRun weft-relay --help for the flags.\n`);
    process.exit(2);
  }
  process.stderr.write(`weft-relay: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}

/**
 * `weft-relay`: a standalone relay region. Today: the STUN service from @weft/relay on one UDP
 * socket. The packet relay (WebSocket and UDP) joins here in a later slice of the NAT work.
 */
import { StunServer } from '@weft/relay';
import { parseArgs, USAGE, UsageError } from './args.js';
import { RELAY_VERSION } from './version.js';

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
  debug: () => {},
};

try {
  const args = parseArgs(argv, process.env);
  let stun: StunServer;
  try {
    stun = await StunServer.listen({ listen: args.stunListen, log });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new UsageError(`cannot listen for STUN on udp ${args.stunListen}: ${why}; pass --stun-listen HOST:PORT (or WEFT_STUN_LISTEN)`);
  }
  process.stderr.write(`weft-relay ${RELAY_VERSION}: STUN (udp) on ${stun.toString()}\n`);
  const stop = async (signal: string) => {
    process.stderr.write(`weft-relay: ${signal}, stopping (${JSON.stringify(stun.counters)})\n`);
    await stun.close();
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

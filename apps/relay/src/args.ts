/** `weft-relay` flags and environment, validated once; a bad value names the flag. */
import { DEFAULT_PORT, parseListenAddress } from '@weft/relay';

export const USAGE = `Usage: weft-relay [--stun-listen HOST:PORT] [--workers N]
       weft-relay --help | --version
  A standalone Weft relay region. For now it runs the STUN service only (RFC 8489 Binding, UDP);
  the DERP-style packet relay comes in a later release.
  --stun-listen   UDP host:port of the STUN service (env WEFT_STUN_LISTEN; default 0.0.0.0:${DEFAULT_PORT});
                  [::]:PORT answers IPv4 and IPv6
  --workers       processes sharing the STUN port, e.g. one per core (env WEFT_RELAY_WORKERS; default 1;
                  more than 1 needs Linux and Node.js 22.12 or newer)`;

export class UsageError extends Error {}

export interface RelayArgs {
  stunListen: string;
  workers: number;
}

/** The most --workers takes: far more than any machine's cores, to catch a typo. */
const MAX_WORKERS = 256;

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): RelayArgs {
  let stunListen = env.WEFT_STUN_LISTEN || `0.0.0.0:${DEFAULT_PORT}`;
  let from = env.WEFT_STUN_LISTEN ? 'environment variable WEFT_STUN_LISTEN' : 'default';
  let workersText = env.WEFT_RELAY_WORKERS || '1';
  let workersFrom = env.WEFT_RELAY_WORKERS ? 'environment variable WEFT_RELAY_WORKERS' : 'default';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name !== '--stun-listen' && name !== '--workers') throw new UsageError(`unknown argument ${name} (known: --stun-listen, --workers, --help, --version)`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag ${name} needs a value`);
    if (name === '--workers') {
      workersText = value;
      workersFrom = 'flag --workers';
    } else {
      stunListen = value;
      from = 'flag --stun-listen';
    }
  }
  const workers = Number(workersText);
  if (!/^\d+$/.test(workersText) || workers < 1 || workers > MAX_WORKERS) throw new UsageError(`"workers" (${workersFrom}): "${workersText}" is not a whole number from 1 to ${MAX_WORKERS}`);
  // The STUN service is all this release runs, so it cannot be turned off here.
  if (stunListen === 'off') throw new UsageError(`"stun-listen" (${from}): off would leave weft-relay nothing to do (the packet relay is not in this release)`);
  try {
    parseListenAddress(stunListen);
  } catch (err) {
    throw new UsageError(`"stun-listen" (${from}): ${(err as Error).message}`);
  }
  return { stunListen, workers };
}

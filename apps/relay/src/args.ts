/** `weft-relay` flags and environment, validated once; a bad value names the flag. */
import { DEFAULT_PORT, parseListenAddress } from '@weft/relay';

export const USAGE = `Usage: weft-relay [--stun-listen HOST:PORT]
       weft-relay --help | --version
  A standalone Weft relay region. For now it runs the STUN service only (RFC 8489 Binding, UDP);
  the DERP-style packet relay comes in a later release.
  --stun-listen   UDP host:port of the STUN service (env WEFT_STUN_LISTEN; default 0.0.0.0:${DEFAULT_PORT});
                  [::]:PORT answers IPv4 and IPv6`;

export class UsageError extends Error {}

export interface RelayArgs {
  stunListen: string;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): RelayArgs {
  let stunListen = env.WEFT_STUN_LISTEN || `0.0.0.0:${DEFAULT_PORT}`;
  let from = env.WEFT_STUN_LISTEN ? 'environment variable WEFT_STUN_LISTEN' : 'default';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name !== '--stun-listen') throw new UsageError(`unknown argument ${name} (known: --stun-listen, --help, --version)`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag ${name} needs a value`);
    stunListen = value;
    from = 'flag --stun-listen';
  }
  // The STUN service is all this release runs, so it cannot be turned off here.
  if (stunListen === 'off') throw new UsageError(`"stun-listen" (${from}): off would leave weft-relay nothing to do (the packet relay is not in this release)`);
  try {
    parseListenAddress(stunListen);
  } catch (err) {
    throw new UsageError(`"stun-listen" (${from}): ${(err as Error).message}`);
  }
  return { stunListen };
}

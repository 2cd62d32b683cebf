/** Default locations, and the rule that lets several daemons run side by side (one per netns). */
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/weft';
export const DEFAULT_SOCKET = '/var/run/weft/weftd.sock';
export const DEFAULT_INTERFACE = 'weft0';
/** Same default as Tailscale's; a fixed port keeps endpoints stable across restarts. */
export const DEFAULT_LISTEN_PORT = 41641;

/**
 * --socket, else $WEFT_SOCKET, else `<state-dir>/weftd.sock` when --state-dir was given (so
 * `weft status --state-dir X` finds `weft daemon --state-dir X`), else the system default.
 */
export function resolveSocket(flags: { socket?: string | undefined; stateDir?: string | undefined }, env: NodeJS.ProcessEnv = process.env): string {
  if (flags.socket) return flags.socket;
  if (env.WEFT_SOCKET) return env.WEFT_SOCKET;
  if (flags.stateDir) return join(flags.stateDir, 'weftd.sock');
  return DEFAULT_SOCKET;
}

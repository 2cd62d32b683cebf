/** Default locations, and the rule that lets several daemons run side by side (one per netns). */
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/weft';
/** In systemd's RuntimeDirectory of the shipped unit (deploy/systemd/weft.service: RuntimeDirectory=weft). */
export const DEFAULT_SOCKET = '/run/weft/weftd.sock';
export const SOCKET_ENV = 'WEFT_SOCKET';
export const SOCKET_NAME = 'weftd.sock';
export const DEFAULT_INTERFACE = 'weft0';
/** Same default as Tailscale's; a fixed port keeps endpoints stable across restarts. */
export const DEFAULT_LISTEN_PORT = 41641;
/** The systemd unit deploy/systemd/weft.service installs as; hints name it. */
export const SYSTEMD_UNIT = 'weft';

/**
 * Where the CLI and the daemon look for the control socket, first match wins. `resolveSocket`
 * walks this list and `weft --help` prints it, so the two cannot disagree.
 */
export const SOCKET_LOOKUP: readonly { describe: string; pick: (flags: SocketFlags, env: NodeJS.ProcessEnv) => string | undefined }[] = [
  { describe: '--socket PATH', pick: (f) => f.socket || undefined },
  { describe: `$${SOCKET_ENV}`, pick: (_f, env) => env[SOCKET_ENV] || undefined },
  // So `weft status --state-dir X` finds `weft daemon --state-dir X`.
  { describe: `DIR/${SOCKET_NAME} with --state-dir DIR`, pick: (f) => (f.stateDir ? join(f.stateDir, SOCKET_NAME) : undefined) },
  { describe: DEFAULT_SOCKET, pick: () => DEFAULT_SOCKET },
];

export interface SocketFlags { socket?: string | undefined; stateDir?: string | undefined }

export function resolveSocket(flags: SocketFlags, env: NodeJS.ProcessEnv = process.env): string {
  for (const step of SOCKET_LOOKUP) {
    const path = step.pick(flags, env);
    if (path !== undefined) return path;
  }
  return DEFAULT_SOCKET;
}

/** The lookup as numbered lines, for help texts. */
export function socketLookupLines(): string[] {
  return SOCKET_LOOKUP.map((s, i) => `  ${i + 1}. ${s.describe}`);
}

/**
 * Next steps the CLI prints are commands that work as typed: they carry the flags this run used to
 * reach its server (`--data-dir`, `--socket`, `--server`), so a copy in the same shell reaches the
 * same server. What came from the environment (WEFT_DATA_DIR, WEFT_SERVER, WEFT_API_KEY) is left
 * out: the same shell still has it.
 */
import { resolve } from 'node:path';

/** The secret is never echoed: a `--api-key` passed as a flag comes back as this placeholder. */
export const API_KEY_PLACEHOLDER = 'KEY';

/** The flags as given on this command line (not from the environment). */
export interface ReachFlags { dataDir?: string | undefined; socket?: string | undefined; server?: string | undefined; apiKeyFlag?: boolean }

/** A word the shell reads back unchanged. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The flags, with a leading space, that make a printed command reach the same server; '' if none are needed. */
export function reachFlags(f: ReachFlags): string {
  const parts: string[] = [];
  if (f.server) parts.push(`--server ${shellWord(f.server)}`);
  else if (f.socket) parts.push(`--socket ${shellWord(resolve(f.socket))}`);
  else if (f.dataDir) parts.push(`--data-dir ${shellWord(resolve(f.dataDir))}`);
  if (f.apiKeyFlag) parts.push(`--api-key ${API_KEY_PLACEHOLDER}`);
  return parts.map((p) => ` ${p}`).join('');
}

/**
 * What `weft-server serve` suggests on start, as commands that work when copied into another
 * shell (the data dir is always given: the admin's shell need not share the server's working
 * directory). `dataDir` is already a shell word.
 */
export function startHint(users: number, nodes: number, dataDir: string, localAccount = true): string {
  // Without any local account nobody can sign in to the web pages (approve devices there) until OIDC is set up.
  const password = localAccount ? '' : `Set a password for the web sign-in (an admin account; asks for the password):\n` +
    `  weft-server admin set-password --user admin --data-dir ${dataDir}\n\n`;
  if (users === 0) {
    return `Add the first user and an auth key:\n` +
      `  weft-server users create alice --data-dir ${dataDir}\n` +
      `  weft-server authkeys create --user alice --data-dir ${dataDir}\n\n` + password;
  }
  const n = (count: number, one: string) => `${count} ${one}${count === 1 ? '' : 's'}`;
  return `${n(users, 'user')}, ${n(nodes, 'node')}. See them, and devices waiting for approval, with:\n` +
    `  weft-server nodes list --data-dir ${dataDir}\n` +
    `  weft-server nodes pending --data-dir ${dataDir}\n\n` + password;
}

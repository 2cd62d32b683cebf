/**
 * `weft-server relay-secret --out FILE [--force] [--print] [--data-dir DIR | --socket PATH | --database-url URL]`:
 * the deployment's relay mesh secret for a standalone `weft-relay --mesh-secret-file FILE`, written
 * to FILE created 0600 (an existing FILE is refused, untouched, unless --force). The secret reaches
 * stdout only with --print, and then alone, for piping. Made if the deployment has none yet,
 * exactly as a starting server would; audited (`relay.secret_export`).
 *
 * Where it comes from: with --database-url, the Postgres database itself (replicas may be running);
 * otherwise the server running on the data directory, through its admin socket (the server holds
 * the embedded database's lock), or, when no server runs there, the embedded database directly.
 *
 * Exit codes, as the admin CLI's: 0 done, 1 refused (FILE exists, the data directory is held by a
 * server that does not answer, the server said no), 2 usage (or FILE cannot be written), 3 the
 * server or database unreachable.
 */
import { existsSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DbError, openDatabase } from '@weft/db';
import { terminalSafeLines } from '@weft/protocol/terminal-text';
import { adminSocketPath } from '../local-socket.js';
import { exportRelayMeshSecret } from '../state/relay-secret.js';
import { ExitCode, str } from './admin.js';
import { parseArgs, UsageError, type Parsed } from './args.js';
import { call, ProblemError, ServerUnreachable } from './client.js';

export const RELAY_SECRET_USAGE = `Usage:
  weft-server relay-secret --out FILE [--force] [--print] [--data-dir DIR | --socket PATH | --database-url postgres://...]
      writes the deployment's relay mesh secret to FILE, created with mode 0600, for a standalone
      relay: weft-relay --server URL --mesh-secret-file FILE. Made now if the deployment has none
      yet (as the server makes it on its first start); every export is audited (relay.secret_export).
  --out FILE      where to write it; an existing FILE is refused and left as it is, unless --force
  --force         replace an existing FILE (atomically, mode 0600)
  --print         also write the secret, and only the secret, to stdout (for piping; --out optional)
  --data-dir DIR  the server's data directory (default ./data, env WEFT_DATA_DIR): through the running
                  server's admin socket, or the embedded database directly when no server runs on it
  --socket PATH   the admin socket of a running server
  --database-url  the Postgres database (env WEFT_DATABASE_URL), directly; fine while replicas run
  Exit: 0 written, 1 refused (FILE exists, the server refused, the data directory is held by a
  server that does not answer), 2 usage or FILE cannot be written, 3 server or database unreachable.`;

type Out = (s: string) => void;

class Refused extends Error {}

export async function relaySecretCommand(argv: string[], out: Out = (s) => process.stdout.write(s), err: Out = (s) => process.stderr.write(s)): Promise<number> {
  const say = (s: string) => err(terminalSafeLines(`weft-server: ${s}`) + '\n');
  try {
    return await run(argv, out, err);
  } catch (e) {
    if (e instanceof UsageError) {
      say(`${e.message}\n\n${RELAY_SECRET_USAGE}`);
      return ExitCode.Usage;
    }
    if (e instanceof Refused) {
      say(e.message);
      return ExitCode.Refused;
    }
    if (e instanceof ProblemError) {
      say(`${e.problem.detail ?? e.problem.title} (${e.problem.code})`);
      return ExitCode.Refused;
    }
    if (e instanceof ServerUnreachable) {
      say(e.message);
      return ExitCode.Unreachable;
    }
    if (e instanceof DbError) {
      say(`${e.message} (${e.code})`);
      return e.code === 'DATA_DIR_IN_USE' ? ExitCode.Refused : ExitCode.Unreachable;
    }
    if (e instanceof Error && 'syscall' in e && 'path' in e) {
      say(`${e.message}; nothing was written`);
      return ExitCode.Usage;
    }
    if (e instanceof Error && /ECONNREFUSED|ENOTFOUND|password authentication|does not exist/.test(e.message)) {
      say(`cannot open the database: ${e.message}`);
      return ExitCode.Unreachable;
    }
    throw e;
  }
}

async function run(argv: string[], out: Out, err: Out): Promise<number> {
  const p = parseArgs(argv, { string: ['out', 'data-dir', 'socket', 'database-url'], boolean: ['force', 'print', 'help'] });
  if (p.flags.has('help')) {
    out(RELAY_SECRET_USAGE + '\n');
    return ExitCode.Ok;
  }
  if (p.positional.length) throw new UsageError(`unexpected argument "${p.positional[0]}" (the file goes after --out)`);
  const outFile = str(p, 'out');
  const print = p.flags.has('print');
  if (!outFile && !print) throw new UsageError('relay-secret needs --out FILE (or --print, to write the secret to stdout)');
  const chosen = ['data-dir', 'socket', 'database-url'].filter((f) => p.flags.has(f));
  if (chosen.length > 1) throw new UsageError(`give one of --data-dir, --socket, --database-url, not ${chosen.map((f) => `--${f}`).join(' and ')}`);
  const file = outFile === undefined ? undefined : resolve(outFile);
  // Refused before anything is asked of the server: an existing file stays as it is, and nothing is audited.
  if (file && existsSync(file) && !p.flags.has('force')) {
    throw new Refused(`${file} exists; it was left as it is. Add --force to replace it, or choose another --out`);
  }

  const secret = await fetchSecret(p);
  if (file) await writeOwnerOnly(file, secret + '\n', p.flags.has('force'));
  if (print) out(secret + '\n');
  if (file) {
    // With --print stdout holds the secret alone, so the note goes to stderr.
    const note = `wrote the relay mesh secret to ${file} (mode 0600). Start a region relay with it:\n` +
      `  weft-relay --server URL --mesh-secret-file ${file}\nKeep the file owner-only; anyone holding the secret can act as a relay of this deployment.\n`;
    (print ? err : out)(terminalSafeLines(note));
  }
  return ExitCode.Ok;
}

/** Writes `text` to `file` owner-only: created new (`wx`), or with --force replaced by a rename. */
async function writeOwnerOnly(file: string, text: string, force: boolean): Promise<void> {
  if (!force) {
    try {
      await writeFile(file, text, { flag: 'wx', mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Refused(`${file} appeared meanwhile; it was left as it is. Add --force to replace it`);
      throw e;
    }
    return;
  }
  const tmp = `${file}.partial`;
  try {
    await rm(tmp, { force: true });
    await writeFile(tmp, text, { flag: 'wx', mode: 0o600 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const LOCAL_ACTOR = { type: 'local-socket', name: 'relay-secret', origin: 'cli' } as const;

/** The secret in base64, from the database or the running server, made if there is none yet. */
async function fetchSecret(p: Parsed): Promise<string> {
  const databaseUrl = str(p, 'database-url') ?? (p.flags.has('data-dir') || p.flags.has('socket') ? undefined : process.env.WEFT_DATABASE_URL);
  if (databaseUrl) {
    if (!/^postgres(ql)?:\/\//.test(databaseUrl)) throw new UsageError('--database-url must be a postgres:// URL');
    return fromDatabase({ databaseUrl });
  }
  const socket = str(p, 'socket');
  if (socket) return fromServer(resolve(socket));
  const dataDir = resolve(str(p, 'data-dir') ?? process.env.WEFT_DATA_DIR ?? './data');
  const socketPath = adminSocketPath(dataDir);
  if (existsSync(socketPath)) {
    try {
      return await fromServer(socketPath);
    } catch (e) {
      // A socket left by a crashed server: the database itself, below (its lock says if a server still holds it).
      if (!(e instanceof ServerUnreachable)) throw e;
    }
  }
  if (!existsSync(join(dataDir, 'db'))) {
    throw new UsageError(`there is no weft-server data directory at ${dataDir} (no admin socket, no db/ in it): give the server's --data-dir, or --database-url for Postgres`);
  }
  try {
    return await fromDatabase({ dataDir });
  } catch (e) {
    if (e instanceof DbError && e.code === 'DATA_DIR_IN_USE') {
      throw new Refused(`${e.message}: a weft-server holds ${dataDir} but its admin socket ${socketPath} does not answer. ` +
        'Retry once it has started, or restart it; or give --socket PATH if it listens elsewhere');
    }
    throw e;
  }
}

async function fromServer(socketPath: string): Promise<string> {
  const r = await call<{ secret: string }>({ socketPath }, 'POST', '/api/v1/relay/secret');
  return r.secret;
}

async function fromDatabase(opts: { databaseUrl: string } | { dataDir: string }): Promise<string> {
  const db = await openDatabase(opts);
  try {
    return (await exportRelayMeshSecret(db.prisma, LOCAL_ACTOR)).toString('base64');
  } finally {
    await db.close();
  }
}

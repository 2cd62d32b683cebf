/**
 * Moving and keeping the database (packages/db snapshot.ts is the one format under all three):
 *
 *   weft-server backup FILE       a consistent snapshot from the running server (its admin socket,
 *                                 or --server URL --api-key KEY), written owner-only
 *   weft-server restore FILE      into a fresh data directory (--data-dir) or an empty Postgres
 *                                 database (--database-url); the server is not running on it
 *   weft-server db copy --to URL  the embedded database in --data-dir into an empty Postgres
 *                                 database, verified table by table; the server is stopped
 *
 * Exit codes: 0 done, 1 refused (the target is not empty, a checksum differs, the server said
 * no), 2 usage (or a file that cannot be read or written), 3 the server or database unreachable.
 */
import { createReadStream, existsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { databaseSums, DbError, openDatabase, restoreSnapshot, SnapshotError, writeSnapshot, type Database, type SnapshotTable } from '@weft/db';
import { terminalSafeLines } from '@weft/protocol/terminal-text';
import { adminSocketPath } from '../local-socket.js';
import { parseArgs, UsageError, type Parsed } from './args.js';
import { DB_USAGE } from './help.js';
import { table } from './table.js';

const Exit = { Ok: 0, Refused: 1, Usage: 2, Unreachable: 3 } as const;
type Out = (s: string) => void;

class Unreachable extends Error {}
class Refused extends Error {}

/** postgres://user:secret@host/db -> postgres://user:***@host/db: the password is never printed. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@');
}

export async function dbCommand(argv: string[], out: Out = (s) => process.stdout.write(s + '\n'), err: Out = (s) => process.stderr.write(s + '\n')): Promise<number> {
  const safeErr = (s: string) => err(terminalSafeLines(`weft-server: ${s}`));
  try {
    return await run(argv, out);
  } catch (e) {
    if (e instanceof UsageError) {
      safeErr(`${e.message}\n\n${DB_USAGE}`);
      return Exit.Usage;
    }
    if (e instanceof SnapshotError || e instanceof Refused) {
      safeErr(e.message);
      return Exit.Refused;
    }
    if (e instanceof DbError) {
      safeErr(e.code === 'DATA_DIR_IN_USE'
        ? `${e.message} (${e.code}). Stop weft-server serve on this data directory first; for a copy while it runs, use weft-server backup.`
        : `${e.message} (${e.code})`);
      return e.code === 'DATA_DIR_IN_USE' ? Exit.Refused : Exit.Unreachable;
    }
    if (e instanceof Unreachable) {
      safeErr(e.message);
      return Exit.Unreachable;
    }
    if (e instanceof Error && 'syscall' in e && 'path' in e) {
      safeErr(e.message);
      return Exit.Usage;
    }
    if (e instanceof Error && /ECONNREFUSED|ENOTFOUND|password authentication|does not exist/.test(e.message)) {
      safeErr(`cannot open the database: ${e.message}`);
      return Exit.Unreachable;
    }
    throw e;
  }
}

const str = (p: Parsed, name: string) => {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};

async function run(argv: string[], out: Out): Promise<number> {
  const [verb, ...rest] = argv;
  const p = parseArgs(rest, { boolean: ['json', 'help'], string: ['data-dir', 'socket', 'server', 'api-key', 'database-url', 'to'] });
  if (p.flags.has('help')) {
    out(DB_USAGE);
    return Exit.Ok;
  }
  const json = p.flags.has('json');
  if (verb === 'backup') return backup(p, json, out);
  if (verb === 'restore') return restore(p, json, out);
  if (verb === 'db') {
    const [sub, ...extra] = p.positional;
    if (sub !== 'copy') throw new UsageError(sub ? `unknown db command "${sub}"` : 'db needs a command: copy');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    return copy(p, json, out);
  }
  throw new UsageError(`unknown command "${verb}"`);
}

function oneFile(p: Parsed, verb: string): string {
  const [file, ...extra] = p.positional;
  if (!file) throw new UsageError(`${verb} needs FILE`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  return resolve(file);
}

function report(tables: SnapshotTable[], json: boolean, out: Out, what: Record<string, unknown>, lines: string[]): void {
  if (json) {
    out(JSON.stringify({ ...what, tables }));
    return;
  }
  for (const l of lines) out(l);
  out(table(['TABLE', 'ROWS'], tables.map((t) => [t.name, String(t.rows)])));
}

// ---- backup ----------------------------------------------------------------------------------

async function backup(p: Parsed, json: boolean, out: Out): Promise<number> {
  const file = oneFile(p, 'backup');
  const tmp = `${file}.partial`;
  const handle = await open(tmp, 'w', 0o600);
  let ok = false;
  try {
    const body = await fetchBackup(p);
    let last = '';
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      await handle.write(buf);
      last = (last + buf.toString('utf8')).slice(-64);
    }
    if (!last.endsWith('{"end":true}\n')) throw new Refused('the server stopped sending before the snapshot was complete: no backup was written. See the server log.');
    await handle.sync();
    ok = true;
  } finally {
    await handle.close();
    if (!ok) await rm(tmp, { force: true });
  }
  await rename(tmp, file);
  const header = await readHeader(file);
  report(header.tables, json, out, { file, createdAt: header.createdAt, migrations: header.migrations.length }, [
    `backup written to ${file} (owner-only), taken ${header.createdAt}, ${header.tables.reduce((n, t) => n + t.rows, 0)} rows:`,
  ]);
  return Exit.Ok;
}

/** The response body of GET /api/v1/backup from the admin socket or from --server. */
async function fetchBackup(p: Parsed): Promise<AsyncIterable<unknown>> {
  const server = str(p, 'server') ?? process.env.WEFT_SERVER;
  if (server) {
    const apiKey = str(p, 'api-key') ?? process.env.WEFT_API_KEY;
    if (!apiKey) throw new UsageError('--server needs --api-key (or WEFT_API_KEY), with the admin scope');
    let res: Response;
    try {
      res = await fetch(new URL('/api/v1/backup', server), { headers: { authorization: `Bearer ${apiKey}` } });
    } catch (e) {
      throw new Unreachable(`cannot reach ${server} (${(e as Error).message}); check --server`);
    }
    if (res.status >= 400) throw new Refused(await problemText(res.status, await res.text()));
    if (!res.body) throw new Refused('the server sent no snapshot');
    return res.body as unknown as AsyncIterable<unknown>;
  }
  const socketPath = str(p, 'socket') ?? adminSocketPath(resolve(str(p, 'data-dir') ?? process.env.WEFT_DATA_DIR ?? './data'));
  return new Promise((resolvePromise, reject) => {
    const req = request({ socketPath, path: '/api/v1/backup', method: 'GET' }, (res) => {
      if ((res.statusCode ?? 500) >= 400) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => problemText(res.statusCode ?? 500, text).then((m) => reject(new Refused(m))));
        return;
      }
      resolvePromise(res);
    });
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Unreachable(`cannot reach the server's admin socket ${socketPath} (${e.code ?? e.message}); is weft-server serve running with this --data-dir?`)));
    req.end();
  });
}

async function problemText(status: number, text: string): Promise<string> {
  try {
    const problem = JSON.parse(text) as { detail?: string; title?: string; code?: string };
    return `${problem.detail ?? problem.title ?? `HTTP ${status}`}${problem.code ? ` (${problem.code})` : ''}`;
  } catch {
    return `the server answered HTTP ${status}`;
  }
}

// ---- restore ---------------------------------------------------------------------------------

async function* fileLines(file: string): AsyncIterable<string> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) yield line;
}

async function readHeader(file: string) {
  const { parseSnapshotHeader } = await import('@weft/db');
  for await (const line of fileLines(file)) return parseSnapshotHeader(line);
  throw new SnapshotError(`${file} is empty`);
}

function targetOf(p: Parsed, flag: 'database-url' | 'to'): { databaseUrl: string } | { dataDir: string } {
  const url = str(p, flag);
  const dir = str(p, 'data-dir');
  if (flag === 'database-url' && url && dir) throw new UsageError('give --data-dir or --database-url, not both');
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(`--${flag} must be a postgres:// URL`);
    return { databaseUrl: url };
  }
  if (flag === 'to') throw new UsageError('db copy needs --to postgres://...');
  if (!dir) throw new UsageError('restore needs --data-dir DIR (a fresh one) or --database-url postgres://... (an empty database)');
  return { dataDir: resolve(dir) };
}

async function withDatabase<T>(opts: { databaseUrl: string } | { dataDir: string }, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(opts);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function restore(p: Parsed, json: boolean, out: Out): Promise<number> {
  const file = oneFile(p, 'restore');
  await readHeader(file); // a file that is not a snapshot is refused before a database is created
  const target = targetOf(p, 'database-url');
  const where = 'databaseUrl' in target ? redactUrl(target.databaseUrl) : target.dataDir;
  const result = await withDatabase(target, (db) => restoreSnapshot(db.prisma, fileLines(file)));
  report(result.tables, json, out, { file, target: where }, [
    `restored ${file} (taken ${result.header.createdAt}) into ${where}; every table's rows and checksum verified:`,
  ]);
  if (!json) out(`\nStart the server on it: weft-server serve ${'databaseUrl' in target ? '--database-url URL' : `--data-dir ${target.dataDir}`}`);
  return Exit.Ok;
}

// ---- db copy ---------------------------------------------------------------------------------

async function copy(p: Parsed, json: boolean, out: Out): Promise<number> {
  const to = targetOf(p, 'to') as { databaseUrl: string };
  const dataDir = resolve(str(p, 'data-dir') ?? process.env.WEFT_DATA_DIR ?? './data');
  if (!existsSync(join(dataDir, 'db'))) throw new UsageError(`there is no embedded database in ${dataDir} (no db/ in it): give the server's --data-dir`);
  const tables = await withDatabase({ dataDir }, async (src) => {
    return withDatabase(to, async (dst) => {
      // The snapshot goes straight from one database into the other, in memory a batch at a time.
      const lines = pipeSnapshot(src);
      await restoreSnapshot(dst.prisma, lines);
      const [a, b] = [await databaseSums(src.prisma), await databaseSums(dst.prisma)];
      const differ = a.filter((t, i) => b[i]?.name !== t.name || b[i]?.rows !== t.rows || b[i]?.md5 !== t.md5);
      if (differ.length) throw new Refused(`the copy does not match the source in ${differ.map((t) => t.name).join(', ')}`);
      return b;
    });
  });
  report(tables, json, out, { from: dataDir, to: redactUrl(to.databaseUrl) }, [
    `copied the embedded database in ${dataDir} to ${redactUrl(to.databaseUrl)}; every table's rows and checksum verified:`,
  ]);
  if (!json) {
    out(`\nNext: start the server on Postgres (agents reconnect as they are; nothing to re-enroll):\n` +
      `  weft-server serve --database-url ${redactUrl(to.databaseUrl)}\n` +
      `Keep ${dataDir} until you are satisfied; the server no longer reads it.`);
  }
  return Exit.Ok;
}

/** A snapshot of `db` as an async iterable of lines, produced as the consumer reads. */
async function* pipeSnapshot(db: Database): AsyncIterable<string> {
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  let done = false;
  let failure: unknown;
  let room: (() => void) | null = null;
  const writing = writeSnapshot(db.prisma, db.backend, async (chunk) => {
    for (const line of chunk.split('\n')) if (line !== '') queue.push(line);
    wake?.();
    if (queue.length > 5000) await new Promise<void>((r) => (room = r));
  }).then(() => {
    done = true;
    wake?.();
  }, (err: unknown) => {
    failure = err;
    done = true;
    wake?.();
  });
  for (;;) {
    if (queue.length > 0) {
      yield queue.shift()!;
      if (queue.length < 1000 && room) {
        const r = room as () => void;
        room = null;
        r();
      }
      continue;
    }
    if (done) break;
    await new Promise<void>((r) => (wake = r));
    wake = null;
  }
  await writing;
  if (failure) throw failure;
}

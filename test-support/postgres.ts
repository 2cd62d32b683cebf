/**
 * Throwaway Postgres 15 clusters for tests: initdb into a temp dir, trust auth on 127.0.0.1 only, a
 * free loopback port, started with pg_ctl; stop() removes everything. Postgres refuses to run as root,
 * so as root the cluster runs as the system user `weft-test`, created here if missing.
 *
 * Missing binaries are an error, never a skip: `apt-get install postgresql-15`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_BIN = process.env.WEFT_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const RUN_AS = 'weft-test';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/weft — a superuser on the cluster's first database. */
  url: string;
  port: number;
  /** The directory of its unix socket (\`host=\` in a URL): reachable from any network namespace. */
  socketDir: string;
  /** Stops the cluster and deletes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

function assertBinaries(): void {
  for (const tool of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(PG_BIN, tool))) {
      throw new Error(`Postgres 15 server binaries not found (${join(PG_BIN, tool)} is missing): apt-get install postgresql-15`);
    }
  }
}

/** uid/gid to run Postgres as: ourselves, or `weft-test` when we are root. */
function pgUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = () => {
    const r = spawnSync('id', ['-u', RUN_AS], { encoding: 'utf8' });
    if (r.status !== 0) return null;
    const gid = execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' });
    return { uid: Number(r.stdout.trim()), gid: Number(gid.trim()) };
  };
  const existing = lookup();
  if (existing) return existing;
  // Another test process may create it at the same moment; whoever loses finds it on the re-check.
  // Root's PATH does not always include /usr/sbin (e.g. under `su` without -l).
  const useradd = existsSync('/usr/sbin/useradd') ? '/usr/sbin/useradd' : 'useradd';
  const r = spawnSync(useradd, ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', RUN_AS], {
    encoding: 'utf8',
  });
  const created = lookup();
  if (!created) throw new Error(`could not create system user ${RUN_AS} to run Postgres as: ${r.stderr}`);
  return created;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function run(tool: string, args: string[], user: { uid: number; gid: number } | null): void {
  const r = spawnSync(join(PG_BIN, tool), args, {
    encoding: 'utf8',
    ...(user ?? {}),
    // Postgres tools look at HOME/locale; keep them predictable and independent of root's.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: tmpdir() },
    cwd: tmpdir(),
  });
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

/** Starts a fresh cluster with one database, `weft`. */
export async function startPostgres(): Promise<TestPostgres> {
  assertBinaries();
  const user = pgUser();
  const root = mkdtempSync(join(tmpdir(), 'weft-pg-'));
  const data = join(root, 'data');
  if (user) chownSync(root, user.uid, user.gid);
  chmodSync(root, 0o700);
  let stopped = false;
  let started = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    if (started) spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...(user ?? {}), cwd: tmpdir(), stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  };
  // If the test process dies without stop(), do not leave a postmaster running.
  process.once('exit', stopSync);
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'], user);
    writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const options = [
        '-c listen_addresses=127.0.0.1',
        `-p ${port}`,
        `-k ${root}`,
        '-c fsync=off',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
        '-c max_connections=300',
      ].join(' ');
      try {
        run('pg_ctl', ['-D', data, '-l', join(root, 'postgres.log'), '-w', '-t', '60', '-o', options, 'start'], user);
        started = true;
        break;
      } catch (err) {
        // Most likely someone took the port between freePort() and the bind; try another.
        if (attempt >= 3) throw err;
      }
    }
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE weft');
    } finally {
      await admin.end();
    }
    return {
      url: `postgres://postgres@127.0.0.1:${port}/weft`,
      port,
      socketDir: root,
      async stop() {
        process.removeListener('exit', stopSync);
        stopSync();
      },
    };
  } catch (err) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw err;
  }
}

/** Creates an empty database on the cluster behind `clusterUrl` and returns its URL. */
export async function createDatabaseOn(clusterUrl: string, prefix = 'weft_test'): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: clusterUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

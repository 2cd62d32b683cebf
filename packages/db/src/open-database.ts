import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { type ChangeBus, LocalChangeBus, PgChangeBus } from './change-bus.js';
import { Outbox } from './outbox.js';
import { PrismaClient } from './generated/client.js';
import { lockDataDir } from './data-dir-lock.js';
import { holdOwnerOnlyUmask, makeOwnerOnly, prepareDataDir } from './data-dir-mode.js';
import { type Log, silentLog } from './log.js';
import { migrate, type SqlSession } from './migrate.js';
import { initPGliteDir } from './pglite-init.js';
import { countStatements, type StatementCount } from './statement-count.js';
import { migrationsDir as defaultMigrationsDir } from './paths.js';
import { PG_IDLE_IN_TRANSACTION_TIMEOUT_MS, PG_LOCK_TIMEOUT_MS } from './tunables.js';

export type OpenOptions = ({ dataDir: string } | { databaseUrl: string }) & {
  /** Where the migrations are; tests only. Default: the repository's prisma/migrations. */
  migrationsDir?: string;
  /** Postgres session timeouts; absent = the tunables. Tests shorten them. */
  timeouts?: PgTimeouts;
};

/** Set on every pooled Postgres session (startup parameters), so no statement can forget them. */
export interface PgTimeouts {
  /** `idle_in_transaction_session_timeout`; default PG_IDLE_IN_TRANSACTION_TIMEOUT_MS. */
  idleInTransactionMs?: number;
  /** `lock_timeout`; default PG_LOCK_TIMEOUT_MS. */
  lockMs?: number;
}

export interface Database {
  prisma: PrismaClient;
  backend: 'pglite' | 'postgres';
  bus: ChangeBus;
  /**
   * The change outbox (outbox.ts); null on the embedded database, which only one process can open
   * at a time (the data-directory lock), so there is no other replica to deliver to.
   */
  outbox: Outbox | null;
  /** Statements the Prisma client has sent (BEGIN and COMMIT included): round trips, statement-count.ts. */
  statementCount: StatementCount;
  /** Migrations this open applied, in order; empty when the database was already current. */
  appliedMigrations: readonly string[];
  /** Closes the bus, the client and the connections (or the embedded database). */
  close(): Promise<void>;
}

/**
 * Opens the embedded database in `<dataDir>/db` (PGlite), or Postgres at `databaseUrl`
 * (postgres:// or postgresql://), and applies pending migrations before returning.
 */
export async function openDatabase(opts: OpenOptions, log: Log = silentLog): Promise<Database> {
  const migrationsDir = opts.migrationsDir ?? defaultMigrationsDir;
  if ('databaseUrl' in opts) {
    if (!/^postgres(ql)?:\/\//.test(opts.databaseUrl)) {
      throw new Error(`database URL must start with postgres:// or postgresql://, got ${opts.databaseUrl.split(':')[0]}:`);
    }
    return openPostgres(opts.databaseUrl, migrationsDir, log, opts.timeouts ?? {});
  }
  return openPGlite(opts.dataDir, migrationsDir, log);
}

/**
 * PGlite's defaults plus a small buffer pool: its stock 128 MB shared_buffers made an idle
 * embedded server hold ~750 MB RSS; 16 MB holds ~125 MB and still caches a 10,000-node tailnet.
 */
const PGLITE_START_PARAMS = [
  ...PGlite.defaultStartParams,
  '-c', 'shared_buffers=16MB',
  '-c', 'work_mem=4MB',
];

async function openPGlite(dataDir: string, migrationsDir: string, log: Log): Promise<Database> {
  const dir = join(dataDir, 'db');
  prepareDataDir(dataDir);
  const lock = lockDataDir(dataDir);
  const umask = holdOwnerOnlyUmask();
  const unlock = () => {
    umask();
    lock();
  };
  let pglite: PGlite;
  try {
    await initPGliteDir(dir, log);
    pglite = await PGlite.create({ dataDir: dir, startParams: PGLITE_START_PARAMS });
    // After start-up, which rewrites pg_internal.init 0644 whatever the umask; also repairs a database
    // an older version made group- and world-readable.
    makeOwnerOnly(dir);
  } catch (err) {
    unlock();
    throw err;
  }
  try {
    const session: SqlSession = {
      query: async <R>(sql: string, params?: unknown[]) => (await pglite.query<R>(sql, params)).rows,
      exec: async (script) => void (await pglite.exec(script)),
    };
    const appliedMigrations = await migrate(session, { migrationsDir, lock: false, log });
    // pglite-prisma-adapter is typed against the PGlite version it was built with; the API it uses is unchanged.
    const { factory, count } = countStatements(new PrismaPGlite(pglite as unknown as ConstructorParameters<typeof PrismaPGlite>[0]));
    const prisma = new PrismaClient({ adapter: factory });
    const bus = new LocalChangeBus(log);
    return {
      prisma,
      backend: 'pglite',
      statementCount: count,
      bus,
      outbox: null,
      appliedMigrations,
      close: once(async () => {
        bus.close();
        await prisma.$disconnect();
        await pglite.close();
        unlock();
      }),
    };
  } catch (err) {
    await pglite.close().catch(() => {});
    unlock();
    throw err;
  }
}

async function openPostgres(url: string, migrationsDir: string, log: Log, timeouts: PgTimeouts): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    // A replica stalled inside a transaction loses its session (and its locks) after this, and a
    // writer waiting for a lock gives up after that: tunables.ts says why each is what it is.
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs ?? PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    lock_timeout: timeouts.lockMs ?? PG_LOCK_TIMEOUT_MS,
  });
  // An idle pooled connection dying (server restart, or a session Postgres ended) must not crash
  // the process; the pool drops it and the next query opens a new one. A connection that dies while
  // checked out is dropped when it is released (pg-pool never reuses a client that is not queryable).
  pool.on('error', (err) => log.warn({ err }, 'idle Postgres connection failed'));
  let bus: PgChangeBus | null = null;
  try {
    const appliedMigrations = await migratePostgres(pool, migrationsDir, log);
    bus = new PgChangeBus({ connectionString: url }, pool, log);
    await bus.start();
    const { factory, count } = countStatements(new PrismaPg(pool));
    const prisma = new PrismaClient({ adapter: factory });
    const theBus = bus;
    return {
      prisma,
      backend: 'postgres',
      statementCount: count,
      bus: theBus,
      outbox: new Outbox(pool),
      appliedMigrations,
      close: once(async () => {
        await theBus.close();
        await prisma.$disconnect();
        await pool.end();
      }),
    };
  } catch (err) {
    await bus?.close();
    await pool.end().catch(() => {});
    throw err;
  }
}

async function migratePostgres(pool: pg.Pool, migrationsDir: string, log: Log): Promise<string[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const session: SqlSession = {
      query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[],
      exec: async (script) => void (await client.query(script)),
    };
    // A replica starting while another migrates waits for the migration lock as long as it takes.
    await client.query('SET lock_timeout = 0');
    const applied = await migrate(session, { migrationsDir, lock: true, log });
    await client.query('RESET lock_timeout');
    return applied;
  } catch (err) {
    // Do not return a connection in an unknown state (open transaction, held lock) to the pool.
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}

/** close() may be called more than once (signal handler and test teardown); only the first one works. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= fn());
}

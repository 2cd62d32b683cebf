/**
 * Applies prisma/migrations at start-up, as `prisma migrate deploy` would, without Prisma's schema
 * engine binary: each pending migration.sql runs in its own transaction together with its row in the
 * standard `_prisma_migrations` table, so a failed migration leaves neither schema nor record behind.
 * Statements that Postgres refuses inside a transaction (CREATE INDEX CONCURRENTLY, ...) are therefore
 * not allowed in migrations.
 */
import { randomUUID } from 'node:crypto';
import { DbError } from './errors.js';
import type { Log } from './log.js';
import { readMigrations } from './migration-files.js';

/** One database connection (not a pool): advisory locks and BEGIN/COMMIT are per session. */
export interface SqlSession {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Runs a script of several statements. */
  exec(script: string): Promise<void>;
}

/**
 * The key `prisma migrate` itself locks, so Weft replicas and a Prisma CLI run against the same
 * database also wait for each other.
 */
export const MIGRATION_LOCK_KEY = 72707369;

/** The table exactly as Prisma creates it. */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
}

export interface MigrateOptions {
  migrationsDir: string;
  /** Take the cross-process advisory lock (Postgres). PGlite has one connection and needs none. */
  lock: boolean;
  log: Log;
}

/** Brings the database up to date; returns the names of the migrations it applied, in order. */
export async function migrate(db: SqlSession, opts: MigrateOptions): Promise<string[]> {
  const files = readMigrations(opts.migrationsDir);
  if (opts.lock) await acquireLock(db, opts.log);
  try {
    await db.exec(CREATE_MIGRATIONS_TABLE);
    const rows = await db.query<AppliedRow>(
      `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL ORDER BY started_at`,
    );
    const unfinished = rows.find((r) => r.finished_at === null);
    if (unfinished) {
      throw new DbError(
        'MIGRATION_PREVIOUSLY_FAILED',
        `migration ${unfinished.migration_name} started earlier and never finished; repair the database by hand, then mark it ` +
          `rolled back (UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '${unfinished.migration_name}')`,
      );
    }
    const applied = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    for (const f of files) {
      const checksum = applied.get(f.name);
      if (checksum !== undefined && checksum !== f.checksum) {
        throw new DbError(
          'MIGRATION_CHECKSUM_MISMATCH',
          `migration ${f.name} was applied to this database with checksum ${checksum}, but the file now has checksum ${f.checksum}; ` +
            `migrations are append-only: restore the file and put the change in a new migration (npm run db:migration -- NAME)`,
        );
      }
    }
    const known = new Set(files.map((f) => f.name));
    const unknown = rows.filter((r) => !known.has(r.migration_name)).map((r) => r.migration_name);
    if (unknown.length) {
      // A newer replica migrated this database ahead of us (rolling upgrade). Additive migrations keep
      // older code working, so run, but say so.
      opts.log.warn({ migrations: unknown }, 'database has migrations this build does not know; is a newer version running?');
    }

    const done: string[] = [];
    for (const f of files.filter((f) => !applied.has(f.name))) {
      await applyOne(db, f.name, f.sql, f.checksum);
      opts.log.info({ migration: f.name }, 'applied database migration');
      done.push(f.name);
    }
    return done;
  } finally {
    // If this fails the session is gone, and the lock with it.
    if (opts.lock) await db.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
  }
}

async function acquireLock(db: SqlSession, log: Log): Promise<void> {
  const [row] = await db.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [MIGRATION_LOCK_KEY]);
  if (row?.locked) return;
  log.info({}, 'another process is migrating the database; waiting for it');
  await db.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
}

async function applyOne(db: SqlSession, name: string, sql: string, checksum: string): Promise<void> {
  await db.exec('BEGIN');
  try {
    const started = new Date();
    await db.exec(sql);
    await db.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
       VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, $4, 1)`,
      [randomUUID(), checksum, name, started],
    );
    await db.exec('COMMIT');
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => {});
    throw new DbError('MIGRATION_FAILED', `migration ${name} failed and was rolled back: ${(err as Error).message}`, { cause: err });
  }
}

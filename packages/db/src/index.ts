/**
 * @weft/db — storage for the control server.
 *
 * Owns: opening the database (embedded PGlite in a data directory, or Postgres by URL), applying
 * prisma/migrations at open time (recorded in Prisma's `_prisma_migrations`, serialised across
 * processes by an advisory lock), the change bus between server replicas (LISTEN/NOTIFY on Postgres) and the change outbox it wakes
 * readers of (outbox.ts),
 * and the generated Prisma client. This is the only package that imports @prisma/client or the
 * generated client; everyone else imports the client and model types from here.
 *
 * Must not import: apps/*, or any other @weft package (storage knows nothing of the domain).
 *
 * Development tooling that is not part of the runtime API: `npm run db:migration -- NAME`
 * (new-migration.ts) and the schema engine wrapper (schema-engine.ts).
 */
export { openDatabase, type Database, type OpenOptions, type PgTimeouts } from './open-database.js';
export type { StatementCount } from './statement-count.js';
export { PG_IDLE_IN_TRANSACTION_TIMEOUT_MS, PG_LOCK_TIMEOUT_MS } from './tunables.js';
export { databaseSums, parseSnapshotHeader, restoreSnapshot, SnapshotError, writeSnapshot, SNAPSHOT_FORMAT, type RestoreResult, type SnapshotHeader, type SnapshotTable } from './snapshot.js';
export { type ChangeBus, MAX_PAYLOAD_BYTES, CHANNEL as CHANGE_BUS_CHANNEL, LISTENER_APPLICATION_NAME as CHANGE_BUS_APPLICATION_NAME } from './change-bus.js';
export { Outbox, APPEND_SQL as OUTBOX_APPEND_SQL, parseHint as parseOutboxHint, type OutboxHint, type OutboxPage, type OutboxRow } from './outbox.js';
export { DbError, type DbErrorCode } from './errors.js';
export { prepareDataDir } from './data-dir-mode.js';
export type { Log } from './log.js';
export * from './generated/client.js';
export { migrationsDir as shippedMigrationsDir } from './paths.js';
export { readMigrations } from './migration-files.js';

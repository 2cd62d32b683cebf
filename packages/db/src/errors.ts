/** The storage error catalogue (docs/style.md 8): a stable code, whether retrying can help, a safe message. */
export type DbErrorCode =
  /** A migration already applied to this database differs from the file with its name. */
  | 'MIGRATION_CHECKSUM_MISMATCH'
  /** A migration's SQL failed; it was rolled back and is not recorded. */
  | 'MIGRATION_FAILED'
  /** `_prisma_migrations` holds a migration that started and never finished (e.g. by `prisma migrate`). */
  | 'MIGRATION_PREVIOUSLY_FAILED'
  /** Another live process (or this one) has the embedded database open. */
  | 'DATA_DIR_IN_USE'
  /** The data directory is reachable by group or others (or is not a directory); nothing was created in it. */
  | 'DATA_DIR_NOT_PRIVATE'
  /** A new embedded database could not be created (initdb failed, or the directory holds something else). */
  | 'DATABASE_INIT_FAILED'
  /** A change-bus payload larger than MAX_PAYLOAD_BYTES. */
  | 'BUS_PAYLOAD_TOO_LARGE'
  /** publish() after close(). */
  | 'BUS_CLOSED';

const RETRYABLE: Record<DbErrorCode, boolean> = {
  MIGRATION_CHECKSUM_MISMATCH: false,
  MIGRATION_FAILED: false,
  MIGRATION_PREVIOUSLY_FAILED: false,
  DATA_DIR_IN_USE: false,
  DATA_DIR_NOT_PRIVATE: false,
  DATABASE_INIT_FAILED: false,
  BUS_PAYLOAD_TOO_LARGE: false,
  BUS_CLOSED: false,
};

export class DbError extends Error {
  override readonly name = 'DbError';
  readonly retryable: boolean;

  constructor(
    readonly code: DbErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.retryable = RETRYABLE[code];
  }
}

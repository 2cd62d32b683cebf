/**
 * Timing knobs of Weft's Postgres connections (not PGlite: one process, one connection, nobody
 * else to wait on). They bound what a replica that stalls inside a transaction (SIGSTOP, a long
 * GC pause, a frozen VM) costs everyone else: it holds the commit-order lock and the `change_seq`
 * row lock, which every writer on every replica needs before it commits.
 */

/**
 * Postgres ends a session that sits idle inside an open transaction this long (its locks go
 * with it). Weft's transactions send their statements back to back, so a healthy one is never
 * idle for more than a few milliseconds between them; one idle for 5 s has a stalled process
 * behind it. Writers queued behind the stalled replica then proceed: they wait at most this long.
 * The price: a server whose event loop is blocked for longer than this in the middle of a
 * transaction loses that write (answered 503 `database_busy`, retryable) instead of delaying all.
 */
export const PG_IDLE_IN_TRANSACTION_TIMEOUT_MS = 5_000;

/**
 * A statement waiting this long for a lock (a row lock, or an advisory lock such as the
 * commit-order and allocation locks) is cancelled and the write answered 503 `database_busy`
 * (retryable). Longer than the idle-in-transaction bound, so a writer behind a stalled replica
 * is freed by that first and succeeds; this one catches a holder that is busy, not idle (a
 * statement of its own that does not finish). 200 registrations queued on the allocation lock
 * take ~3 s on Postgres, well inside it.
 */
export const PG_LOCK_TIMEOUT_MS = 15_000;

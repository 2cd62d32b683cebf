/**
 * Which database errors mean "busy, try again" rather than a bug: the write was rolled back
 * because it waited too long for a lock, or because Postgres ended its session (a stalled
 * transaction of ours, the server restarting). Answered 503 `database_busy` (retryable) instead
 * of 500 `internal`. The error reaches us through Prisma and its pg adapter, which wrap the
 * driver's error in different shapes by path (query, transaction, raw), so the SQLSTATE and the
 * driver's message are looked for anywhere in the error and its causes.
 */

/** SQLSTATEs of a write that was refused or cut off for time, never for its content. */
const BUSY_SQLSTATES = new Set([
  '55P03', // lock_not_available: lock_timeout
  '57014', // query_canceled: statement_timeout
  '25P03', // idle_in_transaction_session_timeout
  '57P01', // admin_shutdown: the session was terminated (pg_terminate_backend, server shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the server is starting
  '08000', '08003', '08006', // connection exceptions
  '40P01', // deadlock_detected (one side is rolled back and may retry)
]);

/** What the pg driver and Prisma say when the connection under a query or transaction is gone. */
const BUSY_MESSAGES = [
  /Connection terminated/i,
  /terminating connection due to idle-in-transaction timeout/i,
  /canceling statement due to lock timeout/i,
  /Client has encountered a connection error and is not queryable/i,
  /Transaction already closed/i,
  /Transaction API error: Transaction not found/i,
];

export function isDatabaseBusy(err: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): boolean => {
    if (typeof e !== 'object' || e === null || seen.has(e) || depth > 6) return false;
    seen.add(e);
    const o = e as Record<string, unknown>;
    for (const k of ['code', 'originalCode']) if (typeof o[k] === 'string' && BUSY_SQLSTATES.has(o[k])) return true;
    for (const k of ['message', 'originalMessage', 'reason']) {
      const m = o[k];
      if (typeof m === 'string' && BUSY_MESSAGES.some((re) => re.test(m))) return true;
    }
    if (o.kind === 'ConnectionClosed' || o.kind === 'SocketTimeout') return true;
    return ['cause', 'meta', 'driverAdapterError'].some((k) => visit(o[k], depth + 1));
  };
  return visit(err, 0);
}

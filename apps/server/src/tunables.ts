/**
 * The server's timing and size knobs, in one place (STYLE.md 16). Protocol constants (close codes,
 * message limits) live in @weft/protocol; these are choices of this implementation.
 */

/** Each replica stamps its row in `replicas` this often (database time), and then sweeps. */
export const REPLICA_HEARTBEAT_MS = 5_000;

/**
 * A replica whose last beat is older than this is dead (three missed beats): the next sweep by any
 * live replica deletes it with its sessions, and nodes left with no session go offline. So a node
 * on a replica that dies shows offline within REPLICA_DEAD_AFTER_MS + REPLICA_HEARTBEAT_MS (the
 * survivors' sweep period) plus the mapper's patch window.
 */
export const REPLICA_DEAD_AFTER_MS = 3 * REPLICA_HEARTBEAT_MS;

/** Most nodes one presence transaction writes (a connect storm is written in batches of this). */
export const PRESENCE_BATCH = 500;

/** After a failed presence write (database unreachable), wait this long before trying again. */
export const PRESENCE_RETRY_MS = 1_000;

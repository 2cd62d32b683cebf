/**
 * Timing and size knobs of the server (protocol constants such as close codes and message limits
 * live in @weft/protocol). Changing one of these changes behaviour only, never the wire format.
 */

/** The server pings every agent socket this often; an agent that misses two is dropped. */
export const PING_INTERVAL_MS = 15_000;


/**
 * Timing and size knobs of the control server (STYLE 16). Protocol constants (message sizes,
 * close codes) live in @weft/protocol; these are this server's choices.
 */

/**
 * Endpoint reports from one node are written at most once per this window: the first at once,
 * later ones in the window coalesced into one trailing write of the latest value.
 */
export const ENDPOINT_WRITE_INTERVAL_MS = 1_000;

/** Knobs of the relay package's servers (not spec values: those are in stun-constants.ts). */

/**
 * Receive buffer asked for on the STUN socket: a burst of requests waits here while the event loop
 * is busy instead of being dropped by the kernel. The kernel caps it at net.core.rmem_max (Linux
 * default 208 KiB); asking for more is harmless.
 */
export const STUN_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/** Send buffer likewise: responses are small, but a burst of them should not hit ENOBUFS. */
export const STUN_SEND_BUFFER_BYTES = 1024 * 1024;
/** SOFTWARE in responses: the product, no version (a version helps an attacker more than a client). */
export const STUN_SOFTWARE = 'weft';

/**
 * How far a WireGuard initiation's TAI64N timestamp may be from this server's clock and still
 * count (wg-responder.ts). Bounds a replay after a restart (the per-key replay memory is gone) to
 * this window; the embedding server passes its own machine-token skew so a node whose clock it
 * trusts for tokens is trusted here too.
 */
export const WG_INITIATION_MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** How often the replay memory drops keys whose last timestamp has left the skew window. */
export const WG_REPLAY_SWEEP_INTERVAL_MS = 60_000;

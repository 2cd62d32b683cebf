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

// ---- packet relay (relay-server.ts) -----------------------------------------------------------

/**
 * Unsent bytes one relay client may have queued (frames written for it that the kernel has not
 * taken yet) before newer packets to it are dropped. Sized for one relayed TCP flow: 4 MiB is
 * ~35 ms at 1 Gbit/s, above the bandwidth-delay product of a relayed path, yet bounded. The kernel's
 * own socket buffers (autotuned, tcp_wmem) come on top.
 */
export const RELAY_QUEUE_BYTES = 4 * 1024 * 1024;
/** The relay pings every client this often; one that answered nothing for two pings is cut off. */
export const RELAY_PING_INTERVAL_MS = 15_000;

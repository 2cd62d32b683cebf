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

/**
 * Initiations that pass mac1 cost an X25519 (0.4 ms here) before they can be refused, and mac1
 * only needs the responder's public key, which every node has. So they are rate limited before
 * that work: per source address (a node sends ~0.2/s; this lets ~100 nodes share one NAT address
 * at their retry rate) and in total (about a third of a core here; ~1,700/s is 10,000 nodes).
 * Over the limit = dropped and counted, like a datagram the network lost: WireGuard sends again.
 */
export const WG_INITIATIONS_PER_SOURCE = { perSecond: 20, burst: 40 } as const;
export const WG_INITIATIONS_TOTAL = { perSecond: 3_000, burst: 6_000 } as const;
/** Source addresses tracked for the per-source limit; past this the table starts over. */
export const WG_RATE_TABLE_MAX = 65_536;

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
/**
 * A client's UDP binding (relay-udp.ts) lapses this long after its last BIND (checked at each
 * keepalive round, so up to one ping interval later); its packets then go to its WebSocket again.
 * Clients rebind every 10 s (the agent's RELAY_UDP_BIND_INTERVAL_MS): three missed BINDs.
 */
export const RELAY_UDP_BINDING_TTL_MS = 30_000;

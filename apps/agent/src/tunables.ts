/**
 * Every timing and size knob of the agent in one place (protocol constants such as close codes
 * and message limits live in @weft/protocol). Changing one of these changes behaviour only, never
 * the wire format.
 */
import { LINK_STALE_AFTER_S } from '@weft/protocol';

/** Reconnect delay: full jitter over 250 ms * 2^attempt, capped at 30 s (see backoff.ts). */
export const RECONNECT_BACKOFF = { baseMs: 250, capMs: 30_000 } as const;
/** No message or ping for this long = dead connection. The server pings every 15 s. */
export const SILENCE_TIMEOUT_MS = 45_000;
/** WebSocket opening handshake limit. */
export const CONNECT_TIMEOUT_MS = 15_000;
/** One registration request. */
export const REGISTER_TIMEOUT_MS = 15_000;
/** `weft logout` telling the server; short, because local state goes either way. */
export const LOGOUT_TIMEOUT_MS = 5_000;
/** Interactive login: how often the pending registration is repeated. */
export const LOGIN_POLL_MS = 1000;
/** How often local addresses are re-read; endpoints are sent only when they changed. */
export const ENDPOINT_REFRESH_MS = 15_000;
/** `weft up` on a node with a last netmap waits this long for the server, then returns. */
export const RESUME_WAIT_MS = 10_000;
/**
 * Keepalive of the server's responder peer (netmap `wgResponders`). It never answers, so what this
 * sets is how WireGuard keeps initiating: wireguard-go retries every ~5 s for 90 s, then waits for
 * the next keepalive, so an initiation leaves WireGuard's own port at most ~25 s apart (measured,
 * docs/design.md). That bounds how stale the server's view of this node's NAT mapping gets, and
 * keeps the mapping itself alive (typical UDP NAT timeouts are 30 s or more).
 */
export const RESPONDER_KEEPALIVE_S = 25;
/**
 * WireGuard keepalive for a peer while the pair is in use (IN_USE_WINDOW_MS): keeps its NAT
 * mappings open. An idle pair gets none (engine.ts `setIdle`).
 */
export const PERSISTENT_KEEPALIVE_S = 25;
/**
 * The answering side of a pair waits this long for the initiator's handshake before it sends its
 * own (engine.ts `initiatesTo`). Long enough that a reachable initiator's handshake, one round
 * trip, has landed; short enough that a pair whose first direction cannot get through (the other
 * side's NAT filters us, or it lacks our endpoint) still connects well within 2 s of joining.
 */
export const ANSWERING_SIDE_GRACE_MS = 1000;
/** Interface MTU unless --mtu: fits WireGuard over IPv6 over PPPoE, tunnels and mobile links. */
export const DEFAULT_MTU = 1280;
/** `weft status` calls a path direct if the last handshake is at most this old (WireGuard rekeys every 2 min). */
export const DIRECT_HANDSHAKE_WINDOW_S = 180;
/**
 * A link is `stale` (dead: traffic attempted, no session) once its handshake is older than this
 * while tx grows; default LINK_STALE_AFTER_S (180 s, the team's three minutes; WireGuard rekeys every
 * 2 min while traffic flows). A test/ops knob, env WEFT_STALE_HANDSHAKE_S (whole seconds): labs set
 * a few seconds so a dead link shows within the test; below ~130 s a healthy link between rekeys
 * (keepalives count as traffic) is called stale too, so production keeps the default.
 */
export const STALE_HANDSHAKE_ENV = 'WEFT_STALE_HANDSHAKE_S';
export function staleHandshakeS(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return LINK_STALE_AFTER_S;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 1 || n > 86_400) throw new Error(`${STALE_HANDSHAKE_ENV} must be whole seconds from 1 to 86400, got "${raw}"`);
  return n;
}
/** Deltas are written to state.json at most this often (netmaps and phase changes at once). */
export const PERSIST_DEBOUNCE_MS = 500;
/**
 * Preferred region: another region replaces the current one only if its median STUN round trip is
 * lower by at least 20% of the current one's AND by at least 10 ms. Both, because either alone
 * flaps: 20% of a 2 ms LAN round trip is jitter, and 10 ms is noise on a 300 ms satellite link.
 * (Tailscale's DERP home uses a similar "better by a margin" rule for the same reason.)
 */
export const REGION_SWITCH = { minGainRatio: 0.2, minGainMs: 10 } as const;
/**
 * The home relay (home-relay.ts) moves by the same margins, and only after the same better region
 * won two netchecks in a row: moving closes the relay session and opens another, so one noisy
 * measurement must not do it.
 */
export const HOME_RELAY_SWITCH = { ...REGION_SWITCH, confirmations: 2 } as const;
/** `weft netcheck`: Binding requests per STUN address (the median of them is the latency). */
export const NETCHECK_PROBES = 3;
/**
 * `weft netcheck`: how long one Binding request waits (retransmitted at 0, 500 ms, 1.5 s: RFC 8489
 * RTO). A STUN address that does not answer the first request is not asked again, so a network that
 * blocks UDP gives its verdict after this long.
 */
export const NETCHECK_PROBE_TIMEOUT_MS = 2000;

// ---- relayed data path (path-choice.ts, relay-path.ts) ------------------------------------------

/**
 * A peer programmed on its netmap endpoint because the relay was not connected yet (peers are
 * otherwise relayed at once) moves to the relay once it is, if WireGuard has had no handshake
 * this long: above the answering side's grace (1 s) plus a round trip.
 */
export const RELAY_AFTER_NO_HANDSHAKE_MS = 2_000;

/**
 * A relayed pair is aimed at the peer's direct endpoint once the relay has been gone this long
 * (the server down or restarting): on the relay it carries nothing, and many pairs reach each
 * other directly. Not at once: a relay session that drops and comes straight back (a replica
 * handing over) should not move every pair.
 */
export const RELAY_DOWN_DIRECT_MS = 1_000;
/**
 * WireGuard's RekeyTimeout (whitepaper §6.1): an unanswered initiation is sent anew after it. A
 * handshake the peer began over the relay less than this ago is in progress: PeerPaths does not
 * remove the peer to start afresh (it would lose it), and RelayPath re-sends an initiation of ours
 * this young when the peer connects.
 */
export const REKEY_TIMEOUT_MS = 5_000;
/** How often peers' handshakes and counters are read to decide paths (probe windows are judged at this grain). */
export const PATH_CHECK_INTERVAL_MS = 250;
/**
 * Hole punching (path-choice.ts): slots between direct attempts after 0, 1, 2, 3, 4, 5+ failures.
 * Each interval divides the next, so two sides at different attempts still meet in the slower
 * one's slot. A probe holds the pair's tunnel for PROBE_WINDOW_MS (WireGuard aimed at the
 * candidate, the relay's packets held), and a TCP stream inside it stalls for 1-3 s each time
 * (bench:relay-profile, per second): so a pair whose punches keep failing is tried every 2 min,
 * not every 30 s. A change that may open a direct path (UDP back, roaming, new candidates) starts
 * the ladder again (PeerPaths.retryNow, networkChanged).
 */
export const PROBE_BACKOFF_S = [1, 5, 10, 30, 60, 120] as const;
/** How long WireGuard is aimed at one candidate endpoint of the peer during a probe. */
export const PROBE_WINDOW_MS = 1_000;
/** WireGuard keepalive during a probe: keeps punching packets leaving while the window lasts. */
export const PROBE_KEEPALIVE_S = 1;
/**
 * A direct path that sent data and got nothing back this long is dead (mapping flushed, roamed):
 * the peer goes back to the relay. A pair that pings both ways hears back within a round trip.
 */
export const DIRECT_DEAD_MS = 2_000;
/**
 * The initiating side of a relayed pair with no handshake this long after its last try makes
 * WireGuard try again at once (a fresh peer), instead of waiting for its RekeyTimeout (5 s): the
 * first initiation may have reached a peer whose relay or interface was not up yet.
 */
export const RELAY_KICK_MS = 1_500;
/** At most this many such tries per pair (then WireGuard's own retries): a peer that never answers costs little. */
export const RELAY_KICKS = 3;
/**
 * After a direct path died (DIRECT_DEAD_MS of silence) or this host roamed, the pair stays on the
 * relay at least this long before it is punched again: a probe window loses what the pair sends
 * (1 s per candidate), and right after the fallback it made one gap of both (nat-lab (f): 5.1 s,
 * (i): over 5 s in some runs; issue 9 wants traffic back within 5 s).
 */
export const FALLBACK_QUIET_MS = 3_000;
/**
 * A pair is in use while data (more than WireGuard's keepalives and handshakes) moved within this
 * window, and for this long after it appears: only then is direct retried and keepalive on. An
 * idle pair sends nothing. Below WireGuard's RekeyAfterTime (120 s) on purpose: a pair goes idle
 * before its keepalives bring the first rekey (which path-choice.ts `upkeepOnly` does not count
 * as data either).
 */
export const IN_USE_WINDOW_MS = 60_000;
/**
 * An idle direct pair is parked on the relay (peer-paths.ts) once nothing at all came from the
 * peer this long: more than a keepalive interval, so the other side's keepalive has stopped too.
 * A peer that keeps its side of the path open by itself (a phone's wg-quick keepalive) is never
 * parked: the path stays alive, and the peer might not be able to use the relay at all.
 */
export const PARK_AFTER_SILENCE_MS = 30_000;
/**
 * Receive and send buffers asked for on each local relay socket. Small buffers throttle a relayed
 * flow (NetBird measured ~100 Mbit/s); the kernel caps the request at net.core.rmem_max / wmem_max.
 */
export const RELAY_UDP_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Relay over UDP (relay-path.ts): the agent rebinds its UDP address with the relay this often (it
 * also keeps its NAT's mapping to the relay open; the relay forgets a binding after 30 s without
 * one); unanswered, again after RELAY_UDP_BIND_RETRY_MS, doubling up to the interval (UDP blocked costs
 * one datagram per 10 s, and a lifted block is noticed within 10 s); it relays over UDP while an answer
 * came within RELAY_UDP_DEAD_AFTER_MS (two missed binds and a half); else over the WebSocket.
 */
export const RELAY_UDP_BIND_INTERVAL_MS = 10_000;
export const RELAY_UDP_BIND_RETRY_MS = 1_000;
export const RELAY_UDP_DEAD_AFTER_MS = 25_000;
/**
 * Which transport carries relayed packets when the relay offers both (relay-path.ts): `websocket`,
 * or `udp` (bind with the relay's UDP ticket and use it while the binds are answered; the
 * WebSocket when UDP is blocked). `WEFT_RELAY_TRANSPORT` in the daemon's environment overrides.
 * WebSocket by default because it measured faster: Node.js pays a receive callback and a
 * sendmsg per UDP datagram at each of the three hops, where the WebSocket reads many packets per
 * TCP read and the relay writes a tick's packets in one writev. On the e2e lab (2 cores; one
 * iperf3 TCP stream, bench/results/relay-lab.json) the UDP relay did 0.60-0.67x the WebSocket's
 * (13.1 against 21.9 Mbit/s at load 23-26; 18 against 27 at load 10). It is not loss: during the
 * UDP phase no socket on the path dropped (the relay's, both agents' and wireguard-go's: 17
 * datagrams in 15 s) and TCP retransmitted 0-17 segments, where over the WebSocket wireguard-go's
 * own receive socket (208 KiB, the kernel default; this wireguard-go sets none) dropped 2,158
 * and TCP retransmitted 188-1,155 and was still faster. The UDP chain is bounded by CPU per
 * datagram under contention (bench:relay: 25-26 us of relay CPU per packet over UDP against
 * 14-18 over the WebSocket). UDP is the choice for a lossy long path, where a tunnel inside TCP stalls on
 * every retransmission.
 */
export const RELAY_TRANSPORT_DEFAULT: 'websocket' | 'udp' = 'websocket';
/**
 * Packets a peer relays before this node can hand them to WireGuard (its netmap entry or the
 * interface not there yet) wait this long, at most EARLY_PACKETS_PER_PEER of them for at most
 * EARLY_PACKET_PEERS senders (relay-path.ts `deliverEarly`): the pair's first initiation is among
 * them, and losing it cost a relay kick (RELAY_KICK_MS) or WireGuard's RekeyTimeout (5 s).
 */
export const EARLY_PACKET_TTL_MS = 3_000;
export const EARLY_PACKETS_PER_PEER = 4;
export const EARLY_PACKET_PEERS = 64;
/** Reconnect delay of the relay socket: full jitter over 250 ms * 2^attempt, capped at 10 s. */
export const RELAY_RECONNECT_BACKOFF = { baseMs: 250, capMs: 10_000 } as const;

/**
 * How often the agent reads its WireGuard stats for the link reporter (link-reporter.ts decides
 * what is sent: at most every 30 s for counters, a path or stale change after at most 5 s).
 */
export const LINK_OBSERVE_MS = 5_000;
/**
 * Background netcheck while the control session runs (agent.ts): first after this delay (and
 * again so until the netmap lists STUN servers), then every NETCHECK_REFRESH_MS; every
 * NETCHECK_BLOCKED_REFRESH_MS while UDP is blocked, so a block lifted leads to a punch within
 * seconds (a blocked netcheck itself takes NETCHECK_PROBE_TIMEOUT_MS).
 */
export const NETCHECK_FIRST_DELAY_MS = 1_000;
export const NETCHECK_REFRESH_MS = 60_000;
export const NETCHECK_BLOCKED_REFRESH_MS = 3_000;
/** How often this host's own addresses are read to notice roaming (agent.ts `watchLink`). */
export const LINK_CHECK_MS = 1_000;

/**
 * A relayed peer with no handshake that the relay says it cannot reach (PEER_GONE) is aimed at
 * directly after this long on the relay (peer-paths.ts): long enough for a peer that joined at
 * the same moment to dial the relay and for the relayed handshake retries (RELAY_KICKS x
 * RELAY_KICK_MS) to run.
 */
export const RELAY_UNREACHABLE_GRACE_MS = 5_000;

/**
 * Hole punches an idle pair still gets (in its backoff slots: 1 s, then 5 s, then 10 s apart)
 * before punching waits for traffic (peer-paths.ts): enough for two sides that started probing
 * at different steps to meet in one slot.
 */
export const PROBES_WHEN_IDLE = 3;

/**
 * A relayed pair carrying a stream, at least this many bytes per second either way over the last
 * check (~2 Mbit/s: far above pings, keepalives and an interactive shell), is "streaming".
 */
export const STREAM_BYTES_PER_S = 256 * 1024;
/**
 * After PROBES_WHEN_IDLE failed probes in a row, a streaming pair's next probe waits for a pause
 * in the stream, for at most this long. A probe aims WireGuard at a candidate for up to
 * PROBE_WINDOW_MS each, so a probe that fails stalls the stream for a second or more (TCP backs
 * off on the loss and climbs back for seconds more); after three failures with no change in
 * either network, another is far more likely to cost the stream than to free it. A change that
 * may open a path (new candidates, UDP back, roaming) starts the ladder again and probes at once.
 */
export const STREAM_PROBE_DEFER_MAX_MS = 300_000;

// ---- adaptive MTU (mtu.ts, mtu-probe.ts) ----------------------------------------------------------

/** UDP port of the path-MTU probe responder on each agent's tunnel IPv4 (allowed in by Weft's nft table). */
export const MTU_PROBE_PORT = 41699;
/** The interface MTU is never below this (IPv6's minimum; what every path carries). */
export const MTU_FLOOR = 1280;
/** Nor above this: WireGuard's 1420 on a 1500 underlay (1500 - 80, the IPv6 overhead). */
export const MTU_CEILING = 1420;
/**
 * A search starts with a probe at MTU_FLOOR (every path carries it): no ack to it within
 * MTU_PROBE_FIRST_TIMEOUT_MS x MTU_PROBE_TRIES = the peer has no responder (an older weft), and
 * the path stays unmeasured. Its round trip sets how long each later probe waits: 3 x RTT +
 * 200 ms, within [MTU_PROBE_MIN_TIMEOUT_MS, MTU_PROBE_FIRST_TIMEOUT_MS]. Each size is sent
 * MTU_PROBE_TRIES times before it counts as too big (a lost packet is not a limit).
 */
export const MTU_PROBE_FIRST_TIMEOUT_MS = 1_500;
export const MTU_PROBE_MIN_TIMEOUT_MS = 300;
export const MTU_PROBE_TRIES = 3;
/** After the interface MTU changes, wireguard-go learns it from netlink: probes wait this long so its padding uses the new value. */
export const MTU_SETTLE_MS = 100;
/** How often the probe loop looks at peers (joins, path changes, traffic). */
export const MTU_CHECK_MS = 2_000;
/** A pair in use is probed again this often (slowly: a probe moves the interface MTU for a few seconds). */
export const MTU_REPROBE_MS = 10 * 60_000;
/** A higher interface MTU is taken only once it has been the target this long without a break (down: at once). */
export const MTU_UP_HOLD_MS = 5_000;

/**
 * wireguard-go's UDP receive and send buffers, set by the agent once the interface is configured
 * (wg-socket-buffers.ts): what wireguard-go since 2023 asks for itself (7 MiB), for the older
 * ones (Debian's 0.0.20220316) that keep the kernel default of 208 KiB.
 */
export const WG_SOCKET_BUFFER_BYTES = 7 * 1024 * 1024;

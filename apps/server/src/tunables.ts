/**
 * Timing and size knobs of the server (protocol constants such as close codes and message limits
 * live in @weft/protocol). Changing one of these changes behaviour only, never the wire format.
 */

/** The server pings every agent socket this often; an agent that misses two is dropped. */
export const PING_INTERVAL_MS = 15_000;

/**
 * What one agent socket may have queued (written by the server, not yet taken by the kernel) is
 * this many of its own current netmaps: a healthy agent has at most one netmap in flight plus
 * the deltas behind it. A socket over the bound is dropped; the agent reconnects and resyncs.
 */
export const SOCKET_QUEUE_NETMAPS = 3;
/**
 * Full netmaps (and resumes) being written at once, the rest waiting their turn in order
 * (mapper/netmap-gate.ts): enough to keep the server busy writing, few enough that a reconnect
 * storm finishes the netmaps it started instead of sending every agent a little of its own.
 */
export const NETMAPS_IN_FLIGHT = 64;

/**
 * The listening socket's accept queue (listen(2) backlog; the kernel caps it at
 * net.core.somaxconn, 4096 by default since Linux 5.4). Node's default is 511: when thousands of
 * agents reconnect at once (a restart) the queue overflowed, the kernel dropped the handshakes'
 * last ACK, and each agent waited out TCP's retransmission backoff (seconds, doubling) with the
 * server's CPU idle. Measured at 10,000 agents: 212,809 overflows over two benches' storms.
 */
export const LISTEN_BACKLOG = 4096;

/**
 * Agent connections start their work (token, upgrade, session, netmap or resume) in slices of this
 * many milliseconds, the event loop turning between them (agent/turns.ts): a reconnect storm held
 * one poll phase for 11-21 s before.
 */
export const AGENT_TURN_SLICE_MS = 10;
/**
 * ... and a netmap that has not left after this long gives its place back anyway (a reader that
 * never reads keeps its netmap queued until its queue bound drops it): far longer than a netmap
 * takes in a storm, far shorter than the agent's silence timeout (45 s).
 */
export const NETMAP_TURN_MS = 10_000;
/** ... but never less than this, so a small tailnet's bursts of deltas do not trip it. */
export const SOCKET_QUEUE_FLOOR_BYTES = 2 * 1024 * 1024;
/**
 * A socket dropped by the server (slow reader, node deleted, replaced) is sent its close code and
 * then destroyed after this long if the peer has not completed the close: ws would otherwise keep
 * the socket and every queued byte for its 30 s close timeout.
 */
export const SOCKET_CLOSE_GRACE_MS = 1000;

/**
 * Resync requests: a burst of this many is answered at once, then one per RESYNC_INTERVAL_MS
 * (later requests wait for their turn, several waiting ones are answered by one netmap). An agent
 * asks only after a seq gap, so a healthy one never comes near this.
 */
export const RESYNC_BURST = 3;
export const RESYNC_INTERVAL_MS = 5_000;

/**
 * Endpoint reports from one node are written at most once per this window: the first at once,
 * later ones in the window coalesced into one trailing write of the latest value.
 */
export const ENDPOINT_WRITE_INTERVAL_MS = 1_000;

/** Each replica stamps its row in `replicas` this often (database time), and then sweeps. */
export const REPLICA_HEARTBEAT_MS = 5_000;

/**
 * A replica whose last beat is older than this is dead (three missed beats): the next sweep by any
 * live replica deletes it with its sessions, and nodes left with no session go offline. So a node
 * on a replica that dies shows offline within REPLICA_DEAD_AFTER_MS + REPLICA_HEARTBEAT_MS (the
 * survivors' sweep period) plus the mapper's patch window.
 */
export const REPLICA_DEAD_AFTER_MS = 3 * REPLICA_HEARTBEAT_MS;

/**
 * On the embedded database a restarted server treats its predecessor's sessions as those of a
 * replica that just stopped beating, swept only after this grace: agents reconnecting within it
 * stay online throughout, so a restart sends no offline/online patches (sweeping at once made every
 * return news to every agent already back: N^2/2 patches). An agent retrying through the downtime
 * waits up to 30 s between attempts (agent RECONNECT_BACKOFF.capMs), and a storm of thousands is
 * admitted over tens of seconds; a node that does not come back shows offline after the grace.
 */
export const SOLE_RESTART_GRACE_MS = 60_000;

/** Most nodes one presence transaction writes (a connect storm is written in batches of this). */
export const PRESENCE_BATCH = 500;

/**
 * A connect or disconnect waits this long for others before its presence transaction starts, so a
 * reconnect storm is written in few large batches instead of one transaction per few sockets (each
 * costs several statements whatever its size). It delays the online patch peers get by as much.
 */
export const PRESENCE_COALESCE_MS = 50;

/** After a failed presence write (database unreachable), wait this long before trying again. */
export const PRESENCE_RETRY_MS = 1_000;

/** Netcheck verdicts reported within this window reach the other replicas in one outbox row (state/nat.ts). */
export const NAT_COALESCE_MS = 50;

/** After a failed verdict write, wait this long before trying again. */
export const NAT_RETRY_MS = 1_000;

// ---- abuse limits (rate-limit.ts) ------------------------------------------------------------

/**
 * New interactive logins (pending-login rows) one source address may start: a burst of this
 * many, refilled at REGISTER_REFILL_PER_S. A person runs `weft up` on a few machines behind one
 * NAT; an agent polling its own pending login spends nothing.
 */
export const REGISTER_BURST = 10;
export const REGISTER_REFILL_PER_S = 1 / 6;

/**
 * Failed credential attempts (an API key or auth key that does not exist) one source address may
 * make: a burst, then one per 6 s. A mistyped key now and then is never slowed; guessing is.
 * Requests with a valid key spend nothing.
 */
export const AUTH_FAILURE_BURST = 10;
export const AUTH_FAILURE_REFILL_PER_S = 1 / 6;

/**
 * Source addresses each limiter remembers. Past this the least recently seen is forgotten (it
 * starts again with a full bucket), so spraying from many addresses costs the attacker no more
 * memory of ours than this: about 100 bytes an entry.
 */
export const RATE_LIMIT_MAX_ADDRESSES = 10_000;

/** IPv6 sources are limited per /64: one host commonly holds a whole /64. */
export const RATE_LIMIT_IPV6_PREFIX_BITS = 64;

/** Default cap on outstanding (unexpired) pending logins across the deployment (config `maxPendingLogins`). */
export const MAX_PENDING_LOGINS = 1000;

// ---- reaping ---------------------------------------------------------------------------------

/** How often expired pending logins are deleted. */
export const LOGIN_REAP_INTERVAL_MS = 60_000;

/**
 * How long an expired pending login is kept before it is reaped, so an agent still polling it is
 * told `login_expired` (and says so) rather than silently handed a new code.
 */
export const LOGIN_REAP_GRACE_S = 60;

/**
 * How often each replica looks for nodes whose key expiry has passed and cuts them off
 * (state/nodes.ts `sweepExpired`; one replica claims each node). A node is also hidden from any
 * netmap built after its expiry, so this bounds how long peers that already have it keep it.
 */
export const NODE_EXPIRY_SWEEP_INTERVAL_MS = 10_000;

// ---- change outbox (outbox-follower.ts) ------------------------------------------------------

/**
 * Each replica reads the change outbox this often even when no NOTIFY woke it, so a change whose
 * hint was lost reaches its agents within this interval plus one read and the mapper's work.
 */
export const CHANGE_CATCH_UP_INTERVAL_MS = 1_000;

/** Most outbox rows one read takes; a longer backlog is read in several. */
export const CHANGE_CATCH_UP_BATCH = 1_000;

/**
 * Outbox rows are kept this long. A replica that could not read for longer (the rows it needs are
 * gone) reloads every node and resends every netmap instead.
 */
export const CHANGE_RETENTION_MS = 10 * 60_000;

/** How often each replica deletes outbox rows older than CHANGE_RETENTION_MS. */
export const CHANGE_PRUNE_INTERVAL_MS = 60_000;

/**
 * Request bodies of the policy routes that carry a policy text (PUT, check) may be this large
 * (the rest of the API: 64 KiB). Room for MAX_POLICY_CHARS of text as JSON; the caller is
 * authenticated before the body is read, so only admins can make the server buffer this much.
 */
export const POLICY_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** Versions a policy history page holds when the request does not say. */
export const POLICY_HISTORY_PAGE = 20;

/**
 * A node's reflexive endpoint (seen on a handshake initiation to the responder key) is written at
 * most once per this window: an unchanged one is never written, and wireguard-go sends an
 * initiation every ~5 s (measured, docs/design.md), so this only bounds a NAT that keeps changing.
 */
export const WG_MAPPING_WRITE_INTERVAL_MS = 1_000;

// ---- TLS (tls.ts) ----------------------------------------------------------------------------

/**
 * How often the certificate and key files are checked for a change (stat polling, which follows a
 * rename or a swapped symlink). A renewed certificate is served to new connections within this.
 */
export const TLS_RELOAD_POLL_MS = 2_000;

// ---- web sessions and sign-in (web/, state/web-sessions.ts) ----------------------------------

/**
 * A browser session ends this long after sign-in however active it is: a working day. Signing in
 * again is one redirect with an identity provider, and a stolen cookie is good for no longer.
 */
export const SESSION_MAX_AGE_MS = 12 * 60 * 60_000;

/** ... and after this long without a request: a laptop left signed in over lunch stays signed in, overnight does not. */
export const SESSION_IDLE_TIMEOUT_MS = 2 * 60 * 60_000;

/** A session's last-seen time is written at most this often, so reads do not all become writes. */
export const SESSION_TOUCH_INTERVAL_MS = 60_000;

/** How often expired sessions and abandoned OIDC sign-ins are deleted. */
export const SESSION_REAP_INTERVAL_MS = 10 * 60_000;

/** An OIDC sign-in must come back from the identity provider within this (a person typing a password and a second factor). */
export const OIDC_LOGIN_TIMEOUT_MS = 10 * 60_000;

/** How long a fetched OIDC discovery document (and the JWKS location in it) is used before it is fetched again. */
export const OIDC_DISCOVERY_TTL_MS = 60 * 60_000;

/** Timeout of each request to the identity provider (discovery, token, JWKS). */
export const OIDC_HTTP_TIMEOUT_MS = 10_000;

/** Clock skew tolerated on an id_token's exp/iat/nbf, in seconds. */
export const OIDC_CLOCK_TOLERANCE_S = 30;

/**
 * Failed password sign-ins: per source address a burst, then one per 6 s (as failed API keys);
 * and per account name the same, so guessing one account's password from many addresses is as
 * slow. The cost of the per-account bucket: someone who knows the name can keep that account's
 * password sign-in refused (the admin socket and OIDC still work). A right password spends nothing.
 */
export const SIGN_IN_FAILURE_BURST = 10;
export const SIGN_IN_FAILURE_REFILL_PER_S = 1 / 6;

/**
 * OIDC sign-ins one source address may start (each is a row until its callback or expiry): a
 * burst, then one every 3 s. A person starts one per sign-in; a flood of starts cannot grow the
 * table faster than this per address.
 */
export const OIDC_START_BURST = 20;
export const OIDC_START_REFILL_PER_S = 1 / 3;

/** SCIM (/scim/v2): most resources one list page returns (a larger `count` is capped, RFC 7644 3.4.2.4). */
export const SCIM_MAX_PAGE = 1000;
/** SCIM: resources per list page when the client sends no `count`. */
export const SCIM_DEFAULT_PAGE = 100;
/** SCIM: largest request body taken. */
export const SCIM_BODY_LIMIT_BYTES = 1024 * 1024;
// ---- relay mesh between replicas (agent/relay-mesh.ts) ----------------------------------------

/** A replica's mesh token is accepted this far from the receiving replica's clock (both read one database's settings, not its clock). */
export const MESH_TOKEN_MAX_SKEW_MS = 5 * 60_000;
/** A lost link to a peer replica is redialled after this, doubling up to the max. */
export const MESH_RECONNECT_MIN_MS = 250;
export const MESH_RECONNECT_MAX_MS = 10_000;
/**
 * Standalone relays (agent/relay-region.ts): after a change that may alter who sees whom, the
 * peer sets of the nodes on standalone relays are pushed again this much later (one push per burst
 * of changes). Cut-offs are pushed at once, not after this.
 */
export const REGION_PEERS_PUSH_DELAY_MS = 50;
/**
 * Link reports (links.ts): how often the batched write of due `node_links` rows runs; the least
 * time between two writes of one node's row when a link's path or stale flag changed; and when
 * only counters moved.
 */
export const LINK_FLUSH_MS = 5_000;
export const LINK_WRITE_INTERVAL_MS = 30_000;
export const LINK_REFRESH_MS = 300_000;

/**
 * Most deltas the mapper sends in one turn of the event loop; a fan-out to more sessions goes on
 * after a setImmediate, so a write's queries (PGlite runs in this thread) and its REST response
 * are not held behind 10,000 socket writes. Deltas still leave in order, per session and overall.
 */
export const DELTA_SEND_SLICE = 500;

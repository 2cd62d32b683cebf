/**
 * Every timing and size knob of the server (STYLE.md 16), each with why it has its value.
 * Operator-facing settings live in config.ts; these are the defaults and fixed limits behind them.
 */

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

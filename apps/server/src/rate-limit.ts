/**
 * Per-source-address token buckets, in memory, one table per replica. Bounded: the table holds at
 * most `maxKeys` addresses and forgets the least recently seen first (a forgotten address starts
 * with a full bucket, which is the lenient side). Refill is computed on use; there is no timer.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ApiError, Errors } from './errors.js';
import {
  AUTH_FAILURE_BURST, AUTH_FAILURE_REFILL_PER_S, RATE_LIMIT_IPV6_PREFIX_BITS, RATE_LIMIT_MAX_ADDRESSES, REGISTER_BURST,
  OIDC_START_BURST, OIDC_START_REFILL_PER_S, REGISTER_REFILL_PER_S, SIGN_IN_FAILURE_BURST, SIGN_IN_FAILURE_REFILL_PER_S,
} from './tunables.js';

export interface RateLimitOptions {
  /** Tokens a fresh address has, and the most it can save up. */
  burst: number;
  /** Tokens added per second. */
  perSecond: number;
  maxKeys: number;
  /** Milliseconds clock; tests pass their own. */
  now?: () => number;
}

interface Bucket { tokens: number; at: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly opts: RateLimitOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Seconds until `key` may act (0 = now), without spending. */
  retryAfter(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    this.refill(b);
    return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / this.opts.perSecond);
  }

  /** Spends one token for `key`; returns 0 if it had one, else the seconds until it will. */
  take(key: string): number {
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: Map order is least recently seen first
      this.refill(b);
    } else {
      b = { tokens: this.opts.burst, at: this.now() };
      while (this.buckets.size >= this.opts.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return Math.ceil((1 - b.tokens) / this.opts.perSecond);
    b.tokens -= 1;
    return 0;
  }

  /** Addresses currently remembered. */
  get size(): number {
    return this.buckets.size;
  }

  private refill(b: Bucket): void {
    const t = this.now();
    b.tokens = Math.min(this.opts.burst, b.tokens + ((t - b.at) / 1000) * this.opts.perSecond);
    b.at = t;
  }
}

/**
 * The key an address is limited under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64.
 * Anything else (a unix socket has no address) is its own key.
 */
export function sourceKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip;
  const groups = expandIpv6(ip.split('%')[0]!);
  const keep = RATE_LIMIT_IPV6_PREFIX_BITS / 16;
  return `${groups.slice(0, keep).join(':')}::/${RATE_LIMIT_IPV6_PREFIX_BITS}`;
}

function expandIpv6(ip: string): string[] {
  let s = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16).toString(16));
}

/** Account names share the sign-in table with addresses; the prefix keeps the two apart. */
const accountKey = (name: string) => `account:${name.toLowerCase()}`;

/** A 429 `rate_limited` with `Retry-After` in whole seconds. */
export function rateLimited(detail: string, retryAfterS: number): ApiError {
  const s = Math.max(1, Math.ceil(retryAfterS));
  return new ApiError(Errors.rateLimited, `${detail}; retry in ${s} s`, { headers: { 'retry-after': String(s) } });
}

export interface AbuseLimitOptions {
  registerBurst?: number;
  registerPerSecond?: number;
  authFailureBurst?: number;
  authFailurePerSecond?: number;
  signInFailureBurst?: number;
  signInFailurePerSecond?: number;
  maxAddresses?: number;
  now?: () => number;
}

/**
 * What an anonymous caller may cost this replica: new interactive logins, and failed API-key
 * and auth-key attempts, each per source address. `ip` is the request's address as Fastify
 * resolves it (X-Forwarded-For only from a configured trusted proxy).
 */
export class AbuseLimits {
  readonly logins: RateLimiter;
  readonly authFailures: RateLimiter;
  /** Failed password sign-ins, keyed by source address and, separately, by the account name tried. */
  readonly signInFailures: RateLimiter;
  /** OIDC sign-ins started (rows in oidc_logins until used or expired), per source address. */
  readonly oidcStarts: RateLimiter;
  /** Requests refused with 429 so far, per limit (read by metrics). */
  readonly refusals = { login: 0, credentials: 0, signIn: 0, oidcStart: 0 };

  constructor(o: AbuseLimitOptions = {}) {
    const maxKeys = o.maxAddresses ?? RATE_LIMIT_MAX_ADDRESSES;
    this.logins = new RateLimiter({ burst: o.registerBurst ?? REGISTER_BURST, perSecond: o.registerPerSecond ?? REGISTER_REFILL_PER_S, maxKeys, now: o.now });
    this.authFailures = new RateLimiter({ burst: o.authFailureBurst ?? AUTH_FAILURE_BURST, perSecond: o.authFailurePerSecond ?? AUTH_FAILURE_REFILL_PER_S, maxKeys, now: o.now });
    this.oidcStarts = new RateLimiter({ burst: OIDC_START_BURST, perSecond: OIDC_START_REFILL_PER_S, maxKeys, now: o.now });
    this.signInFailures = new RateLimiter({ burst: o.signInFailureBurst ?? SIGN_IN_FAILURE_BURST, perSecond: o.signInFailurePerSecond ?? SIGN_IN_FAILURE_REFILL_PER_S, maxKeys, now: o.now });
  }

  /**
   * Throws 429 while `ip`, or the account `name` from anywhere, has used up its failed password
   * sign-ins; spends nothing. Checked before the password is, so a refused attempt tells nothing.
   */
  checkSignIn(ip: string | undefined, name: string): void {
    const wait = Math.max(this.signInFailures.retryAfter(sourceKey(ip)), this.signInFailures.retryAfter(accountKey(name)));
    if (wait > 0) {
      this.refusals.signIn++;
      throw rateLimited('too many failed sign-ins from this address or for this account', wait);
    }
  }

  /** Spends an OIDC-start token for `ip` or throws 429. */
  admitOidcStart(ip: string | undefined): void {
    const wait = this.oidcStarts.take(sourceKey(ip));
    if (wait > 0) {
      this.refusals.oidcStart++;
      throw rateLimited('too many sign-ins started from this address', wait);
    }
  }

  /** Records a failed password sign-in from `ip` for `name`. */
  signInFailed(ip: string | undefined, name: string): void {
    this.signInFailures.take(sourceKey(ip));
    this.signInFailures.take(accountKey(name));
  }

  /** Spends a new-login token for `ip` or throws 429. */
  admitLogin(ip: string | undefined): void {
    const wait = this.logins.take(sourceKey(ip));
    if (wait > 0) {
      this.refusals.login++;
      throw rateLimited('too many new device logins from this address', wait);
    }
  }

  /** Throws 429 while `ip` has used up its failed credential attempts; spends nothing. */
  checkCredentials(ip: string | undefined): void {
    const wait = this.authFailures.retryAfter(sourceKey(ip));
    if (wait > 0) {
      this.refusals.credentials++;
      throw rateLimited('too many failed key attempts from this address', wait);
    }
  }

  /** Records a failed API-key or auth-key attempt from `ip`. */
  credentialFailed(ip: string | undefined): void {
    this.authFailures.take(sourceKey(ip));
  }
}

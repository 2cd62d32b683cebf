/**
 * Reconnect delays: exponential with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): attempt n waits uniformly in [0, min(cap, base * 2^n)). Full jitter spreads a fleet
 * that lost the server at the same instant, so a restarted server is not hit by all at once.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  random?: () => number;
}

export { RECONNECT_BACKOFF } from './tunables.js';

/** Upper bound of the delay before reconnect attempt `attempt` (0-based). */
export function backoffCeiling(attempt: number, { baseMs, capMs }: BackoffOptions): number {
  // 2^attempt overflows to Infinity long after it passes any cap; min() handles that.
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
}

export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  return Math.floor(random() * backoffCeiling(attempt, opts));
}

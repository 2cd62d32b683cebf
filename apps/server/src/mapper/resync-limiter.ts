/**
 * The bookkeeping behind a session's resync requests, pure so it can be tested with a fake clock:
 * a token bucket (`burst` at once, then one per `intervalMs`) and how many requests arrived since
 * the last netmap was sent.
 */
export class ResyncLimiter {
  private tokens: number;
  private at = -Infinity;
  private waiting = 0;

  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
  ) {
    this.tokens = burst;
  }

  /**
   * Books a netmap for a request at `now`: 0 = send it now, otherwise the milliseconds until its
   * turn (the token is spent in advance, so the caller sends at that time without asking again).
   */
  take(now: number): number {
    if (this.at !== -Infinity) this.tokens = Math.min(this.burst, this.tokens + (now - this.at) / this.intervalMs);
    this.at = now;
    this.tokens -= 1;
    this.waiting++;
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens * this.intervalMs);
  }

  /** A request answered by a netmap that is already on its way. */
  fold(): void {
    this.waiting++;
  }

  /** Requests since the last netmap. */
  unanswered(): number {
    return this.waiting;
  }

  /** A netmap was sent: every request so far is answered. */
  answered(): void {
    this.waiting = 0;
  }
}

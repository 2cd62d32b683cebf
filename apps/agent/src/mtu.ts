/**
 * Adaptive MTU, the pure part: the binary search over inner probe sizes, the ceiling the underlay
 * allows, and the interface MTU chosen from every path in use (with hysteresis). mtu-probe.ts
 * does the I/O (probe socket, responder, interface MTU) and calls these.
 *
 * Sizes are inner IP packet sizes (what the tunnel interface carries). An inner packet of N bytes
 * leaves as N + 60 on an IPv4 underlay (20 IP + 8 UDP + 32 WireGuard) and N + 80 on IPv6.
 */
import { MTU_CEILING, MTU_FLOOR, MTU_UP_HOLD_MS } from './tunables.js';

export const OVERHEAD = { 4: 60, 6: 80 } as const;

/**
 * The largest inner size worth probing to a peer whose packets leave through a device of
 * `underlayMtu`: that MTU less the IPv6 overhead (so 1420 on 1500, whatever the family: a path
 * can change family), within [MTU_FLOOR, MTU_CEILING]. A peer relayed over the WebSocket has no
 * underlay of its own (null: MTU_CEILING; TCP segments it); over UDP, its underlay is the device
 * toward the relay less the relay's header (mtu-probe.ts).
 */
export function probeCeiling(underlayMtu: number | null): number {
  if (underlayMtu === null || !Number.isFinite(underlayMtu)) return MTU_CEILING;
  return Math.max(MTU_FLOOR, Math.min(MTU_CEILING, underlayMtu - OVERHEAD[6]));
}

/**
 * Binary search for the largest inner size a path carries, between MTU_FLOOR (assumed to work:
 * IPv6's minimum; a path that cannot carry it is not usable anyway) and `ceiling`. `next()` is
 * the size to probe, or null when done; `record(size, ok)` feeds the answer back. A size that was
 * acked is a lower bound, one that was not an upper bound; `result` is the largest acked size.
 * The first probe is the ceiling itself, so a clean 1500 underlay takes one probe.
 */
export class MtuSearch {
  private lo: number;
  /** Smallest size known not to work (exclusive bound); ceiling + 1 while none failed. */
  private hi: number;
  private first = true;
  readonly probed: Array<{ size: number; ok: boolean }> = [];

  constructor(readonly ceiling: number, floor = MTU_FLOOR) {
    if (ceiling < floor) throw new Error(`MTU search ceiling ${ceiling} is below the floor ${floor}`);
    this.lo = floor;
    this.hi = ceiling + 1;
  }

  next(): number | null {
    if (this.hi - this.lo <= 1) return null;
    if (this.first) return this.hi - 1;
    return Math.floor((this.lo + this.hi) / 2);
  }

  record(size: number, ok: boolean): void {
    this.first = false;
    this.probed.push({ size, ok });
    if (ok) this.lo = Math.max(this.lo, size);
    else this.hi = Math.min(this.hi, size);
    // An ack at or above a failure (a path that changed mid-search): the ack wins and the failures
    // above it are forgotten, so the search goes on up to the ceiling.
    if (this.hi <= this.lo) this.hi = this.ceiling + 1;
  }

  get done(): boolean {
    return this.next() === null;
  }

  /** The largest size acked (MTU_FLOOR when none above it was). */
  get result(): number {
    return this.lo;
  }
}

/**
 * The interface MTU for the paths in use: the smallest of their path MTUs (every path must carry
 * it), clamped to [MTU_FLOOR, ceiling]; null when no path in use has been measured (keep what is set).
 */
export function interfaceMtuFor(pathMtus: Iterable<number>, ceiling = MTU_CEILING): number | null {
  let min: number | null = null;
  for (const m of pathMtus) min = min === null ? m : Math.min(min, m);
  if (min === null) return null;
  return Math.max(MTU_FLOOR, Math.min(ceiling, min));
}

/**
 * Hysteresis on the interface MTU: a lower target is taken at once (a path that cannot carry the
 * current MTU blackholes large packets now); a higher one only once it has been the target for
 * `holdMs` without a break (a pair flapping between active and idle, or a path whose measurement
 * flaps, does not move the interface up and down; new TCP connections do not pick an MSS a
 * moment before it shrinks again). The smallest target seen while waiting is the one taken.
 */
export class MtuHysteresis {
  private pendingUp: { target: number; since: number } | null = null;

  constructor(public current: number, private readonly holdMs = MTU_UP_HOLD_MS) {}

  /** Feeds the target now (null: nothing measured in use); returns the MTU to set now, or null to leave it. */
  update(target: number | null, nowMs: number): number | null {
    if (target === null || target === this.current) {
      this.pendingUp = null;
      return null;
    }
    if (target < this.current) {
      this.pendingUp = null;
      this.current = target;
      return target;
    }
    const p = this.pendingUp;
    this.pendingUp = p ? { target: Math.min(p.target, target), since: p.since } : { target, since: nowMs };
    if (nowMs - this.pendingUp.since < this.holdMs) return null;
    this.current = this.pendingUp.target;
    this.pendingUp = null;
    return this.current;
  }
}

/**
 * Whether a pair is in use over an interval: more moved than WireGuard keepalives and this
 * agent's own probes account for (`probeBytes`: what the probes and their acks added). A 32-byte
 * keepalive each 25 s (plus the transport overhead) stays well under `slackBytes`.
 */
export function inUse(deltaBytes: number, probeBytes: number, slackBytes = 4096): boolean {
  return deltaBytes - probeBytes > slackBytes;
}

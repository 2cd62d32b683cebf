/**
 * `WgResponder`: the stateful side of reading WireGuard initiations sent to a responder key that
 * never answers (wg-initiation.ts does the cryptography). An initiation counts when it is well
 * formed, mac1 verifies, it authenticates to an initiator key the embedder knows, its timestamp
 * is within the clock-skew window, and it is newer than the last one accepted from that key (the
 * WireGuard rule against replays). The datagram's source address is then what the initiator's
 * NAT maps its WireGuard port to. Nothing a peer sends can throw out of `receive`: every refusal
 * is counted by reason.
 */
import { looksLikeInitiation, mac1Valid, openInitiation, tai64nToUnixMs, type ResponderKey } from './wg-initiation.js';
import { WG_INITIATION_MAX_CLOCK_SKEW_MS, WG_INITIATIONS_PER_SOURCE, WG_INITIATIONS_TOTAL, WG_RATE_TABLE_MAX, WG_REPLAY_SWEEP_INTERVAL_MS } from './tunables.js';

/** Counters since start, by outcome (for metrics). */
export interface WgResponderCounters {
  /** Authenticated, fresh, from a known key. */
  accepted: number;
  /** Not 148 bytes, or not message type 1. */
  malformed: number;
  /** mac1 does not verify: not sent to this responder key (or corrupted). */
  badMac1: number;
  /** mac1 verifies but the static key or timestamp does not decrypt: forged or corrupted. */
  unauthenticated: number;
  /** Authenticated to a key the embedder does not know (deleted node, another deployment). */
  unknownKey: number;
  /** Timestamp not newer than the last accepted from the same key. */
  replayed: number;
  /** Timestamp outside the clock-skew window. */
  clockSkew: number;
  /** Over the per-source or total rate (tunables.ts): dropped before any Diffie-Hellman. */
  rateLimited: number;
}

export type WgRefusal = 'malformed' | 'bad-mac1' | 'unauthenticated' | 'unknown-key' | 'replayed' | 'clock-skew' | 'rate-limited';

export type WgReceived<T> = { ok: true; initiator: T; initiatorKey: Buffer } | { ok: false; reason: WgRefusal };

export interface WgResponderOptions<T> {
  key: ResponderKey;
  /** Who holds this WireGuard public key (32 raw bytes); undefined = nobody we serve. Called per packet: keep it a map lookup. */
  lookup: (initiatorKey: Buffer) => T | undefined;
  maxClockSkewMs?: number;
  /** Rate limits; absent = tunables.ts. */
  perSource?: Rate;
  total?: Rate;
  /** For tests. */
  now?: () => number;
}

export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

/** A token bucket: `take` spends one token if there is one. */
class Bucket {
  private tokens: number;
  constructor(private readonly rate: Rate, private at: number) {
    this.tokens = rate.burst;
  }
  take(now: number): boolean {
    // Wall time may step back (NTP): no refill then, never a negative one.
    this.tokens = Math.min(this.rate.burst, this.tokens + (Math.max(0, now - this.at) * this.rate.perSecond) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class WgResponder<T> {
  readonly counters: WgResponderCounters = { accepted: 0, malformed: 0, badMac1: 0, unauthenticated: 0, unknownKey: 0, replayed: 0, clockSkew: 0, rateLimited: 0 };
  private readonly sources = new Map<string, Bucket>();
  private readonly total: Bucket;
  /** Last accepted timestamp per initiator key (hex), only while it is inside the skew window. */
  private readonly last = new Map<string, { timestamp: Buffer; atMs: number; staticShared: Uint8Array }>();
  private readonly skewMs: number;
  private readonly now: () => number;
  private nextSweepAt: number;

  constructor(private readonly opts: WgResponderOptions<T>) {
    this.skewMs = opts.maxClockSkewMs ?? WG_INITIATION_MAX_CLOCK_SKEW_MS;
    this.now = opts.now ?? Date.now;
    this.nextSweepAt = this.now() + WG_REPLAY_SWEEP_INTERVAL_MS;
    this.total = new Bucket(opts.total ?? WG_INITIATIONS_TOTAL, this.now());
  }

  get publicKey(): Uint8Array {
    return this.opts.key.publicKey;
  }

  /** Keys remembered for replay checks (tests; memory is bounded by active initiators). */
  get rememberedKeys(): number {
    return this.last.size;
  }

  /** `source`: the sender's address (no port), for the per-source rate limit; absent = only the total one applies. */
  receive(msg: Uint8Array, source?: string): WgReceived<T> {
    const now = this.now();
    if (now >= this.nextSweepAt) this.sweep(now);
    const refuse = (reason: WgRefusal, counter: keyof WgResponderCounters): WgReceived<T> => {
      this.counters[counter]++;
      return { ok: false, reason };
    };
    // Shape and mac1 are cheap (and mac1 keeps junk from spending the budget); the rest costs a
    // Diffie-Hellman, so the limits come before it.
    if (looksLikeInitiation(msg) && mac1Valid(this.opts.key, msg) && !this.admit(source, now)) return refuse('rate-limited', 'rateLimited');
    let opened;
    try {
      opened = openInitiation(this.opts.key, msg, (id) => this.last.get(id)?.staticShared);
    } catch {
      return refuse('malformed', 'malformed'); // a codec bug must not stop the service
    }
    if (!opened.ok) {
      if (opened.reason === 'size' || opened.reason === 'type') return refuse('malformed', 'malformed');
      if (opened.reason === 'mac1') return refuse('bad-mac1', 'badMac1');
      return refuse('unauthenticated', 'unauthenticated');
    }
    const initiator = this.opts.lookup(opened.initiatorKey);
    if (initiator === undefined) return refuse('unknown-key', 'unknownKey');
    const atMs = tai64nToUnixMs(opened.timestamp);
    if (Math.abs(atMs - now) > this.skewMs) return refuse('clock-skew', 'clockSkew');
    const id = opened.initiatorKey.toString('hex');
    const prev = this.last.get(id);
    if (prev && Buffer.compare(opened.timestamp, prev.timestamp) <= 0) return refuse('replayed', 'replayed');
    this.last.set(id, { timestamp: opened.timestamp, atMs, staticShared: opened.staticShared });
    this.counters.accepted++;
    return { ok: true, initiator, initiatorKey: opened.initiatorKey };
  }

  private admit(source: string | undefined, now: number): boolean {
    if (source !== undefined) {
      let b = this.sources.get(source);
      if (!b) {
        if (this.sources.size >= WG_RATE_TABLE_MAX) this.sources.clear();
        b = new Bucket(this.opts.perSource ?? WG_INITIATIONS_PER_SOURCE, now);
        this.sources.set(source, b);
      }
      if (!b.take(now)) return false;
    }
    return this.total.take(now);
  }

  /** A timestamp older than the window is refused as clock skew anyway: its key need not be remembered. */
  private sweep(now: number): void {
    this.nextSweepAt = now + WG_REPLAY_SWEEP_INTERVAL_MS;
    for (const [id, e] of this.last) if (e.atMs < now - this.skewMs) this.last.delete(id);
    this.sources.clear(); // buckets refill in well under a sweep interval: a fresh one is the same
  }
}

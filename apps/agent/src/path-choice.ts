/**
 * Which way a peer's packets go, as pure functions PeerPaths (peer-paths.ts) applies: straight
 * from WireGuard to the peer's endpoint (direct, never through this process) or over the relay.
 *
 * The rule, per peer:
 * - **Relayed at once.** A new peer, or one whose direct path died, is carried over the relay as
 *   soon as the relay is connected, so the first packet never waits for a hole punch.
 * - **Direct when punched.** Once the pair has a session, both sides aim WireGuard at each other's
 *   candidate endpoints in the same time slot (`probeSlot`) for PROBE_WINDOW_MS per candidate. A
 *   probe succeeds when WireGuard received from the peer's direct address during the window;
 *   it then stays direct. Otherwise it goes back to the relay and tries again in the next slot of
 *   the backoff (PROBE_BACKOFF_S), while the pair is in use.
 * - **Fall back.** A direct path that carries data out but nothing back for DIRECT_DEAD_MS
 *   (mapping flushed, host roamed) goes back to the relay, and is punched again from the start.
 *
 * Coordination without a message: both sides compute the same slots from the wall clock and the
 * pair (`pairOffsetMs`), and the backoff intervals divide each other (1 s | 5 s | 10 s | 30 s), so
 * whatever attempt either side is at, the slower side's slot is also one of the faster side's.
 * That needs the two clocks within a fraction of PROBE_WINDOW_MS (NTP keeps them within tens of
 * ms); docs/design.md says why this and not a punch message.
 */
import type { NatVerdict } from '@weft/protocol';
import { PROBE_BACKOFF_S, RELAY_AFTER_NO_HANDSHAKE_MS, STREAM_BYTES_PER_S } from './tunables.js';

export interface PathFacts {
  /** Forced by WEFT_RELAY_PEERS (tests, or a network known to block UDP). */
  forced: boolean;
  /** Milliseconds since the peer's direct endpoint was programmed into WireGuard (without one: since the peer appeared). */
  sinceMs: number;
  /** WireGuard's last handshake with the peer, null = never. */
  lastHandshake: Date | null;
}

/**
 * For a peer on its netmap endpoint while the relay was not connected: relayed once the relay
 * is up and WireGuard has had no handshake within RELAY_AFTER_NO_HANDSHAKE_MS.
 */
export function shouldRelay(f: PathFacts): boolean {
  if (f.forced) return true;
  return f.lastHandshake === null && f.sinceMs >= RELAY_AFTER_NO_HANDSHAKE_MS;
}

/** Milliseconds between probe slots after `failures` failed probes in a row. */
export function probeIntervalMs(failures: number): number {
  return PROBE_BACKOFF_S[Math.min(failures, PROBE_BACKOFF_S.length - 1)]! * 1000;
}

/**
 * The pair's offset inside every slot: the same on both sides (the keys in order), spread over
 * the smallest interval so not every pair of a node probes in the same millisecond.
 */
export function pairOffsetMs(keyA: string, keyB: string): number {
  const [lo, hi] = keyA < keyB ? [keyA, keyB] : [keyB, keyA];
  let h = 2166136261;
  for (const ch of `${lo}|${hi}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h % probeIntervalMs(0);
}

/** The first slot strictly after `now` (ms since the epoch) for `failures` failed probes. */
export function probeSlot(now: number, failures: number, offsetMs: number): number {
  const interval = probeIntervalMs(failures);
  return Math.floor((now - offsetMs) / interval) * interval + interval + offsetMs;
}

/**
 * Where to aim during a probe, in order: a peer behind the same public address as this node
 * (same NAT) is tried on its local addresses first, since few NATs hairpin.
 */
export function probeCandidates(endpoints: readonly string[], selfPublicIp: string | undefined, max = 3): string[] {
  const ip = (e: string) => e.slice(0, e.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const list = [...new Set(endpoints)];
  if (selfPublicIp && list.length > 1 && ip(list[0]!) === selfPublicIp) list.push(list.shift()!);
  return list.slice(0, max);
}

/** A WireGuard keepalive is a 32-byte transport message; more than that in one interval is data. */
export const KEEPALIVE_BYTES = 32;
/** WireGuard's handshake initiation and response (type 1 and 2 messages), in bytes. */
export const HANDSHAKE_INITIATION_BYTES = 148;
export const HANDSHAKE_RESPONSE_BYTES = 92;

/** Above this many bytes one way, a check's traffic is data whatever it is made of. */
const UPKEEP_MAX_BYTES = 40 * (HANDSHAKE_INITIATION_BYTES + HANDSHAKE_RESPONSE_BYTES + KEEPALIVE_BYTES);

/**
 * The ways `bytes` sent one way split into i handshake initiations, r responses and keepalives
 * (at most two, plus one after each handshake this side began): [i, r] pairs.
 */
function upkeepSplits(bytes: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i * HANDSHAKE_INITIATION_BYTES <= bytes; i++) {
    for (let r = 0; i * HANDSHAKE_INITIATION_BYTES + r * HANDSHAKE_RESPONSE_BYTES <= bytes; r++) {
      const rest = bytes - i * HANDSHAKE_INITIATION_BYTES - r * HANDSHAKE_RESPONSE_BYTES;
      if (rest % KEEPALIVE_BYTES === 0 && rest / KEEPALIVE_BYTES <= 2 + i) out.push([i, r]);
    }
  }
  return out;
}

/**
 * Whether the bytes received (`rx`) and sent (`tx`) since the last check are WireGuard's own
 * upkeep only, not data: handshake initiations, responses to the other side's initiations, and
 * keepalives. A peer that never answers gets an initiation every 5 s, and a pair with keepalive
 * rekeys every 2 min: counted as data, either would keep the pair in use for ever. The two
 * directions are judged together (a response answers an initiation that came the other way), and
 * for any number of handshakes, so a check that ran late (a loaded host: 1,000 peers' counters
 * read at once) still reads upkeep as upkeep. Data is a transport message of 64 + 16n bytes; a
 * rare packet whose size makes the sums work is simply not counted (the next one is).
 */
export function upkeepOnly(rx: number, tx: number): boolean {
  if (rx > UPKEEP_MAX_BYTES || tx > UPKEEP_MAX_BYTES) return false;
  const sent = upkeepSplits(tx);
  const received = upkeepSplits(rx);
  // Our responses need their initiations, and the responses we got need ours.
  return sent.some(([i, r]) => received.some(([j, s]) => r <= j && s <= i));
}

export interface Traffic {
  rxBytes: number;
  txBytes: number;
}

/**
 * Tracks one peer's counters across checks: when data last went out unanswered (for
 * `directDead`) and when the pair was last in use (`inUse`).
 */
export class TrafficWatch {
  private last: Traffic | undefined;
  /** When data was first sent after the last thing received; null = answered. */
  unansweredSince: number | null = null;
  /**
   * Last time data (more than WireGuard's upkeep, `upkeepOnly`) moved either way. A watch made
   * with `since` counts that moment as use: a pair that just appeared is about to be used.
   */
  lastUseAt: number | null;
  /** Last time anything at all (keepalives included) came from the peer; `since` counts too. */
  lastRxAt: number | null;
  /** Last time the pair moved at least STREAM_BYTES_PER_S either way since the observation before (a stream). */
  lastStreamAt: number | null = null;
  private lastAt: number | undefined;

  constructor(since?: number) {
    this.lastUseAt = since ?? null;
    this.lastRxAt = since ?? null;
  }

  observe(t: Traffic, now: number): { rx: number; tx: number } {
    const prev = this.last ?? t;
    const prevAt = this.lastAt ?? now;
    this.last = t;
    this.lastAt = now;
    const rx = Math.max(0, t.rxBytes - prev.rxBytes);
    const tx = Math.max(0, t.txBytes - prev.txBytes);
    if (now > prevAt && Math.max(rx, tx) * 1000 >= STREAM_BYTES_PER_S * (now - prevAt)) this.lastStreamAt = now;
    if (rx > 0) {
      this.unansweredSince = null;
      this.lastRxAt = now;
    }
    else if (tx > KEEPALIVE_BYTES && this.unansweredSince === null) this.unansweredSince = now;
    if (!upkeepOnly(rx, tx)) this.lastUseAt = now;
    return { rx, tx };
  }

  /** Forget the unanswered mark (after a path change, the old silence says nothing). */
  reset(): void {
    this.unansweredSince = null;
  }
}

/** A direct path is dead when data went out and nothing came back for `deadMs`. */
export function directDead(unansweredSince: number | null, now: number, deadMs: number): boolean {
  return unansweredSince !== null && now - unansweredSince >= deadMs;
}

/**
 * Whether WireGuard's last handshake with a peer is of the session the peer holds now: only if it
 * came after `newSessionAt` (ms, 0 = never), when the relay last brought a handshake initiation
 * from the peer (RelayPath `lastInitiation`: a restarted daemon's fresh WireGuard forgot every
 * session). A hole punch needs a current one: its keepalives travel in that session.
 */
export function sessionCurrent(lastHandshake: Date | null | undefined, newSessionAt: number): boolean {
  return lastHandshake != null && lastHandshake.getTime() > newSessionAt;
}

/**
 * In use: data moved within `windowMs` (TrafficWatch.lastUseAt). The one definition: punching
 * (peer-paths.ts) and keepalive (engine.ts `setIdle`) both follow it, so an idle pair sends
 * nothing at all; its first packet wakes it (WireGuard's handshake for it is upkeep, the packet
 * after it is data).
 */
export function inUse(lastUseAt: number | null, now: number, windowMs: number): boolean {
  return lastUseAt !== null && now - lastUseAt <= windowMs;
}

/**
 * `WEFT_RELAY_PEERS`: `*` relays every peer, otherwise a comma-separated list of peer names or
 * node keys; empty or absent = decide by the rules above.
 */
export function forcedRelay(spec: string | undefined): (peer: { name: string; nodeKey: string }) => boolean {
  const items = (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (items.includes('*')) return () => true;
  const set = new Set(items);
  return (peer) => set.has(peer.name) || set.has(peer.nodeKey);
}

/** Seconds as a person reads them in a reason ("in 30 s", "in 1 s"). */
export function inSeconds(ms: number): string {
  return `${Math.max(1, Math.round(ms / 1000))} s`;
}

/** What a netcheck says stands in the way of a direct path, from one side. */
function natObstacle(v: NatVerdict | null | undefined): 'blocked' | 'varies' | null {
  if (!v) return null;
  if (!v.udp) return 'blocked';
  return v.mappingVariesByDestination ? 'varies' : null;
}

const SELF_OBSTACLE = { blocked: 'UDP to the internet is blocked here', varies: "this node's NAT maps each destination to a new port (endpoint-dependent)" } as const;
const PEER_OBSTACLE = { blocked: "the peer's UDP is blocked", varies: "the peer's NAT maps each destination to a new port (endpoint-dependent)" } as const;

/**
 * Why a direct path is unlikely, in words, from this node's netcheck verdict (`self`) and the
 * peer's as the server passed it on (`Peer.nat`): "...; peer too" when both sides have the same
 * obstacle. Null when neither verdict names one (or neither is known).
 */
export function natReason(self: NatVerdict | null | undefined, peer: NatVerdict | null | undefined): string | null {
  const mine = natObstacle(self);
  const theirs = natObstacle(peer);
  if (mine && theirs) return mine === theirs ? `${SELF_OBSTACLE[mine]}; peer too` : `${SELF_OBSTACLE[mine]}; ${PEER_OBSTACLE[theirs]}`;
  if (mine) return SELF_OBSTACLE[mine];
  if (theirs) return PEER_OBSTACLE[theirs];
  return null;
}

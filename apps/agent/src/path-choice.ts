/**
 * Which way a peer's packets go: straight from WireGuard to the peer's endpoint (direct, never
 * through this process) or over the control server's relay. One small pure function so that hole
 * punching can replace it: today a peer is relayed when a test or an operator forces it, or when
 * WireGuard has had no handshake with it RELAY_AFTER_NO_HANDSHAKE_MS after its endpoint was
 * programmed (or after it appeared, when it has none). Not at once without an endpoint: a peer
 * that just joined reports its endpoints a moment after its netmap entry arrives. Once relayed a
 * peer stays relayed (upgrading back to direct is the hole-punching work's).
 */
import { RELAY_AFTER_NO_HANDSHAKE_MS } from './tunables.js';

export interface PathFacts {
  /** Forced by WEFT_RELAY_PEERS (tests, or a network known to block UDP). */
  forced: boolean;
  /** Milliseconds since the peer's direct endpoint was programmed into WireGuard (without one: since the peer appeared). */
  sinceMs: number;
  /** WireGuard's last handshake with the peer, null = never. */
  lastHandshake: Date | null;
}

export function shouldRelay(f: PathFacts): boolean {
  if (f.forced) return true;
  return f.lastHandshake === null && f.sinceMs >= RELAY_AFTER_NO_HANDSHAKE_MS;
}

/**
 * `WEFT_RELAY_PEERS`: `*` relays every peer, otherwise a comma-separated list of peer names or
 * node keys; empty or absent = decide by `shouldRelay` alone.
 */
export function forcedRelay(spec: string | undefined): (peer: { name: string; nodeKey: string }) => boolean {
  const items = (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (items.includes('*')) return () => true;
  const set = new Set(items);
  return (peer) => set.has(peer.name) || set.has(peer.nodeKey);
}

/**
 * The home relay: the one relay region this node keeps a relay session with (DERP's home region).
 * Peers reach it there whichever region they are homed on: the regions' relays forward to each
 * other over their links to the control server (docs/design.md, "Relay regions").
 *
 * Chosen by latency (each netcheck's per-region median), with hysteresis so two near-equal
 * regions do not make it flap: the node moves only when another region is better than the home
 * by both margins of the rule (at least `minGainRatio` of the home's latency and at least
 * `minGainMs`) in `confirmations` consecutive netchecks, the same region each time. A home that
 * did not answer at all is left at once for the best region that did. Pure: the agent keeps the
 * state and acts on a change.
 */
import type { Region } from '@weft/protocol';
import type { RegionLatency } from './netcheck-verdict.js';
import { HOME_RELAY_SWITCH } from './tunables.js';

/** The control server's own relay (the embedded region): its relay is at the server URL. */
export const EMBEDDED_REGION_ID = 1;

export interface HomeRule {
  minGainMs: number;
  minGainRatio: number;
  /** Consecutive netchecks a better region must win before the node moves to it. */
  confirmations: number;
}

export interface HomeState {
  /** The home region's id; null = none chosen yet. */
  home: number | null;
  /** A region that beat the home in the last netcheck(s), and in how many in a row. */
  challenger: { id: number; wins: number } | null;
}

export const NO_HOME: HomeState = { home: null, challenger: null };

/** Whether region `r` has a relay this node can home on (the embedded one always does). */
export function hasRelay(r: Region): boolean {
  return r.id === EMBEDDED_REGION_ID || r.relayUrl !== undefined;
}

/**
 * The home after one netcheck's `latencies` (only regions with a relay count; null = no answer).
 * With no home yet, the fastest region is taken at once.
 */
export function nextHome(state: HomeState, latencies: readonly RegionLatency[], rule: HomeRule = HOME_RELAY_SWITCH): HomeState {
  const measured = latencies.filter((l): l is { id: number; latencyMs: number } => l.latencyMs !== null);
  if (measured.length === 0) return { home: state.home, challenger: null };
  const best = measured.reduce((a, b) => (b.latencyMs < a.latencyMs || (b.latencyMs === a.latencyMs && b.id < a.id) ? b : a));
  const home = measured.find((l) => l.id === state.home);
  if (!home) return { home: best.id, challenger: null };
  if (best.id === home.id) return { home: home.id, challenger: null };
  const gain = home.latencyMs - best.latencyMs;
  if (gain < rule.minGainMs || gain < rule.minGainRatio * home.latencyMs) return { home: home.id, challenger: null };
  const wins = state.challenger?.id === best.id ? state.challenger.wins + 1 : 1;
  if (wins >= rule.confirmations) return { home: best.id, challenger: null };
  return { home: home.id, challenger: { id: best.id, wins } };
}

/**
 * The home before any netcheck, or when the netmap no longer lists the home: the embedded region
 * when there is one, else the first with a relay; null = no region has a relay (the agent then
 * uses the control server's relay, as before regions existed).
 */
export function defaultHome(regions: readonly Region[]): number | null {
  const withRelay = regions.filter(hasRelay);
  return (withRelay.find((r) => r.id === EMBEDDED_REGION_ID) ?? withRelay[0])?.id ?? null;
}

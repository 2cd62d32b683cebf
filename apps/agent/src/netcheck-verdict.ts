/**
 * What `weft netcheck` concludes from its STUN answers, and which region a node prefers. Pure: the
 * probing (netcheck.ts) gathers `TargetResult`s; everything here is decided from them, so it is
 * unit-tested without a network.
 */
import type { Region } from '@weft/protocol';
import { REGION_SWITCH } from './tunables.js';

/** One STUN address of one region, probed from the netcheck's socket of its address family. */
export interface TargetResult {
  regionId: number;
  /** As the region lists it, `HOST:PORT`. */
  stun: string;
  /** Resolved destination, `IP:PORT` (`[v6]:PORT`); null when the name did not resolve. */
  destination: string | null;
  family: 4 | 6;
  /** Local port of the socket the probes went from. */
  localPort: number;
  /** The reflexive address of the first answer; null = no answer. */
  mapped: { address: string; port: number } | null;
  /** Round-trip times of the answered requests, in order. */
  rttsMs: number[];
  /** Why there is no answer (timeout, error response, resolution). */
  error: string | null;
}

export interface RegionLatency {
  id: number;
  /** Median of every answered request to the region; null = none answered. */
  latencyMs: number | null;
}

export interface NetcheckVerdict {
  /** Any STUN server answered over UDP. */
  udp: boolean;
  /** The public IPv4 address and port of the netcheck's IPv4 socket (first answer), or null. */
  ipv4: { address: string; port: number } | null;
  ipv6: { address: string; port: number } | null;
  /**
   * The NAT gives the same socket a different public address or port per destination
   * (endpoint-dependent mapping). Null = fewer than two distinct destinations answered over IPv4.
   */
  mappingVariesByDestination: boolean | null;
  /** The public IPv4 port equals the local one for every answer. Null = no IPv4 answer. */
  portPreserved: boolean | null;
}

const text = (m: { address: string; port: number }) => `${m.address}:${m.port}`;

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function verdict(results: readonly TargetResult[]): NetcheckVerdict {
  const answered = results.filter((r) => r.mapped !== null);
  const v4 = answered.filter((r) => r.family === 4);
  const v6 = answered.filter((r) => r.family === 6);
  // One answer per destination: two regions listing the same server say nothing about the NAT.
  const byDestination = new Map<string, string>();
  for (const r of v4) if (r.destination && !byDestination.has(r.destination)) byDestination.set(r.destination, text(r.mapped!));
  return {
    udp: answered.length > 0,
    ipv4: v4[0]?.mapped ?? null,
    ipv6: v6[0]?.mapped ?? null,
    mappingVariesByDestination: byDestination.size < 2 ? null : new Set(byDestination.values()).size > 1,
    portPreserved: v4.length === 0 ? null : v4.every((r) => r.mapped!.port === r.localPort),
  };
}

/** Per region in the order given: the median round trip over all its STUN answers. */
export function regionLatencies(regions: readonly Region[], results: readonly TargetResult[]): RegionLatency[] {
  return regions.map((g) => ({ id: g.id, latencyMs: median(results.filter((r) => r.regionId === g.id).flatMap((r) => r.rttsMs)) }));
}

/**
 * The region to prefer: the lowest latency, but a node that has a preferred region (`current`)
 * keeps it unless another is better by both margins of REGION_SWITCH (so two near-equal regions
 * do not make it flap) or the current one did not answer at all. Ties go to the lower id.
 * Null when no region answered.
 */
export function preferRegion(latencies: readonly RegionLatency[], current: number | null, rule = REGION_SWITCH): number | null {
  const measured = latencies.filter((l): l is { id: number; latencyMs: number } => l.latencyMs !== null);
  if (measured.length === 0) return null;
  const best = measured.reduce((a, b) => (b.latencyMs < a.latencyMs || (b.latencyMs === a.latencyMs && b.id < a.id) ? b : a));
  const now = measured.find((l) => l.id === current);
  if (!now || best.id === now.id) return best.id;
  const gain = now.latencyMs - best.latencyMs;
  return gain >= rule.minGainMs && gain >= rule.minGainRatio * now.latencyMs ? best.id : now.id;
}

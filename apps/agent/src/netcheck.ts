/**
 * `weft netcheck` in the daemon: STUN Binding requests to every STUN address of every region in the
 * netmap, all from one UDP socket per address family, so the answers show how this network's NAT
 * maps one socket toward different destinations. The verdicts are netcheck-verdict.ts's.
 *
 * The socket is the netcheck's own, not WireGuard's: it tells what the NAT does (UDP at all,
 * public address, mapping behaviour, port preservation), not WireGuard's own mapping, which is
 * learned elsewhere.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Region } from '@weft/protocol';
import { bindingRequest } from '@weft/relay';
import { median, preferRegion, regionLatencies, verdict, type NetcheckVerdict, type TargetResult } from './netcheck-verdict.js';
import { NETCHECK_PROBE_TIMEOUT_MS, NETCHECK_PROBES } from './tunables.js';

/** `GET /v1/netcheck` (and `weft netcheck --json`): stable, additive only. */
export interface NetcheckReport extends NetcheckVerdict {
  version: 1;
  /** When the probes started (ISO 8601). */
  time: string;
  /** Local port of the IPv4 probe socket (what `portPreserved` compares with). */
  localPort: number | null;
  regions: {
    id: number;
    code: string;
    name: string;
    latencyMs: number | null;
    stun: { address: string; destination: string | null; mapped: string | null; rttMs: number | null; error: string | null }[];
  }[];
  /** Region id (see `preferRegion`); null when no region answered. */
  preferredRegion: number | null;
  /**
   * The region whose relay this node is homed on after this netcheck (home-relay.ts: by latency,
   * moving only after two netchecks agree); null = the control server's relay with no region
   * chosen. Absent when the report did not come from the daemon.
   */
  homeRegion?: { id: number; code: string } | null;
}

export interface NetcheckOptions {
  /** The region preferred so far (hysteresis); null = none yet. */
  current: number | null;
  probes?: number;
  timeoutMs?: number;
}

interface Target {
  regionId: number;
  stun: string;
  host: string;
  port: number;
}

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

/** The addresses a STUN host name stands for, at most one per family. */
async function resolve(host: string): Promise<{ v4: string | null; v6: string | null; error: string | null }> {
  const fam = isIP(host);
  if (fam === 4) return { v4: host, v6: null, error: null };
  if (fam === 6) return { v4: null, v6: host, error: null };
  try {
    const all = await lookup(host, { all: true });
    return { v4: all.find((a) => a.family === 4)?.address ?? null, v6: all.find((a) => a.family === 6)?.address ?? null, error: null };
  } catch (err) {
    return { v4: null, v6: null, error: `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

/** A bound socket, or null when the family is unavailable here (no IPv6, say). Send errors never throw. */
async function openSocket(type: 'udp4' | 'udp6'): Promise<Socket | null> {
  const s = createSocket(type);
  s.on('error', () => {}); // e.g. ENETUNREACH on send: the request then times out, which is the verdict
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, () => {
        s.off('error', reject);
        resolve();
      });
    });
    return s;
  } catch {
    s.close();
    return null;
  }
}

async function probeTarget(t: Target, family: 4 | 6, address: string, socket: Socket, probes: number, timeoutMs: number): Promise<TargetResult> {
  const destination = family === 6 ? `[${address}]:${t.port}` : `${address}:${t.port}`;
  const result: TargetResult = { regionId: t.regionId, stun: t.stun, destination, family, localPort: socket.address().port, mapped: null, rttsMs: [], error: null };
  for (let i = 0; i < probes; i++) {
    const t0 = performance.now();
    try {
      const mapped = await bindingRequest({ host: address, port: t.port, socket, timeoutMs });
      result.rttsMs.push(Math.round((performance.now() - t0) * 10) / 10);
      result.mapped ??= { address: mapped.address, port: mapped.port };
    } catch (err) {
      // No answer to the first request: this destination is unreachable over UDP; asking again
      // would only make a blocked network wait longer for its verdict.
      if (result.rttsMs.length === 0) {
        result.error = (err as Error).message;
        break;
      }
    }
  }
  return result;
}

export async function runNetcheck(regions: readonly Region[], opts: NetcheckOptions): Promise<NetcheckReport> {
  const time = new Date().toISOString();
  const probes = opts.probes ?? NETCHECK_PROBES;
  const timeoutMs = opts.timeoutMs ?? NETCHECK_PROBE_TIMEOUT_MS;
  const targets: Target[] = regions.flatMap((r) => r.stun.map((stun) => ({ regionId: r.id, stun, ...splitHostPort(stun) })));
  const resolved = await Promise.all(targets.map((t) => resolve(t.host)));
  const [s4, s6] = await Promise.all([openSocket('udp4'), resolved.some((r) => r.v6) ? openSocket('udp6') : Promise.resolve(null)]);
  try {
    const jobs: Promise<TargetResult>[] = [];
    targets.forEach((t, i) => {
      const r = resolved[i]!;
      const none = (family: 4 | 6, error: string): TargetResult => ({ regionId: t.regionId, stun: t.stun, destination: null, family, localPort: 0, mapped: null, rttsMs: [], error });
      if (r.error) return jobs.push(Promise.resolve(none(4, r.error)));
      if (r.v4) jobs.push(s4 ? probeTarget(t, 4, r.v4, s4, probes, timeoutMs) : Promise.resolve(none(4, 'no IPv4 socket could be opened')));
      if (r.v6) jobs.push(s6 ? probeTarget(t, 6, r.v6, s6, probes, timeoutMs) : Promise.resolve(none(6, 'IPv6 is not available on this host')));
    });
    const results = await Promise.all(jobs);
    const latencies = regionLatencies(regions, results);
    return {
      version: 1,
      time,
      ...verdict(results),
      localPort: s4?.address().port ?? null,
      regions: regions.map((g, i) => ({
        id: g.id,
        code: g.code,
        name: g.name,
        latencyMs: latencies[i]!.latencyMs,
        stun: results
          .filter((r) => r.regionId === g.id)
          .map((r) => ({ address: r.stun, destination: r.destination, mapped: r.mapped && (r.family === 6 ? `[${r.mapped.address}]:${r.mapped.port}` : `${r.mapped.address}:${r.mapped.port}`), rttMs: median(r.rttsMs), error: r.error })),
      })),
      preferredRegion: preferRegion(latencies, opts.current),
    };
  } finally {
    s4?.close();
    s6?.close();
  }
}

/**
 * Flows that lost permission: after a new filter is in force, the conntrack entries of TCP flows
 * that came in over the tunnel, that the previous filter allowed and the new one does not, are
 * deleted. The rules already stop such a flow's next packet in (render.ts); deleting the entry
 * makes the node's own side see it too: its next segment is refused with a reset by the output
 * chain, so the application learns at once rather than after minutes of retransmits.
 *
 * Only TCP: a UDP or ICMP entry deleted here would let the node's next datagram to that peer
 * open the flow afresh as its own, and the peer's packets would then pass as replies. Left in
 * place, those entries keep the peer as the opener and are checked on every packet.
 */
import type { CommandRunner } from './exec.js';
import { allows, type CheckedFilter, type Flow } from './filter.js';
import { contains, parseAddress, type Family, type Range } from './ranges.js';

export interface ConntrackEntry extends Flow {
  sport: number;
  /** The text conntrack printed for the addresses, to delete by. */
  srcText: string;
  dstText: string;
}

/** Original-direction tuples of `conntrack -L -p tcp` output (the first src/dst/sport/dport of each line). */
export function parseConntrackList(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(?:ipv[46]\s+\d+\s+)?tcp\s+6\s.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    if (!m) continue;
    const src = parseAddress(m[1]!);
    const dst = parseAddress(m[2]!);
    if (!src || !dst || src.family !== dst.family) continue;
    out.push({ family: src.family, src: src.n, dst: dst.n, proto: 6, sport: Number(m[3]), dport: Number(m[4]), srcText: m[1]!, dstText: m[2]! });
  }
  return out;
}

/** Sources that can arrive over the tunnel, per family (the tailnet prefixes and peers' allowed IPs). */
export type TunnelSources = Record<Family, Range[]>;

/** Entries that came from the tunnel, were allowed by `before` and are not by `after`. */
export function lostFlows(entries: ConntrackEntry[], before: CheckedFilter | null, after: CheckedFilter | null, sources: TunnelSources): ConntrackEntry[] {
  return entries.filter((e) => contains(sources[e.family], e.src) && allows(before, e) && !allows(after, e));
}

/** Lists and deletes; returns how many were deleted. Errors are reported, never thrown. */
export async function deleteLostFlows(
  run: CommandRunner,
  before: CheckedFilter | null,
  after: CheckedFilter | null,
  sources: TunnelSources,
): Promise<{ deleted: number; error: string | null }> {
  let deleted = 0;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const listed = await run(['conntrack', '-L', '-f', family, '-p', 'tcp']);
    if (listed.missing) return { deleted, error: 'conntrack not found (install the conntrack package)' };
    if (listed.code !== 0) return { deleted, error: `conntrack -L failed: ${listed.stderr.trim().slice(0, 200)}` };
    for (const e of lostFlows(parseConntrackList(listed.stdout), before, after, sources)) {
      const r = await run(['conntrack', '-D', '-f', family, '-p', 'tcp', '--orig-src', e.srcText, '--orig-dst', e.dstText,
        '--orig-port-src', String(e.sport), '--orig-port-dst', String(e.dport)]);
      if (r.code === 0) deleted++; // non-zero: the flow ended by itself in between
    }
  }
  return { deleted, error: null };
}

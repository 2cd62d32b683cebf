/** The compiled output shapes and their canonical (sorted) text form. */
import { formatSet, intersect, parseAddr, type AddrSet } from './addr.js';
import type { Pos } from './errors.js';
import type { PortRange } from './model.js';
import { ANY, type Resolved } from './select.js';

/** One packet-filter rule for traffic arriving at a node (Tailscale's FilterRule, by JSON name). */
export interface FilterRule {
  /** Sources: addresses, CIDRs, or `*` for any address. Ascending, IPv4 first. */
  srcIPs: string[];
  /** Destinations on this node (its addresses or routes it serves), each with a port range "a-b". */
  dstPorts: { ip: string; ports: string }[];
  /** IANA protocol numbers, ascending. */
  protos: number[];
}

export interface NodeView {
  rules: FilterRule[];
  /** Names of the nodes this node may see, ascending (a pair is visible if either may reach the other). */
  peers: string[];
}

export interface Compiled { nodes: Record<string, NodeView> }

/** A rule as the engine keeps it for one node, before text: what `tests` and explain read. */
export interface NodeRule {
  pos: Pos;
  src: Resolved;
  dst: { set: Resolved; ports: PortRange }[];
  protos: number[];
}

export function srcText(src: Resolved): string[] {
  return src === ANY ? [ANY] : formatSet(src);
}

/** `dst` restricted to what a node with `reach` serves, as text. */
export function dstText(dst: Resolved, reach: AddrSet): string[] {
  return dst === ANY ? [ANY] : formatSet(intersect(dst, reach));
}

function ipKey(ip: string): [number, bigint, number] {
  if (ip === ANY) return [0, 0n, 0];
  const [a, bits] = ip.split('/');
  const addr = parseAddr(a!)!;
  return [addr.family, addr.value, bits === undefined ? (addr.family === 4 ? 32 : 128) : Number(bits)];
}

/** Dedupes and sorts dstPorts: by address (IPv4 first), prefix, then port range. */
export function sortDstPorts(entries: { ip: string; ports: PortRange }[]): { ip: string; ports: string }[] {
  const keyed = entries.map((e) => ({ e, k: ipKey(e.ip) }));
  keyed.sort((x, y) => x.k[0] - y.k[0] || (x.k[1] < y.k[1] ? -1 : x.k[1] > y.k[1] ? 1 : 0) || x.k[2] - y.k[2] || x.e.ports.first - y.e.ports.first || x.e.ports.last - y.e.ports.last);
  const out: { ip: string; ports: string }[] = [];
  for (const { e } of keyed) {
    const ports = `${e.ports.first}-${e.ports.last}`;
    const last = out[out.length - 1];
    if (!last || last.ip !== e.ip || last.ports !== ports) out.push({ ip: e.ip, ports });
  }
  return out;
}

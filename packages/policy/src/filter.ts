/** The compiled output shapes and their canonical (sorted) text form. */
import { cidrsOf, formatSet, intersect, type AddrSet, type Cidr } from './addr.js';
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

const srcTextCache = new WeakMap<AddrSet, string[]>();

/** Sources as text. Sets are immutable and shared (one per selector), so each is formatted once. */
export function srcText(src: Resolved): string[] {
  if (src === ANY) return [ANY];
  let text = srcTextCache.get(src);
  if (!text) srcTextCache.set(src, (text = formatSet(src)));
  return text;
}

const ANY_CIDR: Cidr = { text: ANY, family: 4, lo: -1n, bits: 0 };

/** `dst` restricted to what a node with `reach` serves. */
export function dstCidrs(dst: Resolved, reach: AddrSet): Cidr[] {
  return dst === ANY ? [ANY_CIDR] : cidrsOf(intersect(dst, reach));
}

const portsTextCache = new Map<number, string>();

/** "first-last", one string per distinct range (every node's every entry repeats a few of them). */
function portsText(p: PortRange): string {
  const key = p.first * 65536 + p.last;
  let text = portsTextCache.get(key);
  if (text === undefined) {
    if (portsTextCache.size >= 1 << 16) portsTextCache.clear(); // bounded, as addr.ts's text cache
    portsTextCache.set(key, (text = `${p.first}-${p.last}`));
  }
  return text;
}

/** Dedupes and sorts dstPorts: `*` first, then by address (IPv4 first), prefix, then port range. */
export function sortDstPorts(entries: { ip: Cidr; ports: PortRange }[]): { ip: string; ports: string }[] {
  entries.sort((x, y) => (x.ip.family - y.ip.family) || (x.ip.lo < y.ip.lo ? -1 : x.ip.lo > y.ip.lo ? 1 : 0) || x.ip.bits - y.ip.bits || x.ports.first - y.ports.first || x.ports.last - y.ports.last);
  const out: { ip: string; ports: string }[] = [];
  let prev: { ip: Cidr; ports: PortRange } | undefined;
  for (const e of entries) {
    if (!prev || prev.ip.text !== e.ip.text || prev.ports.first !== e.ports.first || prev.ports.last !== e.ports.last) out.push({ ip: e.ip.text, ports: portsText(e.ports) });
    prev = e;
  }
  return out;
}

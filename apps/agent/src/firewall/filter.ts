/**
 * The packet filter as the control server sends it (`NetmapMessage.packetFilter`), checked and
 * turned into address ranges, port ranges and protocol numbers. Entries are free text on the wire;
 * nothing reaches the nftables script until it has been parsed here, so a string can never carry
 * nft syntax. A rule with a malformed part is left out whole (the filter only ever allows, so a
 * missing rule allows less: fail closed) and reported. Pure.
 */
import { contains, merge, parseRange, type Family, type Range } from './ranges.js';

/** One rule on the wire (Tailscale's FilterRule): who may reach which addresses and ports, by protocol. */
export interface WireFilterRule {
  srcIPs: string[];
  dstPorts: Array<{ ip: string; ports: string }>;
  protos: number[];
}

export type WireFilter = WireFilterRule[];

/** Inclusive port range. */
export interface PortRange {
  lo: number;
  hi: number;
}

export interface Destination {
  /** null = any address (`*`). */
  ranges: Range[] | null;
  ports: PortRange;
}

export interface FilterRule {
  /** Index in the filter the server sent. */
  index: number;
  /** Per family, merged; null = any source (`*`). */
  src: { 4: Range[]; 6: Range[] } | null;
  dst: Destination[];
  /** Ascending, unique. */
  protos: number[];
}

export interface SkippedRule {
  index: number;
  reason: string;
}

export interface CheckedFilter {
  rules: FilterRule[];
  skipped: SkippedRule[];
}

/** Protocols whose packets carry ports (TCP, UDP, DCCP, SCTP, UDP-Lite): IANA numbers. */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);
/** An empty `protos` means what Tailscale means by it: TCP, UDP, ICMP and ICMPv6. */
export const DEFAULT_PROTOCOLS = [1, 6, 17, 58];
/** More than this many entries in one rule is refused (a server bug, not a policy). */
const MAX_ENTRIES = 1_000_000;

export function parsePorts(text: string): PortRange | string {
  if (text === '*') return { lo: 0, hi: 65535 };
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return 'ports: expected "*", "N" or "LO-HI"';
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi > 65535) return 'ports: above 65535';
  if (lo > hi) return 'ports: range start is after its end';
  return { lo, hi };
}

function checkRule(rule: WireFilterRule, index: number): FilterRule | string {
  if (rule.srcIPs.length > MAX_ENTRIES || rule.dstPorts.length > MAX_ENTRIES) return 'more entries than the agent accepts';
  let src: FilterRule['src'] = { 4: [], 6: [] };
  const srcRanges: Range[] = [];
  for (const [i, text] of rule.srcIPs.entries()) {
    if (text === '*') {
      src = null;
      continue;
    }
    const r = parseRange(text);
    if (!r.ok) return `srcIPs[${i}]: ${r.reason}`;
    srcRanges.push(r.value);
  }
  if (src) src = { 4: merge(srcRanges.filter((r) => r.family === 4)), 6: merge(srcRanges.filter((r) => r.family === 6)) };
  const dst: Destination[] = [];
  for (const [i, d] of rule.dstPorts.entries()) {
    const ports = parsePorts(d.ports);
    if (typeof ports === 'string') return `dstPorts[${i}].${ports}`;
    if (d.ip === '*') {
      dst.push({ ranges: null, ports });
      continue;
    }
    const r = parseRange(d.ip);
    if (!r.ok) return `dstPorts[${i}].ip: ${r.reason}`;
    dst.push({ ranges: [r.value], ports });
  }
  for (const [i, p] of rule.protos.entries()) {
    if (!Number.isInteger(p) || p < 0 || p > 255) return `protos[${i}]: not an IANA protocol number 0-255`;
  }
  const protos = rule.protos.length === 0 ? DEFAULT_PROTOCOLS : [...new Set(rule.protos)].sort((a, b) => a - b);
  return { index, src, dst, protos };
}

export function checkFilter(filter: WireFilter): CheckedFilter {
  const rules: FilterRule[] = [];
  const skipped: SkippedRule[] = [];
  filter.forEach((wire, index) => {
    const r = checkRule(wire, index);
    if (typeof r === 'string') skipped.push({ index, reason: r });
    else if ((r.src === null || r.src[4].length + r.src[6].length > 0) && r.dst.length > 0) rules.push(r);
  });
  return { rules, skipped };
}

/** One conntrack flow in its original direction: who opened it towards whom. */
export interface Flow {
  family: Family;
  src: bigint;
  dst: bigint;
  proto: number;
  /** Destination port; ignored for protocols without ports. */
  dport: number;
}

/** Whether the filter lets `flow` in. `null` = no filter: everything is allowed. */
export function allows(filter: CheckedFilter | null, flow: Flow): boolean {
  if (!filter) return true;
  return filter.rules.some((rule) =>
    rule.protos.includes(flow.proto)
    && (rule.src === null || contains(rule.src[flow.family], flow.src))
    && rule.dst.some((d) =>
      (d.ranges === null || d.ranges.some((r) => r.family === flow.family && r.lo <= flow.dst && flow.dst <= r.hi))
      && (!PORT_PROTOCOLS.has(flow.proto) || (d.ports.lo <= flow.dport && flow.dport <= d.ports.hi))));
}

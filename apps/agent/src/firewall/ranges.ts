/**
 * Address sets for the packet filter: an IP, a CIDR or an `a-b` range becomes an inclusive range
 * of one family; sets are kept merged and sorted, so the nftables text is canonical and an
 * interval set never gets two overlapping elements (nft refuses those). Pure.
 */
import { parseCidr, parseIp, type IpAddress } from '@weft/protocol';

export type Family = 4 | 6;

export interface Range {
  family: Family;
  lo: bigint;
  hi: bigint;
}

const WIDTH: Record<Family, number> = { 4: 32, 6: 128 };

function toBigint(ip: IpAddress): bigint {
  let n = 0n;
  for (const b of ip.bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** One address, CIDR (host bits masked) or `a-b` range of one family, a <= b. */
export function parseRange(text: string): { ok: true; value: Range } | { ok: false; reason: string } {
  const dash = text.indexOf('-');
  if (dash >= 0) {
    const a = parseIp(text.slice(0, dash));
    const b = parseIp(text.slice(dash + 1));
    if (!a.ok) return { ok: false, reason: `range start: ${a.reason}` };
    if (!b.ok) return { ok: false, reason: `range end: ${b.reason}` };
    if (a.value.family !== b.value.family) return { ok: false, reason: 'range mixes IPv4 and IPv6' };
    const lo = toBigint(a.value);
    const hi = toBigint(b.value);
    if (lo > hi) return { ok: false, reason: 'range start is after its end' };
    return { ok: true, value: { family: a.value.family, lo, hi } };
  }
  if (text.includes('/')) {
    const c = parseCidr(text);
    if (!c.ok) return { ok: false, reason: c.reason };
    const host = WIDTH[c.value.family] - c.value.bits;
    const lo = (toBigint(c.value) >> BigInt(host)) << BigInt(host);
    return { ok: true, value: { family: c.value.family, lo, hi: lo + (1n << BigInt(host)) - 1n } };
  }
  const ip = parseIp(text);
  if (!ip.ok) return { ok: false, reason: ip.reason };
  const n = toBigint(ip.value);
  return { ok: true, value: { family: ip.value.family, lo: n, hi: n } };
}

export function fullRange(family: Family): Range {
  return { family, lo: 0n, hi: (1n << BigInt(WIDTH[family])) - 1n };
}

/** Sorted, overlapping and adjacent ranges joined; one family per call. */
export function merge(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1n) {
      if (r.hi > last.hi) last.hi = r.hi;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** Whether `addr` lies in `ranges` (one family, merged and sorted). */
export function contains(ranges: readonly Range[], addr: bigint): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (addr < r.lo) hi = mid - 1;
    else if (addr > r.hi) lo = mid + 1;
    else return true;
  }
  return false;
}

export function formatAddress(family: Family, n: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: the longest run of two or more zero groups becomes "::" (the first if tied).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** `a`, `a/len` when the range is one aligned prefix, else `a-b`: what nft's interval sets take. */
export function formatRange(r: Range): string {
  if (r.lo === r.hi) return formatAddress(r.family, r.lo);
  const size = r.hi - r.lo + 1n;
  if ((size & (size - 1n)) === 0n && r.lo % size === 0n) {
    const host = size.toString(2).length - 1;
    return `${formatAddress(r.family, r.lo)}/${WIDTH[r.family] - host}`;
  }
  return `${formatAddress(r.family, r.lo)}-${formatAddress(r.family, r.hi)}`;
}

/** The address of a conntrack tuple or an interface as (family, number); null if not an address. */
export function parseAddress(text: string): { family: Family; n: bigint } | null {
  const ip = parseIp(text);
  return ip.ok ? { family: ip.value.family, n: toBigint(ip.value) } : null;
}

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
  if (ip.family === 4) return BigInt((((ip.bytes[0]! << 24) >>> 0) + (ip.bytes[1]! << 16) + (ip.bytes[2]! << 8) + ip.bytes[3]!));
  // One BigInt from hex text: per-byte BigInt arithmetic made 10,000 addresses cost ~100 ms.
  let hex = '0x';
  for (const b of ip.bytes) hex += (b < 16 ? '0' : '') + b.toString(16);
  return BigInt(hex);
}

/** Dotted quad without leading zeros, the common case, read without the general parser's allocations. */
const PLAIN_V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseIpFast(text: string): ReturnType<typeof parseIp> {
  const m = PLAIN_V4.exec(text);
  if (m) return { ok: true, value: { family: 4, bytes: [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] } };
  return parseIp(text);
}

/** Hex groups only (no embedded IPv4), at most one "::": the form node addresses come in. */
const PLAIN_V6 = /^[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*(?:::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?)?$|^::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?$/;

/** The address as a number, without building byte arrays; null = not an address. */
function addressNumber(text: string): { family: Family; n: bigint } | { reason: string } {
  const m = PLAIN_V4.exec(text);
  if (m) return { family: 4, n: BigInt(((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4])) };
  if (PLAIN_V6.test(text)) {
    const halves = text.split('::');
    const left = halves[0] === '' ? [] : halves[0]!.split(':');
    const right = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : [];
    const count = left.length + right.length;
    if ((halves.length === 1 && count === 8) || (halves.length === 2 && count <= 7)) {
      const groups = [...left, ...Array<string>(8 - count).fill('0'), ...right];
      return { family: 6, n: BigInt(`0x${groups.map((g) => g.padStart(4, '0')).join('')}`) };
    }
  }
  const ip = parseIp(text);
  return ip.ok ? { family: ip.value.family, n: toBigint(ip.value) } : { reason: ip.reason };
}

/** One address, CIDR (host bits masked) or `a-b` range of one family, a <= b. */
export function parseRange(text: string): { ok: true; value: Range } | { ok: false; reason: string } {
  const dash = text.indexOf('-');
  if (dash >= 0) {
    const a = parseIpFast(text.slice(0, dash));
    const b = parseIpFast(text.slice(dash + 1));
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
  const a = addressNumber(text);
  if ('reason' in a) return { ok: false, reason: a.reason };
  return { ok: true, value: { family: a.family, lo: a.n, hi: a.n } };
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
  if (family === 4) {
    const v = Number(n);
    return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
  }
  const digits = n.toString(16).padStart(32, '0');
  const groups = Array.from({ length: 8 }, (_, i) => parseInt(digits.slice(4 * i, 4 * i + 4), 16));
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

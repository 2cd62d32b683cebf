/**
 * Address sets: sorted, merged, non-adjacent ranges of IPv4 and IPv6 addresses (as bigints), with
 * union, intersection, difference and overlap, and a canonical text form (the fewest CIDRs, a bare
 * address for a /32 or /128). Every policy selector resolves to one of these.
 */
export type Range = readonly [lo: bigint, hi: bigint];

export interface AddrSet { readonly v4: readonly Range[]; readonly v6: readonly Range[] }

export const EMPTY: AddrSet = { v4: [], v6: [] };
const MAX4 = (1n << 32n) - 1n;
const MAX6 = (1n << 128n) - 1n;
export const ALL_ADDRESSES: AddrSet = { v4: [[0n, MAX4]], v6: [[0n, MAX6]] };

export function isEmpty(s: AddrSet): boolean {
  return s.v4.length === 0 && s.v6.length === 0;
}

function normalize(ranges: Range[]): Range[] {
  if (ranges.length < 2) return ranges;
  // Often already ascending (node addresses in allocation order): skip the BigInt-comparing sort.
  let ascending = true;
  for (let i = 1; i < ranges.length && ascending; i++) ascending = ranges[i - 1]![0] <= ranges[i]![0];
  const sorted = ascending ? ranges : [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

export function union(...sets: AddrSet[]): AddrSet {
  const nonEmpty = sets.filter((s) => !isEmpty(s));
  if (nonEmpty.length === 0) return EMPTY;
  if (nonEmpty.length === 1) return nonEmpty[0]!;
  // A few big sets (a rule's sources): merge the sorted lists. Many small ones (one per node): sort once.
  if (nonEmpty.length <= 8) return { v4: mergeAll(nonEmpty.map((s) => s.v4)), v6: mergeAll(nonEmpty.map((s) => s.v6)) };
  return { v4: normalize(nonEmpty.flatMap((s) => s.v4)), v6: normalize(nonEmpty.flatMap((s) => s.v6)) };
}

function mergeAll(lists: (readonly Range[])[]): readonly Range[] {
  let acc: readonly Range[] = [];
  for (const l of lists) acc = merge2(acc, l);
  return acc;
}

/** The union of two sorted, merged range lists, merged. */
function merge2(a: readonly Range[], b: readonly Range[]): readonly Range[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: [bigint, bigint][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const r = j >= b.length || (i < a.length && a[i]![0] <= b[j]![0]) ? a[i++]! : b[j++]!;
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1n) {
      if (r[1] > last[1]) last[1] = r[1];
    } else out.push([r[0], r[1]]);
  }
  return out;
}

/** Builds a set from many single ranges at once (one sort, not one union per range). */
export function fromRanges(v4: Range[], v6: Range[]): AddrSet {
  return { v4: normalize(v4), v6: normalize(v6) };
}

function intersectRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  if (a.length === 0 || b.length === 0) return [];
  // A few ranges against many (a node against a fleet-wide set): binary-search each small one.
  if (a.length * 16 < b.length) return intersectSkewed(a, b);
  if (b.length * 16 < a.length) return intersectSkewed(b, a);
  const out: Range[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [alo, ahi] = a[i]!;
    const [blo, bhi] = b[j]!;
    const lo = alo > blo ? alo : blo;
    const hi = ahi < bhi ? ahi : bhi;
    if (lo <= hi) out.push([lo, hi]);
    if (ahi < bhi) i++;
    else j++;
  }
  return out;
}

/** First index in sorted, disjoint `ranges` whose end is >= v. */
function firstEndingAtOrAfter(ranges: readonly Range[], v: bigint): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]![1] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function intersectSkewed(small: readonly Range[], big: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [slo, shi] of small) {
    for (let j = firstEndingAtOrAfter(big, slo); j < big.length && big[j]![0] <= shi; j++) {
      const [blo, bhi] = big[j]!;
      out.push([slo > blo ? slo : blo, shi < bhi ? shi : bhi]);
    }
  }
  return out;
}

export function intersect(a: AddrSet, b: AddrSet): AddrSet {
  return { v4: intersectRanges(a.v4, b.v4), v6: intersectRanges(a.v6, b.v6) };
}

export function overlaps(a: AddrSet, b: AddrSet): boolean {
  return overlapRanges(a.v4, b.v4) || overlapRanges(a.v6, b.v6);
}

function overlapRanges(a: readonly Range[], b: readonly Range[]): boolean {
  const [small, big] = a.length <= b.length ? [a, b] : [b, a];
  for (const [lo, hi] of small) {
    const j = firstEndingAtOrAfter(big, lo);
    if (j < big.length && big[j]![0] <= hi) return true;
  }
  return false;
}

/** Whether every range of `inner` lies inside one range of `outer` (no allocation). */
function coversRanges(outer: readonly Range[], inner: readonly Range[]): boolean {
  for (const [lo, hi] of inner) {
    const j = firstEndingAtOrAfter(outer, lo);
    if (j >= outer.length || outer[j]![0] > lo || outer[j]![1] < hi) return false;
  }
  return true;
}

/** `inner` is a subset of `outer`, with `outer` merged (adjacent ranges joined), as every set here is. */
export function covers(outer: AddrSet, inner: AddrSet): boolean {
  return coversRanges(outer.v4, inner.v4) && coversRanges(outer.v6, inner.v6);
}

function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [lo0, hi] of a) {
    let lo = lo0;
    for (const [blo, bhi] of b) {
      if (bhi < lo || blo > hi) continue;
      if (blo > lo) out.push([lo, blo - 1n]);
      lo = bhi + 1n;
      if (lo > hi) break;
    }
    if (lo <= hi) out.push([lo, hi]);
  }
  return out;
}

export function subtract(a: AddrSet, b: AddrSet): AddrSet {
  return { v4: subtractRanges(a.v4, b.v4), v6: subtractRanges(a.v6, b.v6) };
}

/** Whether the single address `ip` (family 4 or 6) is in the set. */
export function containsAddr(s: AddrSet, family: 4 | 6, ip: bigint): boolean {
  const ranges = family === 4 ? s.v4 : s.v6;
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (ip < a) hi = mid - 1;
    else if (ip > b) lo = mid + 1;
    else return true;
  }
  return false;
}

// ---- text ----

export interface Addr { family: 4 | 6; value: bigint }

export function parseAddr(text: string): Addr | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    let v = 0n;
    for (const part of text.split('.')) {
      if (part.length > 1 && part.startsWith('0')) return null;
      const n = Number(part);
      if (n > 255) return null;
      v = (v << 8n) | BigInt(n);
    }
    return { family: 4, value: v };
  }
  if (!text.includes(':') || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): string[] | null => {
    if (h === '') return [];
    const parts = h.split(':');
    const last = parts[parts.length - 1]!;
    if (last.includes('.')) {
      const v4 = parseAddr(last);
      if (!v4 || v4.family !== 4) return null;
      parts.splice(parts.length - 1, 1, (v4.value >> 16n).toString(16), (v4.value & 0xffffn).toString(16));
    }
    return parts.every((p) => /^[0-9a-fA-F]{1,4}$/.test(p)) ? parts : null;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return null;
  const all = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  let v = 0n;
  for (const g of all) v = (v << 16n) | BigInt(parseInt(g, 16));
  return { family: 6, value: v };
}

/** `a.b.c.d`, `x::y`, `CIDR`, or `first-last` (same family, first <= last); null when malformed. */
export function parseAddrSet(text: string): { set: AddrSet } | { error: string } {
  const dash = text.indexOf('-');
  if (dash !== -1) {
    const a = parseAddr(text.slice(0, dash));
    const b = parseAddr(text.slice(dash + 1));
    if (!a || !b) return { error: `${JSON.stringify(text)} is not an address range (first-last)` };
    if (a.family !== b.family) return { error: `range ${JSON.stringify(text)} mixes IPv4 and IPv6` };
    if (a.value > b.value) return { error: `range ${JSON.stringify(text)} ends before it starts` };
    return { set: single(a.family, a.value, b.value) };
  }
  const slash = text.indexOf('/');
  const a = parseAddr(slash === -1 ? text : text.slice(0, slash));
  if (!a) return { error: `${JSON.stringify(text)} is not an IP address or CIDR` };
  if (slash === -1) return { set: single(a.family, a.value, a.value) };
  const bitsText = text.slice(slash + 1);
  const width = a.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > width) return { error: `${JSON.stringify(text)} has a bad prefix length (0-${width})` };
  const host = BigInt(width - Number(bitsText));
  const mask = (1n << host) - 1n;
  if ((a.value & mask) !== 0n) return { error: `${JSON.stringify(text)} has host bits set (the network is ${formatAddr(a.family, a.value & ~mask)}/${bitsText})` };
  return { set: single(a.family, a.value, a.value | mask) };
}

function single(family: 4 | 6, lo: bigint, hi: bigint): AddrSet {
  return family === 4 ? { v4: [[lo, hi]], v6: [] } : { v4: [], v6: [[lo, hi]] };
}

export function addrSetOf(family: 4 | 6, value: bigint): AddrSet {
  return single(family, value, value);
}

// Node addresses recur in every rule that names them; their text is built once. Bounded so a
// policy with huge ranges cannot grow it without limit.
// IPv4 is keyed by Number: hashing a BigInt key is several times slower than a number's.
const text4Cache = new Map<number, string>();
const text6Cache = new Map<bigint, string>();
const TEXT_CACHE_MAX = 1 << 18;

export function formatAddr(family: 4 | 6, v: bigint): string {
  if (family === 4) {
    const n = Number(v);
    let text = text4Cache.get(n);
    if (text === undefined) {
      text = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
      if (text4Cache.size >= TEXT_CACHE_MAX) text4Cache.clear();
      text4Cache.set(n, text);
    }
    return text;
  }
  const cache = text6Cache;
  let text = cache.get(v);
  if (text === undefined) {
    text = formatAddrUncached(family, v);
    if (cache.size >= TEXT_CACHE_MAX) cache.clear();
    cache.set(v, text);
  }
  return text;
}

function formatAddrUncached(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const g: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) g.push(Number((v >> s) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** One CIDR of a set's text, with what it sorts by (family, then address, then prefix length). */
export interface Cidr { text: string; family: 4 | 6; lo: bigint; bits: number }

function rangeToCidrs(family: 4 | 6, lo0: bigint, hi: bigint, out: Cidr[]): void {
  // Most ranges are one node's address: no BigInt arithmetic (each operation allocates).
  if (lo0 === hi) {
    out.push({ text: formatAddr(family, lo0), family, lo: lo0, bits: family === 4 ? 32 : 128 });
    return;
  }
  const width = family === 4 ? 32n : 128n;
  let lo = lo0;
  while (lo <= hi) {
    let size = 0n;
    while (size < width && (lo & ((1n << (size + 1n)) - 1n)) === 0n && lo + (1n << (size + 1n)) - 1n <= hi) size++;
    out.push({ text: size === 0n ? formatAddr(family, lo) : `${formatAddr(family, lo)}/${width - size}`, family, lo, bits: Number(width - size) });
    lo += 1n << size;
  }
}

/** A set as the fewest CIDRs, IPv4 first, then IPv6, each ascending. */
export function cidrsOf(s: AddrSet): Cidr[] {
  const out: Cidr[] = [];
  for (const [lo, hi] of s.v4) rangeToCidrs(4, lo, hi, out);
  for (const [lo, hi] of s.v6) rangeToCidrs(6, lo, hi, out);
  return out;
}

/** The canonical text of a set (see cidrsOf); single addresses without building their Cidr. */
export function formatSet(s: AddrSet): string[] {
  const out: string[] = [];
  const scratch: Cidr[] = [];
  for (const [family, ranges] of [[4, s.v4], [6, s.v6]] as const) {
    for (const [lo, hi] of ranges) {
      if (lo === hi) {
        out.push(formatAddr(family, lo));
        continue;
      }
      scratch.length = 0;
      rangeToCidrs(family, lo, hi, scratch);
      for (const c of scratch) out.push(c.text);
    }
  }
  return out;
}

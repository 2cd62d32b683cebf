/**
 * Canonical text for CIDRs and endpoints, so what we asked for compares equal to what WireGuard
 * reports back (wireguard-go prints Go's netip form: host bits masked, RFC 5952 IPv6).
 */
import { isIPv4, isIPv6 } from 'node:net';

function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function v6Bytes(ip: string): number[] {
  let text = ip;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = v4Bytes(text.slice(lastColon + 1));
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const words = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function formatV6(bytes: number[]): string {
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // IPv4-mapped addresses print with a dotted tail, as Go does.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  // RFC 5952: compress the longest run (>= 2) of zero words, the first on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask(bytes: number[], bits: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

/** "100.64.0.9/10" -> "100.64.0.0/10"; "FD7A:0:0::2/128" -> "fd7a::2/128". Throws on bad input. */
export function normalizeCidr(cidr: string): string {
  const slash = cidr.indexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const v4 = isIPv4(ip);
  if (!v4 && !isIPv6(ip)) throw new TypeError(`not a CIDR: ${JSON.stringify(cidr)}`);
  const max = v4 ? 32 : 128;
  const bits = slash < 0 ? max : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash >= 0 && !/^\d+$/.test(cidr.slice(slash + 1)))) {
    throw new TypeError(`bad prefix length in ${JSON.stringify(cidr)}`);
  }
  const masked = mask(v4 ? v4Bytes(ip) : v6Bytes(ip), bits);
  return `${v4 ? masked.join('.') : formatV6(masked)}/${bits}`;
}

/** The address part of a CIDR, unmasked: "100.64.0.1/10" -> "100.64.0.1". */
export function cidrAddress(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

export function isV6Cidr(cidr: string): boolean {
  return cidrAddress(cidr).includes(':');
}

/** "1.2.3.4:51820" or "[fd00::1]:51820" -> canonical form; throws on bad input. */
export function normalizeEndpoint(endpoint: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(endpoint);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new TypeError(`endpoint must be "ip:port" or "[ipv6]:port", got ${JSON.stringify(endpoint)}`);
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) throw new TypeError(`bad IPv6 address in endpoint ${JSON.stringify(endpoint)}`);
    return `[${formatV6(v6Bytes(m[1]))}]:${port}`;
  }
  if (!isIPv4(m[2]!)) throw new TypeError(`bad IPv4 address in endpoint ${JSON.stringify(endpoint)}`);
  return `${m[2]}:${port}`;
}

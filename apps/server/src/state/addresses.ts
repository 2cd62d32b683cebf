/**
 * Tunnel addresses. IPv4 from the CGNAT range 100.64.0.0/10 (RFC 6598), handed out in order.
 * IPv6 from a unique local /48 (RFC 4193) chosen at random per deployment; a node's IPv6 embeds
 * its IPv4 in the low 32 bits, so the two stay paired and unique together.
 */
import { randomBytes } from 'node:crypto';
import { normalizeCidr } from '@weft/wg';

export const CGNAT_PREFIX = '100.64.0.0/10';
const CGNAT_BASE = ipv4ToInt('100.64.0.0');
/** First and last assignable: skip the network address and 100.127.255.255. */
export const IPV4_FIRST = CGNAT_BASE + 1;
export const IPV4_LAST = CGNAT_BASE + (1 << 22) - 2;

export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * RFC 4193: fd00::/8 plus a 40-bit random global id, as a /48 in RFC 5952 form ("fd41:1e8:a8b7::/48",
 * never "fd41:01e8:..."): addresses are compared as text in places (netmaps against packet filters,
 * which print canonical form), so there must be one spelling.
 */
export function generateUlaPrefix(): string {
  const b = randomBytes(5);
  const h = (i: number) => b[i]!.toString(16).padStart(2, '0');
  return normalizeCidr(`fd${h(0)}:${h(1)}${h(2)}:${h(3)}${h(4)}::/48`);
}

/**
 * The node's IPv6 in the deployment's /48: prefix + ::<v4 high 16>:<v4 low 16>, in RFC 5952 form
 * even when the stored prefix is not (deployments made before the prefix was canonical).
 */
export function ipv6For(ulaPrefix: string, ipv4Int: number): string {
  const slash = ulaPrefix.indexOf('/');
  const groups = expandV6(slash < 0 ? ulaPrefix : ulaPrefix.slice(0, slash)).slice(0, 3);
  const raw = [...groups, '0', '0', '0', (ipv4Int >>> 16).toString(16), (ipv4Int & 0xffff).toString(16)].join(':');
  return normalizeCidr(`${raw}/128`).slice(0, -'/128'.length);
}

/** "fd41:1e8::" -> ["fd41", "1e8", "0", "0", "0", "0", "0", "0"]. */
function expandV6(ip: string): string[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const a = head ? head.split(':') : [];
  const b = tail ? tail.split(':') : [];
  return tail === undefined ? a : [...a, ...Array<string>(8 - a.length - b.length).fill('0'), ...b];
}

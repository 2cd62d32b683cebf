/**
 * IANA protocol numbers by the names Tailscale's policy files accept, and the default set a rule
 * without `proto` allows (Tailscale's: TCP, UDP, ICMPv4, ICMPv6).
 */
export const PROTO = {
  icmp: 1,
  igmp: 2,
  ipv4: 4,
  'ip-in-ip': 4,
  tcp: 6,
  egp: 8,
  igp: 9,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  sctp: 132,
} as const;

export const ICMPV6 = 58;

/** A rule without `proto` (and a grant `ip` without one). Ascending. */
export const DEFAULT_PROTOS: readonly number[] = [1, 6, 17, 58];

/** Only these carry ports; a rule for any other protocol must use `*` as its ports. */
export const PORTED = new Set<number>([6, 17, 132]);

/** `tcp`, `6`, ... -> protocol numbers (`icmp` means ICMPv4 and ICMPv6, as in Headscale); null when unknown. */
export function parseProto(text: string): number[] | null {
  if (/^\d{1,3}$/.test(text)) {
    const n = Number(text);
    return n >= 0 && n <= 255 ? [n] : null;
  }
  if (text === 'icmp') return [PROTO.icmp, ICMPV6];
  return Object.hasOwn(PROTO, text) ? [PROTO[text as keyof typeof PROTO]] : null;
}

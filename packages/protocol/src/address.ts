/**
 * Strict text forms of IP addresses, CIDRs and UDP endpoints. Pure; the zod schemas in common.ts
 * use these, so server and agent refuse exactly the same strings. Strict means one reading only:
 *
 * - IPv4: four decimal octets 0-255 joined by dots, no leading zeros ("010" is octal to inet_aton
 *   and decimal to others), nothing else ("1.2.3", "0x7f.1", " 1.2.3.4" are refused).
 * - IPv6 (RFC 4291 2.2): eight groups of 1-4 hex digits (either case); one "::" standing for one or
 *   more zero groups; optionally a dotted IPv4 as the last 32 bits ("::ffff:192.0.2.1").
 * - Zone ids ("fe80::1%eth0") are refused. A zone names an interface on the host that wrote it,
 *   which means nothing to the peer that dials the endpoint, and it is free text: the one part of
 *   an address that could carry a newline into a WireGuard UAPI line.
 * - Endpoint: "a.b.c.d:port" or "[ipv6]:port"; the port decimal 1-65535, no leading zeros. An
 *   unbracketed IPv6 endpoint is refused (where would the port start?).
 * - CIDR: address "/" prefix length (decimal, no leading zeros, at most 32 or 128). Host bits may
 *   be set ("100.64.0.9/10"); WireGuard masks them.
 *
 * Failure reasons name what is wrong without echoing the input: they end up in WebSocket close
 * reasons and logs.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: number[];
}

export interface EndpointAddress extends IpAddress {
  port: number;
}

export interface CidrAddress extends IpAddress {
  bits: number;
}

/** Longest valid endpoint text: "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535". */
export const MAX_ENDPOINT_LENGTH = 53;
const MAX_IPV6_LENGTH = 45;

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });
const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

/** A decimal number in `min..max` with no sign, no leading zeros and at most `digits` digits. */
function decimal(text: string, digits: number, what: string, min: number, max: number): Parsed<number> {
  if (!/^[0-9]+$/.test(text) || text.length > digits) return fail(`${what} is not a decimal number of 1-${digits} digits`);
  if (text.length > 1 && text[0] === '0') return fail(`${what} has a leading zero`);
  const n = Number(text);
  if (n < min || n > max) return fail(`${what} is ${n}, outside ${min}-${max}`);
  return ok(n);
}

export function parseIPv4(text: string): Parsed<IpAddress> {
  const parts = text.split('.');
  if (parts.length !== 4) return fail(`an IPv4 address has 4 dot-separated octets, found ${Math.min(parts.length, 99)}`);
  const bytes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const octet = decimal(parts[i]!, 3, `octet ${i + 1}`, 0, 255);
    if (!octet.ok) return octet;
    bytes.push(octet.value);
  }
  return ok({ family: 4, bytes });
}

export function parseIPv6(text: string): Parsed<IpAddress> {
  if (text.includes('%')) return fail('zone ids ("%" suffix) are not accepted');
  if (text.length > MAX_IPV6_LENGTH) return fail(`longer than ${MAX_IPV6_LENGTH} characters, the longest IPv6 text`);
  if (!text.includes(':')) return fail('an IPv6 address has colons');
  const halves = text.split('::');
  if (halves.length > 2) return fail('"::" may appear only once');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const last = halves.length === 2 ? right : left;

  let tail: number[] = [];
  if (last.length > 0 && last[last.length - 1]!.includes('.')) {
    const v4 = parseIPv4(last.pop()!);
    if (!v4.ok) return fail(`embedded IPv4: ${v4.reason}`);
    tail = v4.value.bytes;
  }
  const words: number[][] = [left, right].map((side) => side.map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : -1)));
  const all = [...words[0]!, ...words[1]!];
  const bad = all.indexOf(-1);
  if (bad >= 0) return fail(`group ${bad + 1} is not 1-4 hex digits`);
  const count = all.length + tail.length / 2;
  if (halves.length === 1 && count !== 8) return fail(`has ${count} groups; without "::" an IPv6 address has 8`);
  if (halves.length === 2 && count > 7) return fail(`has ${count} groups besides "::", which stands for at least one`);

  const zeros = Array<number>(8 - count).fill(0);
  const wordsAll = [...words[0]!, ...zeros, ...words[1]!];
  const bytes = wordsAll.flatMap((w) => [w >> 8, w & 0xff]).concat(tail);
  return ok({ family: 6, bytes });
}

export function parseIp(text: string): Parsed<IpAddress> {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

export function parsePort(text: string): Parsed<number> {
  return decimal(text, 5, 'port', 1, 65535);
}

/** "a.b.c.d:port" or "[ipv6]:port". */
export function parseEndpoint(text: string): Parsed<EndpointAddress> {
  if (text.length > MAX_ENDPOINT_LENGTH) return fail(`longer than ${MAX_ENDPOINT_LENGTH} characters, the longest endpoint text`);
  let host: Parsed<IpAddress>;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return fail('"[" without a closing "]"');
    if (text[close + 1] !== ':') return fail('expected ":port" after "]"');
    host = parseIPv6(text.slice(1, close));
    if (!host.ok) return fail(`IPv6 address: ${host.reason}`);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail('no port; expected "a.b.c.d:port" or "[ipv6]:port"');
    const hostText = text.slice(0, colon);
    if (hostText.includes(':')) return fail('an IPv6 endpoint needs brackets: "[ipv6]:port"');
    host = parseIPv4(hostText);
    if (!host.ok) return fail(`IPv4 address: ${host.reason}`);
    portText = text.slice(colon + 1);
  }
  const port = parsePort(portText);
  if (!port.ok) return port;
  return ok({ ...host.value, port: port.value });
}

/** "100.64.0.1/32", "fd7a:115c:a1e0::1/128". */
export function parseCidr(text: string): Parsed<CidrAddress> {
  const slash = text.indexOf('/');
  if (slash < 0) return fail('no prefix length; expected "address/bits"');
  const ip = parseIp(text.slice(0, slash));
  if (!ip.ok) return fail(`address: ${ip.reason}`);
  const bits = decimal(text.slice(slash + 1), 3, 'prefix length', 0, ip.value.family === 4 ? 32 : 128);
  if (!bits.ok) return bits;
  return ok({ ...ip.value, bits: bits.value });
}

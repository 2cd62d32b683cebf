/**
 * MAPPED-ADDRESS (RFC 8489 §14.1) and XOR-MAPPED-ADDRESS (§14.2) values:
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |0 0 0 0 0 0 0 0|    Family     |         (X-)Port              |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                 (X-)Address (32 bits or 128 bits)             |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * XOR: the port with the cookie's top 16 bits; an IPv4 address with the cookie; an IPv6 address
 * with the cookie followed by the 96-bit transaction ID.
 *
 * An IPv4 peer seen on a dual-stack IPv6 socket (`::ffff:192.0.2.1`) is written as the IPv4
 * address it is: that is what the client's NAT put on the wire.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ADDRESS_FAMILY_IPV4, ADDRESS_FAMILY_IPV6, MAGIC_COOKIE } from './stun-constants.js';

export interface MappedAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  port: number;
}

const COOKIE = Buffer.from([MAGIC_COOKIE >>> 24, (MAGIC_COOKIE >>> 16) & 0xff, (MAGIC_COOKIE >>> 8) & 0xff, MAGIC_COOKIE & 0xff]);

/**
 * Dotted-quad text starting at `from` -> 4 bytes, or undefined when it is not exactly that. The
 * STUN server's hot path (every peer address is one, or `::ffff:` and one), so no regex or split.
 */
function ipv4Bytes(text: string, from: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = from; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // the end acts as a final '.'
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3 || (digits === 1 && value === 0)) return undefined; // 4 digits, or a leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

/** IPv4 or IPv6 text -> 4 or 16 bytes (IPv4-mapped IPv6 -> the 4 IPv4 bytes); undefined if not an address. */
export function addressBytes(address: string): Buffer | undefined {
  const v4 = ipv4Bytes(address, 0);
  if (v4) return v4;
  if (address.startsWith('::ffff:')) {
    const mapped = ipv4Bytes(address, 7);
    if (mapped) return mapped;
  }
  if (isIPv4(address) || !isIPv6(address)) return undefined;
  const zone = address.indexOf('%');
  let text = zone >= 0 ? address.slice(0, zone) : address;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = text.slice(lastColon + 1).split('.').map(Number);
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const all = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  const mapped = out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff;
  return mapped ? Buffer.from(out.subarray(12)) : out;
}

/** 4 or 16 bytes -> text (IPv6 in RFC 5952 form: lowercase, the longest run of zero groups as `::`). */
export function addressText(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(bytes.readUInt16BE(i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function encode(address: string, port: number, transactionId: Buffer | undefined): Buffer {
  const ip = addressBytes(address);
  if (!ip) throw new RangeError(`not an IP address: ${address}`);
  const out = Buffer.allocUnsafe(4 + ip.length);
  writeAddressValue(out, 0, ip, port, transactionId);
  return out;
}

/**
 * Writes a (XOR-)MAPPED-ADDRESS value for `ip` (4 or 16 bytes) at `at`; XORed when a
 * transaction ID is given. Returns the value's length.
 */
export function writeAddressValue(out: Buffer, at: number, ip: Buffer, port: number, transactionId: Buffer | undefined): number {
  out[at] = 0;
  out[at + 1] = ip.length === 4 ? ADDRESS_FAMILY_IPV4 : ADDRESS_FAMILY_IPV6;
  out.writeUInt16BE(transactionId ? port ^ (MAGIC_COOKIE >>> 16) : port, at + 2);
  for (let i = 0; i < ip.length; i++) {
    const mask = !transactionId ? 0 : i < 4 ? COOKIE[i]! : transactionId[i - 4]!;
    out[at + 4 + i] = ip[i]! ^ mask;
  }
  return 4 + ip.length;
}

function decode(value: Buffer, mask: Buffer | undefined): MappedAddress | undefined {
  if (value.length < 4) return undefined;
  const family = value[1];
  const len = family === ADDRESS_FAMILY_IPV4 ? 4 : family === ADDRESS_FAMILY_IPV6 ? 16 : 0;
  if (!len || value.length !== 4 + len) return undefined;
  const ip = Buffer.alloc(len);
  for (let i = 0; i < len; i++) ip[i] = mask ? value[4 + i]! ^ mask[i]! : value[4 + i]!;
  const port = value.readUInt16BE(2) ^ (mask ? MAGIC_COOKIE >>> 16 : 0);
  return { family: len === 4 ? 'IPv4' : 'IPv6', address: addressText(ip), port };
}

const xorMask = (transactionId: Buffer) => Buffer.concat([COOKIE, transactionId]);

export const encodeMappedAddress = (address: string, port: number): Buffer => encode(address, port, undefined);
export const decodeMappedAddress = (value: Buffer): MappedAddress | undefined => decode(value, undefined);
/** `transactionId`: the message's 12 bytes (they mask an IPv6 address). */
export const encodeXorMappedAddress = (address: string, port: number, transactionId: Buffer): Buffer => encode(address, port, transactionId);
export const decodeXorMappedAddress = (value: Buffer, transactionId: Buffer): MappedAddress | undefined => decode(value, xorMask(transactionId));

import { z } from 'zod';
import { text } from './fields.js';
import { parseCidr, parseEndpoint, parseIPv4, parseIPv6, MAX_ENDPOINT_LENGTH, type Parsed } from './address.js';
import { TAG_NAME, TAG_RULE } from './tags.js';

/** A string schema that accepts what `parse` accepts, with its reason as the issue message. */
function parsedBy(parse: (text: string) => Parsed<unknown>, maxLength: number, description: string) {
  return text().max(maxLength).describe(description).superRefine((text, ctx) => {
    const r = parse(text);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.reason });
  });
}

/** WireGuard X25519 public key: "nodekey:" + 64 lowercase hex digits. */
export const NodeKeyText = text().regex(/^nodekey:[0-9a-f]{64}$/, 'must be "nodekey:" followed by 64 hex digits');
/** Ed25519 machine public key: "mkey:" + 64 lowercase hex digits. */
export const MachineKeyText = text().regex(/^mkey:[0-9a-f]{64}$/, 'must be "mkey:" followed by 64 hex digits');

/** An ISO-8601 timestamp in UTC. */
export const Timestamp = z.string().datetime();

/** A UDP endpoint, "a.b.c.d:port" or "[ipv6]:port", port 1-65535, no zone id (see address.ts). */
export const Endpoint = parsedBy(parseEndpoint, MAX_ENDPOINT_LENGTH, '"a.b.c.d:port" or "[ipv6]:port", port 1-65535');

/** Most endpoint candidates one node reports (and so one peer carries). */
export const MAX_ENDPOINTS = 16;

/** A bare IPv4 address, dotted quad without leading zeros. */
export const IPv4Address = parsedBy(parseIPv4, 15, 'IPv4 address, dotted quad');
/** A bare IPv6 address (RFC 4291 text form), no zone id. */
export const IPv6Address = parsedBy(parseIPv6, 45, 'IPv6 address');
/** "address/bits", IPv4 or IPv6. */
export const Cidr = parsedBy(parseCidr, 49, 'CIDR, "address/bits"');

/** Hostname as reported by a device: printable, up to 253 characters. The server sanitises it. */
export const Hostname = text().min(1).max(253).regex(/^[^\p{C}]+$/u, 'must not contain control characters');

/** A tag name: Tailscale's rule, mixed case allowed and kept (tags.ts). */
export const Tag = text().regex(TAG_NAME, { error: (iss) => `${JSON.stringify(iss.input)} must look like ${TAG_RULE}` });

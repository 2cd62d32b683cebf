import { z } from 'zod';
import { text } from './fields.js';

/** WireGuard X25519 public key: "nodekey:" + 64 lowercase hex digits. */
export const NodeKeyText = text().regex(/^nodekey:[0-9a-f]{64}$/, 'must be "nodekey:" followed by 64 hex digits');
/** Ed25519 machine public key: "mkey:" + 64 lowercase hex digits. */
export const MachineKeyText = text().regex(/^mkey:[0-9a-f]{64}$/, 'must be "mkey:" followed by 64 hex digits');

/** An ISO-8601 timestamp in UTC. */
export const Timestamp = z.string().datetime();

/** "ip:port" or "[ipv6]:port". */
export const Endpoint = text().max(64).regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/, 'must be ip:port');

/** Hostname as reported by a device: printable, up to 253 characters. The server sanitises it. */
export const Hostname = text().min(1).max(253).regex(/^[^\p{C}]+$/u, 'must not contain control characters');

export const Tag = text().regex(/^tag:[a-z0-9][a-z0-9-]{0,62}$/, 'must look like "tag:name"');

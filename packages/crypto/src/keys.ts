/**
 * Typed keys. Each role has its own type and text prefix so a machine key can never be passed
 * where a node key is meant:
 * - node key: WireGuard X25519, text "nodekey:<hex>", private "privkey:<hex>".
 * - machine key: Ed25519, text "mkey:<hex>", private "mprivkey:<hex>".
 * Private keys never leave the device that generated them.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/curves/utils.js';
import { createHash, timingSafeEqual } from 'node:crypto';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type NodePublicKey = Brand<string, 'NodePublicKey'>;
export type NodePrivateKey = Brand<string, 'NodePrivateKey'>;
export type MachinePublicKey = Brand<string, 'MachinePublicKey'>;
export type MachinePrivateKey = Brand<string, 'MachinePrivateKey'>;

const NODE_PUB = 'nodekey:';
const NODE_PRIV = 'privkey:';
const MACHINE_PUB = 'mkey:';
const MACHINE_PRIV = 'mprivkey:';

function parse<T>(text: string, prefix: string, what: string): T {
  if (!text.startsWith(prefix) || !/^[0-9a-f]{64}$/.test(text.slice(prefix.length))) {
    throw new TypeError(`${what} must be "${prefix}" followed by 64 lowercase hex digits`);
  }
  return text as T;
}

export const parseNodePublicKey = (t: string) => parse<NodePublicKey>(t, NODE_PUB, 'node public key');
export const parseNodePrivateKey = (t: string) => parse<NodePrivateKey>(t, NODE_PRIV, 'node private key');
export const parseMachinePublicKey = (t: string) => parse<MachinePublicKey>(t, MACHINE_PUB, 'machine public key');
export const parseMachinePrivateKey = (t: string) => parse<MachinePrivateKey>(t, MACHINE_PRIV, 'machine private key');

/** Raw 32 bytes of any of the key types. */
export function keyBytes(key: NodePublicKey | NodePrivateKey | MachinePublicKey | MachinePrivateKey): Uint8Array {
  return hexToBytes(key.slice(key.indexOf(':') + 1));
}

export function generateNodeKey(): { privateKey: NodePrivateKey; publicKey: NodePublicKey } {
  const secret = x25519.utils.randomSecretKey();
  return { privateKey: (NODE_PRIV + bytesToHex(secret)) as NodePrivateKey, publicKey: nodePublicKeyOf(secret) };
}

export function nodePublicKeyOf(privateKey: NodePrivateKey | Uint8Array): NodePublicKey {
  const secret = typeof privateKey === 'string' ? keyBytes(privateKey) : privateKey;
  return (NODE_PUB + bytesToHex(x25519.getPublicKey(secret))) as NodePublicKey;
}

export function generateMachineKey(): { privateKey: MachinePrivateKey; publicKey: MachinePublicKey } {
  const secret = ed25519.utils.randomSecretKey();
  return { privateKey: (MACHINE_PRIV + bytesToHex(secret)) as MachinePrivateKey, publicKey: machinePublicKeyOf(secret) };
}

export function machinePublicKeyOf(privateKey: MachinePrivateKey | Uint8Array): MachinePublicKey {
  const secret = typeof privateKey === 'string' ? keyBytes(privateKey) : privateKey;
  return (MACHINE_PUB + bytesToHex(ed25519.getPublicKey(secret))) as MachinePublicKey;
}

/**
 * A node key's short fingerprint, for a person to compare by eye: the first 16 hex digits of the
 * SHA-256 of the raw 32 key bytes, in four groups of four ("1a2b-3c4d-5e6f-7a8b"). `weft login`
 * prints it next to the login URL and the approval page shows it, so the person confirms the
 * device that is actually waiting. 64 bits: enough against a look-alike made to fool one glance.
 */
export function nodeKeyFingerprint(key: NodePublicKey): string {
  const hex = createHash('sha256').update(keyBytes(key)).digest('hex').slice(0, 16);
  return hex.match(/.{4}/g)!.join('-');
}

/** WireGuard's own text form (base64), as `wg` and wg-quick files use. */
export function toWireGuardBase64(key: NodePublicKey | NodePrivateKey): string {
  return Buffer.from(keyBytes(key)).toString('base64');
}

export function fromWireGuardBase64(b64: string): NodePublicKey {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new TypeError('WireGuard key must be 32 bytes of base64');
  return (NODE_PUB + raw.toString('hex')) as NodePublicKey;
}

/** Hex form without prefix, as the wireguard-go UAPI speaks it. */
export function toHex(key: NodePublicKey | NodePrivateKey): string {
  return key.slice(key.indexOf(':') + 1);
}

/** Constant-time comparison of two strings of key or secret material. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) return false;
  return timingSafeEqual(ab, bb);
}

/**
 * A public key's fingerprint as people compare them, in OpenSSH's style: "SHA256:" and the
 * unpadded base64 of the SHA-256 of the raw key bytes.
 */
export function keyFingerprint(key: NodePublicKey | MachinePublicKey): string {
  return `SHA256:${createHash('sha256').update(keyBytes(key)).digest('base64').replace(/=+$/, '')}`;
}

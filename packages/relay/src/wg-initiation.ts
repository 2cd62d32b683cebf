/**
 * Reads a WireGuard handshake initiation as its responder would, without answering it: checks
 * mac1, then follows the initiator's Noise_IK steps (whitepaper 5.4.2) far enough to learn and
 * authenticate its static public key and its TAI64N timestamp. No session is created and no
 * response is built: Weft's server only wants to know which node sent the datagram and from
 * which address (wg-responder.ts).
 *
 * Authenticated means: the timestamp decrypts under DH(responder private, initiator static), which
 * only the holder of the initiator's private key (or of the responder's) can produce. Order of the
 * checks: size and type, mac1 (one keyed hash, so junk costs no Diffie-Hellman), then the two DHs.
 */
import { createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import {
  AEAD_TAG_SIZE, CONSTRUCTION, IDENTIFIER, INITIATION_EPHEMERAL_OFFSET, INITIATION_MAC1_OFFSET, INITIATION_SENDER_OFFSET, INITIATION_STATIC_OFFSET,
  INITIATION_TIMESTAMP_OFFSET, KEY_SIZE, LABEL_MAC1, MAC_SIZE, MESSAGE_INITIATION_SIZE, MESSAGE_INITIATION_TYPE, TAI64_BASE, TAI64N_SIZE,
} from './wg-constants.js';

/** A responder key with what every initiation to it starts from, computed once. */
export interface ResponderKey {
  readonly publicKey: Uint8Array;
  /** Chaining key C after the construction (the same for every responder). */
  readonly chain0: Buffer;
  /** Hash H after the construction, the identifier and the responder's public key. */
  readonly hash0: Buffer;
  /** HASH(LABEL_MAC1 || responder public key). */
  readonly mac1Key: Buffer;
  /**
   * The private key, inside OpenSSL (it does not print; never log it or pass it on). OpenSSL's
   * X25519 is ~20x faster than a JS one: 0.4 against 7.5 ms per DH on the project machine.
   */
  readonly privateKeyObject: KeyObject;
}

/** Why an initiation was refused: the datagram's shape, mac1, or which decryption failed. */
export type InitiationReject = 'size' | 'type' | 'mac1' | 'ephemeral' | 'static' | 'timestamp';

export type OpenedInitiation =
  | {
      ok: true;
      /** The initiator's sender index (little-endian u32), for logs. */
      sender: number;
      /** The initiator's static X25519 public key (its WireGuard public key). */
      initiatorKey: Buffer;
      /** TAI64N, 12 bytes: compare with `Buffer.compare` (big-endian, so byte order is time order). */
      timestamp: Buffer;
      /** DH(responder private, initiator static): the same for every initiation of this initiator, so callers may cache it. */
      staticShared: Uint8Array;
    }
  | { ok: false; reason: InitiationReject };

const hash = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};
const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
/** Noise KDF_1: the new chaining key. */
const kdf1 = (chain: Uint8Array, input: Uint8Array): Buffer => hmac(hmac(chain, input), ONE);
/** Noise KDF_2: the new chaining key and a cipher key. */
function kdf2(chain: Uint8Array, input: Uint8Array): [Buffer, Buffer] {
  const t0 = hmac(chain, input);
  const t1 = hmac(t0, ONE);
  return [t1, hmac(t0, t1, TWO)];
}
/** Counter 0: every key in the initiation is used exactly once. */
const ZERO_NONCE = Buffer.alloc(12);

/** ChaCha20-Poly1305 open with associated data; null when the tag does not verify. */
function aeadOpen(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
  const plainLength = sealed.length - AEAD_TAG_SIZE;
  const d = createDecipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: AEAD_TAG_SIZE });
  d.setAAD(aad, { plaintextLength: plainLength });
  d.setAuthTag(sealed.subarray(plainLength));
  const out = d.update(sealed.subarray(0, plainLength));
  try {
    d.final();
  } catch {
    return null;
  }
  return out;
}

/** DER SubjectPublicKeyInfo prefix of an X25519 public key (RFC 8410): the 32 key bytes follow. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** X25519, or null for a point that gives the all-zero secret (low order), which WireGuard refuses too. */
function dh(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array | null {
  try {
    const pub = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    const out = diffieHellman({ privateKey, publicKey: pub });
    return out.every((b) => b === 0) ? null : out;
  } catch {
    return null;
  }
}

/** Precomputes what every initiation to this key starts from. `privateKey` is 32 raw bytes. */
export function responderKey(privateKey: Uint8Array): ResponderKey {
  if (privateKey.length !== KEY_SIZE) throw new Error(`a WireGuard private key is ${KEY_SIZE} bytes, not ${privateKey.length}`);
  const privateKeyObject = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
  const publicKey = new Uint8Array(createPublicKey(privateKeyObject).export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length));
  const chain0 = hash(Buffer.from(CONSTRUCTION));
  const hash0 = hash(hash(chain0, Buffer.from(IDENTIFIER)), publicKey);
  return { publicKey, chain0, hash0, mac1Key: hash(Buffer.from(LABEL_MAC1), publicKey), privateKeyObject };
}

/** A new random responder private key (32 raw bytes, as `wg genkey` makes). */
export function generateResponderPrivateKey(): Uint8Array {
  const pkcs8 = generateKeyPairSync('x25519').privateKey.export({ format: 'der', type: 'pkcs8' });
  return new Uint8Array(pkcs8.subarray(X25519_PKCS8_PREFIX.length));
}

/** Whether a datagram has the size and first four bytes of a handshake initiation (for demultiplexing). */
export function looksLikeInitiation(msg: Uint8Array): boolean {
  return msg.length === MESSAGE_INITIATION_SIZE && msg[0] === MESSAGE_INITIATION_TYPE && msg[1] === 0 && msg[2] === 0 && msg[3] === 0;
}

/**
 * `cachedStaticShared` may return the `staticShared` of an earlier initiation of the same
 * initiator (by key, hex), saving one of the two Diffie-Hellmans.
 */
/** Whether mac1 verifies for this responder (one keyed BLAKE2s; `msg` must be initiation-sized). */
export function mac1Valid(key: ResponderKey, msg: Uint8Array): boolean {
  if (msg.length !== MESSAGE_INITIATION_SIZE) return false;
  const mac1 = blake2s(msg.subarray(0, INITIATION_MAC1_OFFSET), { key: key.mac1Key, dkLen: MAC_SIZE });
  return timingSafeEqual(mac1, msg.subarray(INITIATION_MAC1_OFFSET, INITIATION_MAC1_OFFSET + MAC_SIZE));
}

export function openInitiation(key: ResponderKey, msg: Uint8Array, cachedStaticShared?: (initiatorKeyHex: string) => Uint8Array | undefined): OpenedInitiation {
  if (msg.length !== MESSAGE_INITIATION_SIZE) return { ok: false, reason: 'size' };
  if (msg[0] !== MESSAGE_INITIATION_TYPE || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return { ok: false, reason: 'type' };
  if (!mac1Valid(key, msg)) return { ok: false, reason: 'mac1' };

  const ephemeral = msg.subarray(INITIATION_EPHEMERAL_OFFSET, INITIATION_STATIC_OFFSET);
  const sealedStatic = msg.subarray(INITIATION_STATIC_OFFSET, INITIATION_TIMESTAMP_OFFSET);
  const sealedTimestamp = msg.subarray(INITIATION_TIMESTAMP_OFFSET, INITIATION_MAC1_OFFSET);

  let chain = kdf1(key.chain0, ephemeral);
  let h = hash(key.hash0, ephemeral);
  const ee = dh(key.privateKeyObject, ephemeral);
  if (!ee) return { ok: false, reason: 'ephemeral' };
  let k: Buffer;
  [chain, k] = kdf2(chain, ee);
  const initiatorKey = aeadOpen(k, sealedStatic, h);
  if (!initiatorKey) return { ok: false, reason: 'static' };
  h = hash(h, sealedStatic);

  const ss = cachedStaticShared?.(initiatorKey.toString('hex')) ?? dh(key.privateKeyObject, initiatorKey);
  if (!ss) return { ok: false, reason: 'static' };
  [chain, k] = kdf2(chain, ss);
  const timestamp = aeadOpen(k, sealedTimestamp, h);
  if (!timestamp || timestamp.length !== TAI64N_SIZE) return { ok: false, reason: 'timestamp' };
  const sender = Buffer.from(msg.buffer, msg.byteOffset, msg.length).readUInt32LE(INITIATION_SENDER_OFFSET);
  return { ok: true, sender, initiatorKey, timestamp, staticShared: ss };
}

/** A TAI64N timestamp as Unix milliseconds (nanoseconds truncated). */
export function tai64nToUnixMs(ts: Uint8Array): number {
  const b = Buffer.from(ts.buffer, ts.byteOffset, ts.length);
  const secs = b.readBigUInt64BE(0) - TAI64_BASE;
  return Number(secs) * 1000 + Math.floor(b.readUInt32BE(8) / 1e6);
}

/**
 * Builds WireGuard handshake initiations (whitepaper 5.4.2, the initiator's side) for tests that
 * need one from a key they control at a time they choose: the server's tests register a node with
 * a key and send its initiation from a UDP socket. Checked against initiations from a real
 * wireguard-go in packages/relay/test (they open with the same code these are opened with).
 */
import { createCipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';

const SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const hash = (...p: Uint8Array[]) => p.reduce((h, x) => h.update(x), createHash('blake2s256')).digest();
const hmac = (k: Uint8Array, ...p: Uint8Array[]) => p.reduce((h, x) => h.update(x), createHmac('blake2s256', k)).digest();
const kdf = (c: Uint8Array, input: Uint8Array): [Buffer, Buffer] => {
  const t0 = hmac(c, input);
  const t1 = hmac(t0, Uint8Array.of(1));
  return [t1, hmac(t0, t1, Uint8Array.of(2))];
};
const priv = (raw: Uint8Array) => createPrivateKey({ key: Buffer.concat([PKCS8, raw]), format: 'der', type: 'pkcs8' });
const pub = (raw: Uint8Array) => createPublicKey({ key: Buffer.concat([SPKI, raw]), format: 'der', type: 'spki' });
export const publicKeyOf = (raw: Uint8Array) => createPublicKey(priv(raw)).export({ format: 'der', type: 'spki' }).subarray(SPKI.length);
function seal(key: Uint8Array, plain: Uint8Array, aad: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: plain.length });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

/** TAI64N of a Unix time in milliseconds. */
export function tai64n(unixMs: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(2n ** 62n + BigInt(Math.floor(unixMs / 1000)), 0);
  b.writeUInt32BE((unixMs % 1000) * 1e6, 8);
  return b;
}

/** A 148-byte initiation from `initiatorPrivate` (32 raw bytes) to `responderPublic`, stamped `atMs`. */
export function buildInitiation(initiatorPrivate: Uint8Array, responderPublic: Uint8Array, atMs = Date.now(), sender = 0x01020304): Buffer {
  const eph = generateKeyPairSync('x25519');
  const ephPub = eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI.length);
  let c: Uint8Array = hash(Buffer.from('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'));
  let h = hash(hash(c, Buffer.from('WireGuard v1 zx2c4 Jason@zx2c4.com')), responderPublic);
  c = hmac(hmac(c, ephPub), Uint8Array.of(1));
  h = hash(h, ephPub);
  let k: Uint8Array;
  [c, k] = kdf(c, diffieHellman({ privateKey: eph.privateKey, publicKey: pub(responderPublic) }));
  const sealedStatic = seal(k, publicKeyOf(initiatorPrivate), h);
  h = hash(h, sealedStatic);
  [c, k] = kdf(c, diffieHellman({ privateKey: priv(initiatorPrivate), publicKey: pub(responderPublic) }));
  const sealedTs = seal(k, tai64n(atMs), h);
  const msg = Buffer.alloc(148);
  msg[0] = 1;
  msg.writeUInt32LE(sender, 4);
  ephPub.copy(msg, 8);
  sealedStatic.copy(msg, 40);
  sealedTs.copy(msg, 88);
  msg.set(blake2s(msg.subarray(0, 116), { key: hash(Buffer.from('mac1----'), responderPublic), dkLen: 16 }), 116);
  return msg;
}

/**
 * WireGuard protocol constants for reading handshake initiations (the WireGuard whitepaper,
 * section 5.4; wireguard-go `device/noise-protocol.go`), named as the paper names them. Knobs
 * of Weft's responder are in tunables.ts.
 */

/** Noise protocol name, hashed into the initial chaining key. */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
/** Mixed into the initial hash after the construction. */
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
/** mac1's key is HASH(LABEL_MAC1 || responder static public key). */
export const LABEL_MAC1 = 'mac1----';

/** Message type of a handshake initiation (first byte; the next three are reserved zeros). */
export const MESSAGE_INITIATION_TYPE = 1;

/**
 * Handshake initiation, 148 bytes:
 *
 * ```
 *  0      1      4           8                 40                    88                  116    132    148
 *  | type | 0 0 0 | sender   | ephemeral (32)  | encrypted_static    | encrypted_timestamp | mac1 | mac2 |
 *  |  1   |       | (le u32) |  X25519 public  | (32 + 16 AEAD tag)  | (12 + 16 AEAD tag)  | (16) | (16) |
 * ```
 */
export const MESSAGE_INITIATION_SIZE = 148;
export const INITIATION_SENDER_OFFSET = 4;
export const INITIATION_EPHEMERAL_OFFSET = 8;
export const INITIATION_STATIC_OFFSET = 40;
export const INITIATION_TIMESTAMP_OFFSET = 88;
export const INITIATION_MAC1_OFFSET = 116;
export const INITIATION_MAC2_OFFSET = 132;

export const KEY_SIZE = 32;
/** ChaCha20-Poly1305 tag. */
export const AEAD_TAG_SIZE = 16;
/** TAI64N: 8 bytes of big-endian seconds (2^62 + Unix seconds), 4 of big-endian nanoseconds. */
export const TAI64N_SIZE = 12;
/** BLAKE2s-128 output of mac1 and mac2. */
export const MAC_SIZE = 16;
/** TAI64 label: seconds are stored as 2^62 + Unix seconds. */
export const TAI64_BASE = 2n ** 62n;

/**
 * @weft/crypto — typed keys (node key = WireGuard X25519, machine key = Ed25519), their text
 * encodings, constant-time comparison, key generation, and hashed secrets.
 * Imports nothing from this repository but @weft/protocol.
 */
export * from './keys.js';
export * from './jwk.js';
export * from './secret.js';
export * from './machine-token.js';
export * from './password.js';
export * from './peer-revision.js';
